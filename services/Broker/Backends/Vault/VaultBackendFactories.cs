using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>Settings of a <c>vault-kv</c> mount.</summary>
public sealed record VaultKvMountOptions(string Connection, string EnginePath);

/// <summary>Settings of a <c>vault-dynamic</c> mount.</summary>
public sealed record VaultDynamicMountOptions(string Connection, string Engine, string EnginePath, string CredentialEndpoint, TimeSpan? StsTtl);

/// <summary>
/// Mount type <c>vault-kv</c>. Settings: <c>Connection</c> (default "default", a key of
/// Broker:Vault:Connections) and <c>EnginePath</c> (default "secret": where the KV v2 engine is mounted in Vault).
/// </summary>
public sealed class VaultKvBackendFactory(VaultConnections connections) : ISecretBackendFactory
{
    public string MountType => "vault-kv";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var options = new VaultKvMountOptions(settings["Connection"] ?? "default", (settings["EnginePath"] ?? "secret").Trim('/'));
        VaultMountValidation.EnsureEnginePath(options.EnginePath, MountType);
        return new VaultKvBackend(connections.Get(options.Connection), options.EnginePath, mount.Prefix);
    }
}

/// <summary>
/// Mount type <c>vault-dynamic</c>. Settings: <c>Connection</c>, <c>Engine</c> (database | aws, required),
/// <c>EnginePath</c> (default: the engine's name), <c>CredentialEndpoint</c> (creds, or sts for AWS; default creds),
/// <c>StsTtl</c> (optional TimeSpan for STS credentials).
/// </summary>
public sealed class VaultDynamicBackendFactory(VaultConnections connections) : ISecretBackendFactory
{
    public string MountType => "vault-dynamic";

    public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings)
    {
        var engine = settings["Engine"];
        if (engine is not ("database" or "aws"))
        {
            throw new OptionsValidationException(mount.Prefix, typeof(VaultDynamicMountOptions), ["'Engine' must be database or aws"]);
        }
        var endpoint = settings["CredentialEndpoint"] ?? "creds";
        if (endpoint is not ("creds" or "sts") || (endpoint == "sts" && engine != "aws"))
        {
            throw new OptionsValidationException(mount.Prefix, typeof(VaultDynamicMountOptions), ["'CredentialEndpoint' must be creds, or sts for the aws engine"]);
        }
        var options = new VaultDynamicMountOptions(settings["Connection"] ?? "default", engine, (settings["EnginePath"] ?? engine).Trim('/'), endpoint,
            settings.GetValue<TimeSpan?>("StsTtl"));
        if (options.StsTtl is { } stsTtl && (stsTtl < VaultDynamicBackend.MinimumStsTtl || stsTtl > VaultDynamicBackend.MaximumStsTtl))
        {
            throw new OptionsValidationException(mount.Prefix, typeof(VaultDynamicMountOptions),
                ["'StsTtl' must be between 15 minutes (the AWS STS minimum, below which Vault refuses the request) and 36 hours (the STS maximum)"]);
        }
        VaultMountValidation.EnsureEnginePath(options.EnginePath, MountType);
        return new VaultDynamicBackend(connections.Get(options.Connection), options, mount.Prefix);
    }
}

internal static class VaultMountValidation
{
    public static void EnsureEnginePath(string enginePath, string mountType)
    {
        if (LogicalPath.Validate(enginePath, "EnginePath") is { } error)
        {
            throw new OptionsValidationException(mountType, typeof(VaultKvMountOptions), [error]);
        }
    }
}
