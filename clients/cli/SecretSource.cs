using Grpc.Core;
using SecretsBroker.Client;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>A failure that ends a render or exec with its exit code (a missing secret, a denial, a template error).</summary>
internal sealed class MaterializeException(int exitCode, string code, string message) : Exception(message)
{
    public int ExitCode => exitCode;

    public string Code => code;
}

/// <summary>
/// The secrets and leases that <c>render</c> and <c>exec</c> put into files, fetched on first reference.
/// A render asks synchronously (<see cref="Secret"/>, <see cref="Lease"/>: the template engine's helpers
/// are synchronous); what is not here yet is recorded as missing, fetched in one batch
/// (<see cref="FetchMissingAsync"/>) and the render is run again, until nothing is missing. The references
/// of the last render are what <c>--watch</c> watches. With <paramref name="keepLeases"/> each role's lease
/// is kept alive by a <see cref="LeaseKeeper"/> (and revoked at <see cref="DisposeAsync"/>); without, the
/// credentials are issued once and live until their TTL.
/// </summary>
internal sealed class SecretSource(CallContext call, bool keepLeases) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Secret> _secrets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Lease> _issued = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LeaseKeeper> _keepers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _leaseIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _missingPaths = new(StringComparer.Ordinal);
    private readonly HashSet<string> _missingRoles = new(StringComparer.Ordinal);
    private HashSet<string> _referencedPaths = new(StringComparer.Ordinal);
    private HashSet<string> _referencedRoles = new(StringComparer.Ordinal);

    public bool HasMissing
    {
        get
        {
            lock (_gate)
            {
                return _missingPaths.Count + _missingRoles.Count > 0;
            }
        }
    }

    /// <summary>Secret paths the last render referenced.</summary>
    public IReadOnlySet<string> ReferencedPaths
    {
        get
        {
            lock (_gate)
            {
                return _referencedPaths;
            }
        }
    }

    /// <summary>The keepers of the roles referenced so far (watch mode).</summary>
    public IReadOnlyList<LeaseKeeper> Keepers
    {
        get
        {
            lock (_gate)
            {
                return [.. _keepers.Values];
            }
        }
    }

    /// <summary>Starts recording the references of one render.</summary>
    public void BeginRender()
    {
        lock (_gate)
        {
            _referencedPaths = new(StringComparer.Ordinal);
            _referencedRoles = new(StringComparer.Ordinal);
        }
    }

    /// <summary>The secret, or null (recorded as missing) when it has not been fetched yet.</summary>
    public Secret? Secret(string path)
    {
        lock (_gate)
        {
            _referencedPaths.Add(path);
            if (_secrets.TryGetValue(path, out var secret))
            {
                return secret;
            }
            _missingPaths.Add(path);
            return null;
        }
    }

    /// <summary>The role's current credentials, or null (recorded as missing) when none were issued yet.</summary>
    public Lease? Lease(string role)
    {
        lock (_gate)
        {
            _referencedRoles.Add(role);
            if (_keepers.TryGetValue(role, out var keeper))
            {
                _leaseIds.Add(keeper.Current.LeaseId);
                return keeper.Current;
            }
            if (_issued.TryGetValue(role, out var lease))
            {
                return lease;
            }
            _missingRoles.Add(role);
            return null;
        }
    }

    /// <summary>Drops a cached secret so the next render reads it again (a watch event: the broker has its new version).</summary>
    public void Invalidate(string? path = null)
    {
        lock (_gate)
        {
            if (path is null)
            {
                _secrets.Clear();
            }
            else
            {
                _secrets.Remove(path);
            }
        }
    }

    /// <summary>Reads every missing secret in one BatchGetSecrets call and issues credentials for every missing role.</summary>
    public async Task FetchMissingAsync(CancellationToken cancellationToken)
    {
        string[] paths;
        string[] roles;
        lock (_gate)
        {
            paths = [.. _missingPaths];
            roles = [.. _missingRoles];
            _missingPaths.Clear();
            _missingRoles.Clear();
        }
        if (paths.Length > 0)
        {
            var results = await call.Client.BatchGetSecretsAsync(paths, call.Deadline(), cancellationToken).ConfigureAwait(false);
            foreach (var result in results)
            {
                if (result.ResultCase != BatchGetSecretsResult.ResultOneofCase.Secret)
                {
                    var status = (StatusCode)result.Error.Code;
                    // The path is the caller's own reference (from its template or command line), never a value.
                    throw new MaterializeException(ExitCodes.For(status), CliOutput.StatusName(status), $"secret '{result.Path}': {result.Error.Message}");
                }
                lock (_gate)
                {
                    _secrets[result.Path] = result.Secret;
                }
            }
        }
        foreach (var role in roles)
        {
            await IssueAsync(role, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task IssueAsync(string role, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(call.Timeout);
        try
        {
            if (keepLeases)
            {
                var keeper = await LeaseKeeper.StartAsync(call.Client, role, cancellationToken: timeout.Token).ConfigureAwait(false);
                lock (_gate)
                {
                    _keepers[role] = keeper;
                    _leaseIds.Add(keeper.Current.LeaseId);
                }
                return;
            }
            var lease = await call.Client.Raw.IssueCredentialsAsync(new IssueCredentialsRequest { Path = role }, cancellationToken: timeout.Token)
                .ResponseAsync.ConfigureAwait(false);
            lock (_gate)
            {
                _issued[role] = lease;
            }
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || timeout.IsCancellationRequested)
        {
            var status = ex.StatusCode == StatusCode.Cancelled ? StatusCode.DeadlineExceeded : ex.StatusCode;
            var detail = status == StatusCode.DeadlineExceeded ? $"no answer from {call.Address} within {call.Timeout.TotalSeconds} s" : ex.Status.Detail;
            throw new MaterializeException(ExitCodes.For(status), CliOutput.StatusName(status), $"lease for role '{role}': {detail}");
        }
    }

    /// <summary>Stops the keepers and revokes every lease they held (a render that stops takes its credentials with it).</summary>
    public async ValueTask DisposeAsync()
    {
        LeaseKeeper[] keepers;
        string[] leaseIds;
        lock (_gate)
        {
            keepers = [.. _keepers.Values];
            foreach (var keeper in keepers)
            {
                _leaseIds.Add(keeper.Current.LeaseId);
            }
            leaseIds = [.. _leaseIds];
            _keepers.Clear();
        }
        foreach (var keeper in keepers)
        {
            await keeper.DisposeAsync().ConfigureAwait(false);
        }
        if (keepLeases)
        {
            foreach (var leaseId in leaseIds)
            {
                await LeasedCommand.RevokeAsync(call, leaseId).ConfigureAwait(false);
            }
        }
    }
}
