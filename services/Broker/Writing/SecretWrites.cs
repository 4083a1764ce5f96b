using System.Text;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Writing;

/// <summary>
/// A PutSecret request as a transport states it: fields or bytes (the one not given is empty) and the check-and-set
/// expectation (null: unconditional; "": only if the secret does not exist; else the version that must be current).
/// </summary>
public sealed record SecretPut(string Path, IReadOnlyDictionary<string, string> Data, byte[] Binary, string? ExpectedVersion)
{
    public override string ToString() => $"SecretPut {{ Fields = {Data.Count}, Binary = {Binary.Length} bytes, ExpectedVersion = {ExpectedVersion ?? "(any)"} }}";
}

/// <summary>The version a PutSecret created.</summary>
public sealed record WrittenSecret(string Path, string Version, DateTimeOffset? CreatedAt);

/// <summary>
/// The write path (PutSecret): the access guard (validate, authorize <c>write</c>, audit with the written version, never the
/// value), the mount's <see cref="ISecretWriter"/>, then, before answering, the secret's cached values dropped here, in
/// Redis and (through the backplane) on every replica, and its watchers told at once instead of at the next poll.
/// </summary>
public sealed class SecretWrites(AccessGuard guard, NewVersions newVersions, IOptions<WriteOptions> options)
{
    internal const string NotWritable = "this mount has no static secrets to write (a vault-dynamic mount issues credentials)";

    private readonly AccessGuard _guard = guard;
    private readonly NewVersions _newVersions = newVersions;
    private readonly WriteOptions _options = options.Value;

    public Task<WrittenSecret> PutAsync(AccessContext access, SecretPut put, CancellationToken cancellationToken) =>
        _guard.RunAsync(access, AuditActions.Write, put.Path, (this, put), static async (attempt, state, ct) =>
        {
            var (writes, put) = state;
            var target = writes._guard.Authorize<ISecretWriter>(attempt, Capability.Write, NotWritable);
            var write = writes.Validate(put);
            var written = await target.Capability.WriteVersionAsync(target.Name, write, ct).ConfigureAwait(false);
            attempt.Version = written.Version;
            // The version exists now: the caller going away must not leave other replicas serving the old one.
            await writes._newVersions.PublishAsync(attempt.Path, target.Mount, target.Name, written.Version).ConfigureAwait(false);
            return new WrittenSecret(attempt.Path, written.Version, written.CreatedAt);
        }, cancellationToken);

    private SecretWrite Validate(SecretPut put)
    {
        var hasData = put.Data.Count > 0;
        var hasBinary = put.Binary.Length > 0;
        if (hasData == hasBinary)
        {
            BrokerException.ThrowInvalidArgument("set exactly one of data (fields) and binary_data (bytes), and not empty");
        }
        if (put.ExpectedVersion is { } expected && (expected.Length > 256 || expected.Any(char.IsControl)))
        {
            BrokerException.ThrowInvalidArgument("expected_version must be at most 256 printable characters");
        }
        if (hasBinary)
        {
            if (put.Binary.Length > _options.MaxValueBytes)
            {
                BrokerException.ThrowInvalidArgument($"binary_data has {put.Binary.Length} bytes; the limit is {_options.MaxValueBytes}");
            }
            return new SecretWrite { Binary = put.Binary, ExpectedVersion = put.ExpectedVersion };
        }
        if (put.Data.Count > _options.MaxFields)
        {
            BrokerException.ThrowInvalidArgument($"data has {put.Data.Count} fields; the limit is {_options.MaxFields}");
        }
        long size = 0;
        foreach (var (name, value) in put.Data)
        {
            // Field names are checked without being quoted: they can be as telling as values.
            if (name.Length == 0 || name.Length > _options.MaxFieldNameLength || name.Any(char.IsControl))
            {
                BrokerException.ThrowInvalidArgument($"field names must be 1 to {_options.MaxFieldNameLength} printable characters");
            }
            size += Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value);
        }
        if (size > _options.MaxValueBytes)
        {
            BrokerException.ThrowInvalidArgument($"data has {size} bytes of names and values; the limit is {_options.MaxValueBytes}");
        }
        return new SecretWrite { Data = put.Data, ExpectedVersion = put.ExpectedVersion };
    }
}
