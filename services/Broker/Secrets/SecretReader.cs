using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Secrets;

/// <summary>Which layer answered a read.</summary>
public enum ServingSource
{
    Backend,
    L1,
    L2,
}

/// <summary>A secret with where it came from, ready to be returned to a caller.</summary>
public sealed record ServedSecret(string Path, MountDefinition Mount, SecretValue Value, ServingSource Source, TimeSpan Age, bool Stale);

/// <summary>The outcome for one requested path of a batch, in request order.</summary>
public sealed record BatchItem(string Path, ServedSecret? Secret, BrokerException? Error);

/// <summary>A page of a listing with logical paths and the token for the next page ("" on the last).</summary>
public sealed record ListingPage(IReadOnlyList<SecretListingEntry> Entries, string NextPageToken);

/// <summary>
/// The read path every API surface goes through: validate, route through the mount table, read.
/// Transport concerns (protobuf, status mapping) stay in Grpc/.
/// </summary>
public sealed class SecretReader(MountTable mounts, SecretCache cache, PolicyEvaluator policy, AccessAuditor auditor, IOptions<BrokerOptions> options)
{
    private readonly BrokerOptions _options = options.Value;

    /// <summary>Reads one secret; the access is audited, and in strict audit mode the value is returned only once its event is durable.</summary>
    public async Task<ServedSecret> GetAsync(AccessContext access, string path, VersionSelector selector, CancellationToken cancellationToken,
        ReadFreshness? freshness = null)
    {
        string? mount = null;
        ServedSecret served;
        try
        {
            var (mounted, name) = ResolveSecret(access.Caller!, path);
            mount = mounted.Mount.Prefix;
            served = await cache.GetAsync(path, mounted, name, selector, freshness ?? ReadFreshness.Default, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await auditor.RefusedAsync(access, AuditActions.Read, AuditablePath(path), mount, ex.StatusCode, ex.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
        await auditor.AllowedAsync(access, AuditActions.Read, path, served, mount, cancellationToken).ConfigureAwait(false);
        return served;
    }

    /// <summary>Reads many secrets; each distinct path is audited on its own, and an item whose event cannot be recorded is answered UNAVAILABLE.</summary>
    public async Task<IReadOnlyList<BatchItem>> GetManyAsync(AccessContext access, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        try
        {
            if (paths.Count == 0)
            {
                BrokerException.ThrowInvalidArgument("paths must name at least one secret");
            }
            if (paths.Count > _options.MaxBatchSize)
            {
                BrokerException.ThrowInvalidArgument($"paths has {paths.Count} entries; the limit is {_options.MaxBatchSize}");
            }
        }
        catch (BrokerException ex)
        {
            await auditor.RefusedAsync(access, AuditActions.Read, "", null, ex.StatusCode, ex.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
        var caller = access.Caller!;

        // Each distinct path is read once; results fan back out to every position that asked for it.
        var outcomes = new Dictionary<string, BatchItem>(StringComparer.Ordinal);
        var pending = new List<(string Path, MountedBackend Mounted, string Name)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (!seen.Add(path))
            {
                continue;
            }
            try
            {
                var (mounted, name) = ResolveSecret(caller, path);
                pending.Add((path, mounted, name));
            }
            catch (BrokerException ex)
            {
                outcomes[path] = new BatchItem(path, null, ex);
            }
        }

        foreach (var group in pending.GroupBy(p => p.Mounted))
        {
            var items = group.ToArray();
            var results = await ReadGroupAsync(group.Key, items.Select(i => (i.Path, i.Name)).ToArray(), cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < items.Length; i++)
            {
                outcomes[items[i].Path] = results[i];
            }
        }

        var audited = await Task.WhenAll(outcomes.Values.Select(item => AuditAsync(access, item, cancellationToken))).ConfigureAwait(false);
        foreach (var item in audited)
        {
            outcomes[item.Path] = item;
        }
        return [.. paths.Select(p => outcomes[p])];
    }

    /// <summary>
    /// Lists beneath <paramref name="prefix"/>, keeping only entries the caller may list: a page can hold
    /// fewer entries than asked for, and an empty page with a token means "more may follow".
    /// </summary>
    public async Task<ListingPage> ListAsync(AccessContext access, string prefix, int pageSize, string pageToken, CancellationToken cancellationToken)
    {
        string? mount = null;
        ListingPage page;
        try
        {
            (page, mount) = await ListPageAsync(access.Caller!, prefix, pageSize, pageToken, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokerException ex)
        {
            await auditor.RefusedAsync(access, AuditActions.List, AuditablePath(prefix), mount, ex.StatusCode, ex.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
        await auditor.AllowedAsync(access, AuditActions.List, prefix, null, mount, cancellationToken).ConfigureAwait(false);
        return page;
    }

    /// <summary>A path fit to record: malformed ones (any length, any bytes) are left out; the reason says what was wrong.</summary>
    private static string AuditablePath(string path) => LogicalPath.Validate(path) is null ? path : "";

    private async Task<BatchItem> AuditAsync(AccessContext access, BatchItem item, CancellationToken cancellationToken)
    {
        if (item.Secret is { } secret)
        {
            try
            {
                await auditor.AllowedAsync(access, AuditActions.Read, item.Path, secret, secret.Mount.Prefix, cancellationToken).ConfigureAwait(false);
                return item;
            }
            catch (BrokerException ex)
            {
                return item with { Secret = null, Error = ex };
            }
        }
        await auditor.RefusedAsync(access, AuditActions.Read, AuditablePath(item.Path), null, item.Error!.StatusCode, item.Error.Message, cancellationToken)
            .ConfigureAwait(false);
        return item;
    }

    private async Task<(ListingPage Page, string Mount)> ListPageAsync(CallerIdentity caller, string prefix, int pageSize, string pageToken,
        CancellationToken cancellationToken)
    {
        LogicalPath.EnsureValid(prefix, "prefix");
        if (pageSize < 0 || pageSize > _options.MaxListPageSize)
        {
            BrokerException.ThrowInvalidArgument($"page_size must be between 0 and {_options.MaxListPageSize}");
        }
        var (mounted, folder) = mounts.Resolve(prefix);
        var continuation = pageToken.Length == 0 ? null : ListingPageToken.Decode(prefix, pageToken);
        var page = await mounted.ListAsync(folder, pageSize == 0 ? _options.DefaultListPageSize : pageSize, continuation, cancellationToken)
            .ConfigureAwait(false);
        var mountPrefix = mounted.Mount.Prefix + "/";
        return (new ListingPage(
            [.. page.Entries.Select(e => e with { Name = mountPrefix + e.Name }).Where(e => policy.IsAllowed(caller, Capability.List, e.Name))],
            page.Continuation is null ? "" : ListingPageToken.Encode(prefix, page.Continuation)), mounted.Mount.Prefix);
    }

    /// <summary>Validates, authorizes (before anything is looked up, so a denial reveals nothing), then routes.</summary>
    private (MountedBackend Mounted, string Name) ResolveSecret(CallerIdentity caller, string path)
    {
        LogicalPath.EnsureValid(path);
        policy.EnsureAllowed(caller, Capability.Read, path);
        var resolved = mounts.Resolve(path);
        if (resolved.Name.Length == 0)
        {
            BrokerException.ThrowInvalidArgument("path names a mount, not a secret; add the secret's name after the mount prefix");
        }
        return resolved;
    }

    private async Task<IReadOnlyList<BatchItem>> ReadGroupAsync(MountedBackend mounted, (string Path, string Name)[] items, CancellationToken cancellationToken)
    {
        var results = new BatchItem[items.Length];
        if (mounted.Backend is IBatchSecretBackend batchBackend)
        {
            // A native multi-read is one backend call for the group; it is not cached item by item.
            var read = await mounted.GetManyAsync(batchBackend, [.. items.Select(i => i.Name)], cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < items.Length; i++)
            {
                results[i] = read[i].Value is { } value
                    ? new BatchItem(items[i].Path, new ServedSecret(items[i].Path, mounted.Mount, value, ServingSource.Backend, TimeSpan.Zero, Stale: false), null)
                    : new BatchItem(items[i].Path, null, read[i].Error);
            }
            return results;
        }
        await Parallel.ForAsync(0, items.Length, new ParallelOptions { MaxDegreeOfParallelism = _options.BatchConcurrency, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var (path, name) = items[i];
                try
                {
                    results[i] = new BatchItem(path, await cache.GetAsync(path, mounted, name, VersionSelector.Latest, ReadFreshness.Default, ct).ConfigureAwait(false), null);
                }
                catch (BrokerException ex)
                {
                    results[i] = new BatchItem(path, null, ex);
                }
            }).ConfigureAwait(false);
        return results;
    }
}
