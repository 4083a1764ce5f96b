using System.Runtime.InteropServices;
using System.Text;
using Grpc.Core;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>
/// <c>brokerctl lease PATH -- command args</c>: issues credentials, runs the command with them in its
/// environment (<c>SECRETSBROKER_CRED_&lt;FIELD&gt;</c>), keeps the lease alive over a KeepAlive stream
/// (<see cref="LeaseKeeper"/>) while it runs, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to it, revokes the
/// lease when it exits and exits with its exit code. When the command's lease is lost (revoked, expired,
/// unknown to the broker, or rotated: its credentials are about to be revoked) the command is signalled
/// (<c>--signal</c>, then SIGKILL after <c>--kill-after</c>) and brokerctl exits 124.
/// </summary>
internal static class LeasedCommand
{
    internal sealed record Settings(string Path, string[] Command, string EnvironmentPrefix, int Signal, TimeSpan KillAfter);

    public static bool IsValidPrefix(string prefix) => prefix.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>The variable for a credential field: prefix + the field upper-cased, other characters as _.</summary>
    public static string VariableName(string prefix, string field)
    {
        var name = new StringBuilder(prefix);
        foreach (var c in field)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }
        return name.ToString();
    }

    public static async Task<int> RunAsync(CallContext call, Settings settings)
    {
        LeaseKeeper keeper;
        using (var issueTimeout = new CancellationTokenSource(call.Timeout))
        {
            try
            {
                keeper = await LeaseKeeper.StartAsync(call.Client, settings.Path, cancellationToken: issueTimeout.Token).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && issueTimeout.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, ""));
            }
        }
        var lease = keeper.Current;
        var leaseLost = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        int exitCode;
        try
        {
            var watching = WatchLeaseAsync(keeper, lease, leaseLost, stop.Token);
            var environment = lease.Credentials.ToDictionary(c => VariableName(settings.EnvironmentPrefix, c.Key), c => c.Value, StringComparer.Ordinal);
            var (child, startFailure) = ChildProcess.Start(settings.Command, environment);
            if (child is null)
            {
                exitCode = startFailure;
            }
            else
            {
                using (child)
                using (Forward(PosixSignal.SIGTERM, child, 15))
                using (Forward(PosixSignal.SIGINT, child, 2))
                using (Forward(PosixSignal.SIGHUP, child, 1))
                using (Forward(PosixSignal.SIGQUIT, child, 3))
                {
                    var exited = child.Process.WaitForExitAsync();
                    if (await Task.WhenAny(exited, leaseLost.Task).ConfigureAwait(false) == leaseLost.Task)
                    {
                        CliOutput.WriteError("LEASE_LOST", $"{await leaseLost.Task.ConfigureAwait(false)}; the command was stopped");
                        await child.StopAsync(settings.Signal, settings.KillAfter).ConfigureAwait(false);
                        exitCode = ExitCodes.LeaseLost;
                    }
                    else
                    {
                        await exited.ConfigureAwait(false);
                        exitCode = child.Process.ExitCode;
                    }
                }
            }
            await stop.CancelAsync().ConfigureAwait(false);
            await watching.ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            var current = keeper.Current;
            await keeper.DisposeAsync().ConfigureAwait(false);
            await RevokeAsync(call, lease.LeaseId).ConfigureAwait(false);
            if (current.LeaseId != lease.LeaseId)
            {
                await RevokeAsync(call, current.LeaseId).ConfigureAwait(false);
            }
        }
        return exitCode;
    }

    /// <summary>Completes <paramref name="lost"/> with the reason once the command's lease can no longer be relied on.</summary>
    private static async Task WatchLeaseAsync(LeaseKeeper keeper, Lease lease, TaskCompletionSource<string> lost, CancellationToken cancellationToken)
    {
        var expiresAt = lease.ExpiresAt?.ToDateTimeOffset() ?? DateTimeOffset.MaxValue;
        // The listener is registered by the first MoveNextAsync, before this method first yields: no event is missed.
        var changes = keeper.ChangesAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        var next = changes.MoveNextAsync().AsTask();
        try
        {
            if (await LossReasonAsync().ConfigureAwait(false) is { } reason)
            {
                lost.TrySetResult(reason);
            }
        }
        finally
        {
            // An async iterator cannot be disposed while a MoveNextAsync is pending: wait for it to end (the caller cancels).
            try
            {
                await next.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await changes.DisposeAsync().ConfigureAwait(false);
        }

        async Task<string?> LossReasonAsync()
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // No renewal in time (broker unreachable) loses the lease as surely as an EXPIRED event.
                var untilExpiry = expiresAt - DateTimeOffset.UtcNow;
                if (untilExpiry <= TimeSpan.Zero)
                {
                    return "the lease expired: no renewal reached the broker in time";
                }
                var expiry = Task.Delay(untilExpiry < TimeSpan.FromDays(1) ? untilExpiry : TimeSpan.FromDays(1), cancellationToken);
                if (await Task.WhenAny(next, expiry).ConfigureAwait(false) != next)
                {
                    continue;
                }
                try
                {
                    if (!await next.ConfigureAwait(false))
                    {
                        return null;
                    }
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                var leaseEvent = changes.Current;
                next = changes.MoveNextAsync().AsTask();
                if (leaseEvent.LeaseId != lease.LeaseId)
                {
                    continue;
                }
                switch (leaseEvent.Type)
                {
                    case LeaseEventType.Renewed or LeaseEventType.Attached when leaseEvent.ExpiresAt is not null:
                        expiresAt = leaseEvent.ExpiresAt.ToDateTimeOffset();
                        break;
                    case LeaseEventType.Rotated:
                        return "the broker rotated the lease (renewal refused or max TTL near): the command's credentials are about to be revoked";
                    case LeaseEventType.Revoked:
                        return "the lease was revoked";
                    case LeaseEventType.Expired:
                        return "the lease expired";
                    case LeaseEventType.Error when leaseEvent.Error?.Code == (int)StatusCode.NotFound:
                        return "the broker no longer knows the lease";
                }
            }
            return null;
        }
    }

    internal static PosixSignalRegistration Forward(PosixSignal signal, ChildProcess child, int number) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            // brokerctl stays to revoke the lease once the command has exited.
            context.Cancel = true;
            child.Signal(number);
        });

    internal static async Task RevokeAsync(CallContext call, string leaseId)
    {
        try
        {
            await call.Client.Raw.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = leaseId }, deadline: call.Deadline()).ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            // Already revoked or expired.
        }
        catch (RpcException ex)
        {
            CliOutput.WriteError(CliOutput.StatusName(ex.StatusCode), $"the lease could not be revoked ({ex.Status.Detail}); it expires at its TTL");
        }
    }
}
