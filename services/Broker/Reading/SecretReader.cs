using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Reading;

/// <summary>The outcome for one requested path of a batch, in request order.</summary>
public sealed record BatchItem(string Path, ServedSecret? Secret, BrokerException? Error);

/// <summary>A page of a listing with logical paths and the token for the next page ("" on the last).</summary>
public sealed record ListingPage(IReadOnlyList<SecretListingEntry> Entries, string NextPageToken);

/// <summary>
/// The read path every API surface goes through: the access guard (validate, authorize, audit), then the cache
/// in front of the mount's read capability. Transport concerns (protobuf, status mapping) stay in Grpc/.
/// </summary>
public sealed class SecretReader(AccessGuard guard, SecretCache cache, ListingPageTokens tokens, IOptions<BrokerOptions> options)
{
    internal const string NotReadable = "this mount has no static secrets to read (a vault-dynamic mount issues credentials: use IssueCredentials)";
    private const string NotListable = "this mount has no secrets to list (a vault-dynamic mount issues credentials)";

    private readonly BrokerOptions _options = options.Value;
    private readonly AccessGuard _guard = guard;
    private readonly SecretCache _cache = cache;
    private readonly ListingPageTokens _tokens = tokens;

    /// <summary>Reads one secret; the access is audited, and in strict audit mode the value is returned only once its event is durable.</summary>
    public Task<ServedSecret> GetAsync(AccessContext access, string path, VersionSelector selector, CancellationToken cancellationToken,
        ReadFreshness? freshness = null) =>
        GetAsync(access, path, new ReadSelection(selector, freshness ?? ReadFreshness.Default), cancellationToken);

    /// <summary>
    /// Reads one secret with a selection a transport request states; the selection is resolved inside the audited operation,
    /// so a malformed one is a refusal with its audit event.
    /// </summary>
    public Task<ServedSecret> GetAsync<TSelection>(AccessContext access, string path, TSelection selection, CancellationToken cancellationToken)
        where TSelection : IReadSelection =>
        _guard.RunAsync(access, AuditActions.Read, path, (this, selection), static async (attempt, state, ct) =>
        {
            var (reader, selection) = state;
            var (selector, freshness) = selection.Resolve();
            var target = reader._guard.Authorize<ISecretReading>(attempt, Capability.Read, NotReadable);
            var served = await reader._cache.GetAsync(new ResolvedSecret(attempt.Path, target.Mount, target.Name, target.Capability), selector, freshness, ct)
                .ConfigureAwait(false);
            attempt.Served = served;
            return served;
        }, cancellationToken);

    /// <summary>
    /// Reads many secrets; each distinct path gets its own audit event. The served items' events are recorded as one group, and
    /// when the group cannot be recorded every served item is answered UNAVAILABLE instead.
    /// </summary>
    public async Task<IReadOnlyList<BatchItem>> GetManyAsync(AccessContext access, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0 || paths.Count > _options.MaxBatchSize)
        {
            var invalid = new BrokerException(BrokerErrorKind.InvalidArgument, paths.Count == 0
                ? "paths must name at least one secret"
                : $"paths has {paths.Count} entries; the limit is {_options.MaxBatchSize}");
            await _guard.RefusedAsync(access, new AuditEntry(AuditActions.Read), invalid, cancellationToken).ConfigureAwait(false);
            throw invalid;
        }

        // Each distinct path is read once; results fan back out to every position that asked for it.
        var outcomes = new Dictionary<string, BatchItem>(StringComparer.Ordinal);
        var pending = new List<(string Path, Authorized<ISecretReading> Target)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (!seen.Add(path))
            {
                continue;
            }
            try
            {
                pending.Add((path, _guard.Authorize<ISecretReading>(access.Caller!, Capability.Read, path, NotReadable)));
            }
            catch (BrokerException ex)
            {
                outcomes[path] = new BatchItem(path, null, ex);
            }
        }

        foreach (var group in pending.GroupBy(p => p.Target.Mount))
        {
            var items = group.ToArray();
            var results = await ReadGroupAsync(items, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < items.Length; i++)
            {
                outcomes[items[i].Path] = results[i];
            }
        }

        // The served items' events go to the recorder as one group; refusals are recorded one by one.
        var served = outcomes.Values.Where(item => item.Secret is not null).ToList();
        var refusals = Task.WhenAll(outcomes.Values.Where(item => item.Secret is null).Select(item =>
            _guard.RefusedAsync(access, new AuditEntry(AuditActions.Read, item.Path), item.Error!, cancellationToken)));
        if (served.Count > 0)
        {
            try
            {
                await _guard.AllowedManyAsync(access, AuditActions.Read, [.. served.Select(item => item.Secret!)], cancellationToken).ConfigureAwait(false);
            }
            catch (BrokerException ex)
            {
                foreach (var item in served)
                {
                    outcomes[item.Path] = item with { Secret = null, Error = ex };
                }
            }
        }
        await refusals.ConfigureAwait(false);
        return [.. paths.Select(p => outcomes[p])];
    }

    /// <summary>
    /// Lists beneath <paramref name="prefix"/>, which needs <see cref="Capability.List"/> itself (checked before anything is
    /// looked up, so a foreign folder answers exactly as a missing one). Only entries the caller may list are returned, and
    /// they are filtered before the page is cut (<see cref="ListingPager"/>); page tokens are sealed to the caller and the
    /// prefix (<see cref="ListingPageTokens"/>).
    /// </summary>
    public Task<ListingPage> ListAsync(AccessContext access, string prefix, int pageSize, string pageToken, CancellationToken cancellationToken) =>
        _guard.RunAsync(access, AuditActions.List, prefix, (this, pageSize, pageToken), static async (attempt, state, ct) =>
        {
            var (reader, pageSize, pageToken) = state;
            LogicalPath.EnsureValid(attempt.Path, "prefix");
            if (pageSize < 0 || pageSize > reader._options.MaxListPageSize)
            {
                BrokerException.ThrowInvalidArgument($"page_size must be between 0 and {reader._options.MaxListPageSize}");
            }
            var target = reader._guard.Authorize<ISecretListing>(attempt, Capability.List, NotListable, allowMountRoot: true);
            var size = pageSize == 0 ? reader._options.DefaultListPageSize : pageSize;
            var start = pageToken.Length == 0 ? ListingPager.First(size) : reader._tokens.Open(attempt.Caller, attempt.Path, pageToken);
            var caller = attempt.Caller;
            var (entries, next) = await ListingPager.ReadAsync(target.Capability, target.Name, target.Mount.Prefix + "/",
                name => reader._guard.IsAllowed(caller, Capability.List, name), size, start, reader._options.MaxListBackendCalls, ct).ConfigureAwait(false);
            return new ListingPage(entries, next is { } cursor ? reader._tokens.Seal(caller, attempt.Path, cursor) : "");
        }, cancellationToken);

    private async Task<BatchItem[]> ReadGroupAsync((string Path, Authorized<ISecretReading> Target)[] items, CancellationToken cancellationToken)
    {
        var results = new BatchItem[items.Length];
        var mount = items[0].Target.Mount;
        if (items[0].Target.Mounted.Capability<ISecretBatchReading>() is { } batch)
        {
            // A native multi-read is one backend call for the group; it is not cached item by item.
            var read = await batch.GetManyAsync([.. items.Select(i => i.Target.Name)], cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < items.Length; i++)
            {
                results[i] = read[i].Value is { } value
                    ? new BatchItem(items[i].Path, new ServedSecret(items[i].Path, mount, value, ServingSource.Backend, TimeSpan.Zero, Stale: false), null)
                    : new BatchItem(items[i].Path, null, read[i].Error);
            }
            return results;
        }
        await Parallel.ForAsync(0, items.Length, new ParallelOptions { MaxDegreeOfParallelism = _options.BatchConcurrency, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var (path, target) = items[i];
                try
                {
                    var secret = new ResolvedSecret(path, target.Mount, target.Name, target.Capability);
                    results[i] = new BatchItem(path, await _cache.GetAsync(secret, VersionSelector.Latest, ReadFreshness.Default, ct).ConfigureAwait(false), null);
                }
                catch (BrokerException ex)
                {
                    results[i] = new BatchItem(path, null, ex);
                }
            }).ConfigureAwait(false);
        return results;
    }
}
