using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Runs what is due, on one replica at a time (the rotation lock named <c>scheduler</c>): unfinished rotations (pending
/// records) are finished at start and on every pass; failed rotations are retried when their backoff has passed; and
/// secrets of rules with <c>Every</c> are rotated when due. A secret's last rotation is its current version's creation time
/// in the backend, and its jitter is derived from its path, so restarts and other replicas compute the same due time.
/// </summary>
public sealed partial class RotationScheduler(
    MountTable mounts,
    RotationRules rules,
    RotationFlights flights,
    IRotationLocks locks,
    RotationMetrics metrics,
    IOptions<RotationEngineOptions> options,
    TimeProvider time,
    ILogger<RotationScheduler> logger) : BackgroundService
{
    private const string SchedulerKey = "scheduler";
    private bool _startedUp;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (rules.All.Count == 0)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunPassAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogPassFailed(ex.GetType().Name);
            }
            try
            {
                await Task.Delay(options.Value.ScheduleInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// One pass on the replica that holds the scheduler lock (Redis where configured): one replica at a time decides what
    /// is due, so a secret another replica has just rotated is read with its new version and is not due again.
    /// Returns false when another replica holds the lock. Public for tests on a fake clock.
    /// </summary>
    public async Task<bool> RunPassAsync(CancellationToken cancellationToken)
    {
        var held = await locks.TryAcquireAsync(SchedulerKey, Guid.NewGuid().ToString("n")).ConfigureAwait(false);
        if (held is null)
        {
            return false;
        }
        try
        {
            await RunOnceAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            await held.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One pass: recover, retry, rotate what is due (bounded concurrency). Public for tests on a fake clock.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        var work = new List<(string Path, bool Recover)>();
        var overdue = 0L;
        // A failed secret is still due, but waits for its backoff (retried below once NextAttempt has come).
        var backingOff = metrics.Failing.Values.Where(f => f.NextAttempt > now).Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var (path, rule, isPendingRecord, mounted) in await DiscoverAsync(cancellationToken).ConfigureAwait(false))
        {
            if (isPendingRecord || (!_startedUp && mounted.Capability<ISecretStaging>() is not null && !rule.IsAwsManaged))
            {
                work.Add((path, true));
            }
            if (isPendingRecord || rule.Every is null)
            {
                continue;
            }
            SecretValue current;
            try
            {
                current = await mounted.Capability<ISecretReading>()!.GetAsync(mounts.Resolve(path).Name, VersionSelector.Latest, cancellationToken).ConfigureAwait(false);
            }
            catch (BrokerException ex)
            {
                LogReadFailed(mounted.Mount.Prefix, ex.Kind.Name());
                continue;
            }
            var due = DueAt(rule, path, current.CreatedAt ?? DateTimeOffset.UnixEpoch, settings.Jitter);
            if (now >= due + settings.OverdueAfter)
            {
                overdue++;
            }
            if (now >= due && (rule.Window is null || rule.Window.Contains(now)) && !backingOff.Contains(path))
            {
                work.Add((path, false));
            }
        }
        foreach (var failure in metrics.Failing.Values.Where(f => f.NextAttempt <= now))
        {
            work.Add((failure.Path, false));
        }
        metrics.SetOverdue(overdue);
        _startedUp = true;
        await Parallel.ForEachAsync(work.DistinctBy(w => w.Path), new ParallelOptions { MaxDegreeOfParallelism = settings.MaxConcurrency, CancellationToken = cancellationToken },
            async (item, ct) =>
            {
                try
                {
                    if (item.Recover)
                    {
                        await flights.RecoverAsync(item.Path).ConfigureAwait(false);
                    }
                    else
                    {
                        await flights.RotateAsync(item.Path, ct).ConfigureAwait(false);
                    }
                }
                catch (BrokerException)
                {
                    // Counted, logged and remembered for a retry by the engine and the flights.
                }
            }).ConfigureAwait(false);
    }

    /// <summary>When a secret last rotated at <paramref name="lastRotated"/> is due: Every plus its jitter, moved into the window.</summary>
    public static DateTimeOffset DueAt(RotationRule rule, string path, DateTimeOffset lastRotated, TimeSpan jitter)
    {
        var due = lastRotated + rule.Every!.Value + JitterFor(path, jitter);
        return rule.Window?.NextOpen(due) ?? due;
    }

    /// <summary>A stable share of <paramref name="jitter"/> per path (SHA-256 of the path), the same on every replica and restart.</summary>
    public static TimeSpan JitterFor(string path, TimeSpan jitter)
    {
        if (jitter <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(path));
        var fraction = BinaryPrimitives.ReadUInt32BigEndian(hash) / (double)uint.MaxValue;
        return TimeSpan.FromTicks((long)(jitter.Ticks * fraction));
    }

    private async Task<List<(string Path, RotationRule Rule, bool IsPendingRecord, MountedBackend Mounted)>> DiscoverAsync(CancellationToken cancellationToken)
    {
        var found = new List<(string, RotationRule, bool, MountedBackend)>();
        foreach (var mounted in mounts.Mounts)
        {
            if (mounted.Capability<ISecretListing>() is not { } listing || !rules.All.Any(r => Reaches(r, mounted.Mount.Prefix)))
            {
                continue;
            }
            string? continuation = null;
            do
            {
                SecretListingPage page;
                try
                {
                    page = await listing.ListAsync("", 500, continuation, cancellationToken).ConfigureAwait(false);
                }
                catch (BrokerException ex)
                {
                    LogReadFailed(mounted.Mount.Prefix, ex.Kind.Name());
                    break;
                }
                foreach (var entry in page.Entries)
                {
                    var pendingRecord = entry.Name.EndsWith(SiblingRotationStore.Suffix, StringComparison.Ordinal);
                    var name = pendingRecord ? entry.Name[..^SiblingRotationStore.Suffix.Length] : entry.Name;
                    var path = mounted.Mount.Prefix + "/" + name;
                    if (LogicalPath.Validate(path) is null && rules.Find(path) is { } rule)
                    {
                        found.Add((path, rule, pendingRecord, mounted));
                    }
                }
                continuation = page.Continuation;
            }
            while (continuation is not null);
        }
        return found;
    }

    // Whether a rule's glob can match paths on a mount: its literal leading segments and the mount prefix agree.
    private static bool Reaches(RotationRule rule, string mountPrefix)
    {
        var literal = string.Join('/', rule.Pattern.Text.Split('/').TakeWhile(s => !s.Contains('*', StringComparison.Ordinal)));
        return literal.Length == 0 || (literal + "/").StartsWith(mountPrefix + "/", StringComparison.Ordinal)
            || (mountPrefix + "/").StartsWith(literal + "/", StringComparison.Ordinal);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rotation schedule pass failed ({ErrorType}); tried again next interval")]
    private partial void LogPassFailed(string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rotation schedule could not read mount {Mount} ({Status}); tried again next interval")]
    private partial void LogReadFailed(string mount, string status);
}
