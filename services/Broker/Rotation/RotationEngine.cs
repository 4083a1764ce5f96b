using SecretsBroker.Broker.Writing;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// Runs one rotation of one secret through the staged protocol: (1) the pending value is stored, (2) set in the target,
/// (3) tested, (4) promoted to current, then the pending record is cleared and every replica told. A recorded pending
/// rotation is finished (or rolled back) before a new one starts, so a crash between any two steps heals on the next run.
/// Callers go through <see cref="RotationFlights"/>, which runs one rotation per path across replicas.
/// </summary>
public sealed partial class RotationEngine(
    MountTable mounts,
    RotationRules rules,
    IRotationStoreProvider stores,
    IAwsManagedRotation awsManaged,
    NewVersions newVersions,
    RotationMetrics metrics,
    IOptions<RotationEngineOptions> options,
    IHostEnvironment environment,
    TimeProvider time,
    ILogger<RotationEngine> logger)
{
    /// <summary>The rule for a path; FAILED_PRECONDITION when none is configured.</summary>
    public RotationRule RuleFor(string path) =>
        rules.Find(path) ?? throw new BrokerException(BrokerErrorKind.FailedPrecondition,
            "no rotation strategy is configured for this path (Broker:Rotation)");

    /// <summary>Rotates now (finishing an interrupted rotation first). Counted in metrics; the caller holds the path's lock.</summary>
    public async Task<RotationResult> RotateAsync(string path, CancellationToken cancellationToken)
    {
        var rule = RuleFor(path);
        var (mounted, name) = mounts.Resolve(path);
        try
        {
            var result = rule.IsAwsManaged
                ? await awsManaged.RotateAsync(mounted, name, cancellationToken).ConfigureAwait(false)
                : await RotateStagedAsync(rule, StoreFor(mounted), path, name, cancellationToken).ConfigureAwait(false);
            await newVersions.PublishAsync(path, mounted.Mount, name, result.Version).ConfigureAwait(false);
            metrics.Succeeded(mounted.Mount.Prefix, rule.StrategyName, time.GetUtcNow());
            LogRotated(mounted.Mount.Prefix, rule.StrategyName);
            return result;
        }
        catch (BrokerException ex)
        {
            metrics.Failed(mounted.Mount.Prefix, rule.StrategyName);
            LogRotationFailed(mounted.Mount.Prefix, rule.StrategyName, ex.Kind.Name(), ex.Message);
            throw;
        }
    }

    /// <summary>Finishes or abandons a recorded pending rotation; null when there was none (or it was abandoned).</summary>
    public async Task<RotationResult?> RecoverAsync(string path, CancellationToken cancellationToken)
    {
        var rule = RuleFor(path);
        var (mounted, name) = mounts.Resolve(path);
        if (rule.IsAwsManaged)
        {
            return null;
        }
        var store = StoreFor(mounted);
        var pending = await store.ReadPendingAsync(name, cancellationToken).ConfigureAwait(false);
        return pending is null ? null : await ResumeAsync(rule, store, name, pending, cancellationToken).ConfigureAwait(false);
    }

    private IRotationStore StoreFor(MountedBackend mounted) =>
        stores.StoreOf(mounted) ?? throw new BrokerException(BrokerErrorKind.FailedPrecondition,
            $"mounts of type {mounted.Mount.Type} cannot store rotated versions (writable vault-kv, aws-sm and local mounts can)");

    private async Task<RotationResult> RotateStagedAsync(RotationRule rule, IRotationStore store, string path, string name, CancellationToken cancellationToken)
    {
        if (await store.ReadPendingAsync(name, cancellationToken).ConfigureAwait(false) is { } interrupted
            && await ResumeAsync(rule, store, name, interrupted, cancellationToken).ConfigureAwait(false) is { } finished)
        {
            // The interrupted rotation is this call's rotation: the secret has a new version now.
            return finished;
        }
        var current = await store.ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false);
        if (current.Data is not { } data)
        {
            throw new BrokerException(BrokerErrorKind.FailedPrecondition, "binary secrets cannot be rotated; rotation works on key/value fields");
        }
        var pending = new PendingRotation(Guid.NewGuid().ToString("n"), current.Version, rule.Strategy!.CreatePending(data), time.GetUtcNow());
        await store.WritePendingAsync(name, pending, cancellationToken).ConfigureAwait(false);
        CrashPoint(1);
        return await CompleteAsync(rule, store, name, data, pending, cancellationToken).ConfigureAwait(false);
    }

    private async Task<RotationResult?> ResumeAsync(RotationRule rule, IRotationStore store, string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        var current = await store.ReadCurrentAsync(name, cancellationToken).ConfigureAwait(false);
        if (current.Version != pending.BaseVersion)
        {
            await store.ClearPendingAsync(name, pending, cancellationToken).ConfigureAwait(false);
            if (current.Data is { } promoted && SameFields(promoted, pending.Data))
            {
                // Promoted before the crash; only the clean-up was left.
                LogResumed("promoted");
                return new RotationResult(current.Version, pending.BaseVersion, current.CreatedAt, rule.StrategyName);
            }
            // Another writer replaced the version the rotation started from: its pending value is stale.
            LogResumed("abandoned");
            return null;
        }
        LogResumed("resumed");
        return await CompleteAsync(rule, store, name, current.Data!, pending, cancellationToken).ConfigureAwait(false);
    }

    private async Task<RotationResult> CompleteAsync(RotationRule rule, IRotationStore store, string name, IReadOnlyDictionary<string, string> current,
        PendingRotation pending, CancellationToken cancellationToken)
    {
        var strategy = rule.Strategy!;
        var context = new RotationContext(ReadSecretAsync);
        try
        {
            await strategy.SetAsync(context, current, pending.Data, cancellationToken).ConfigureAwait(false);
            CrashPoint(2);
            await strategy.TestAsync(context, pending.Data, cancellationToken).ConfigureAwait(false);
            CrashPoint(3);
        }
        catch (BrokerException ex) when (!ex.Kind.IsTransient())
        {
            // The target refused: undo the set so current works, and drop the pending value. When the target cannot be
            // reached to undo, the pending record stays and the next attempt finishes or rolls back.
            if (await strategy.RollbackAsync(context, current, pending.Data, cancellationToken).ConfigureAwait(false))
            {
                await store.ClearPendingAsync(name, pending, cancellationToken).ConfigureAwait(false);
                LogRolledBack();
            }
            throw;
        }
        var promoted = await store.PromoteAsync(name, pending, cancellationToken).ConfigureAwait(false);
        CrashPoint(4);
        await store.ClearPendingAsync(name, pending, cancellationToken).ConfigureAwait(false);
        return new RotationResult(promoted.Version, pending.BaseVersion, promoted.CreatedAt, strategy.Name);
    }

    private async Task<IReadOnlyDictionary<string, string>> ReadSecretAsync(string path, CancellationToken cancellationToken)
    {
        // The rotation admin's secret is read by the broker for itself (no caller), straight from its mount.
        var (reader, _, name) = mounts.Resolve<ISecretReading>(path, "the rotation admin secret's mount cannot be read");
        var value = await reader.GetAsync(name, VersionSelector.Latest, cancellationToken).ConfigureAwait(false);
        return value.Data ?? throw new BrokerException(BrokerErrorKind.FailedPrecondition, "the rotation admin secret has no fields");
    }

    private static bool SameFields(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    // TEST ONLY (RotationEngineOptions.TestCrashAfterStep): dies like kill -9, without flushing or stopping the host, so the
    // recovery tests see exactly what a crash leaves. Inert unless the host environment is "Testing".
    private void CrashPoint(int step)
    {
        if (options.Value.TestCrashAfterStep == step && environment.IsEnvironment("Testing"))
        {
            LogCrashInjected(step);
            Process.GetCurrentProcess().Kill();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated a secret on mount {Mount} ({Strategy})")]
    private partial void LogRotated(string mount, string strategy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rotation on mount {Mount} ({Strategy}) failed: {Status} {Reason}; current version untouched")]
    private partial void LogRotationFailed(string mount, string strategy, string status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Found an unfinished rotation: {Outcome}")]
    private partial void LogResumed(string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rotation rolled back: the target refused the new value; current version untouched")]
    private partial void LogRolledBack();

    [LoggerMessage(Level = LogLevel.Critical, Message = "TEST ONLY: killing the process after rotation step {Step} (Broker:RotationEngine:TestCrashAfterStep)")]
    private partial void LogCrashInjected(int step);
}

/// <summary>The rotation store of a mount, or null when the mount cannot store rotated versions.</summary>
public interface IRotationStoreProvider
{
    IRotationStore? StoreOf(MountedBackend mounted);
}

/// <summary>aws-managed: asks AWS to rotate with the secret's own Lambda and follows the version change.</summary>
public interface IAwsManagedRotation
{
    Task<RotationResult> RotateAsync(MountedBackend mounted, string name, CancellationToken cancellationToken);
}
