using System.Globalization;
using SecretsBroker.Broker.Core;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace SecretsBroker.Broker.Backends.Keyring;

/// <summary>One key of a local keyring: its versions (AES-256 keys by version number) and the oldest version that may decrypt.</summary>
public sealed record KeyringKey(IReadOnlyDictionary<int, byte[]> Versions, int Latest, int MinDecryptionVersion)
{
    public override string ToString() => $"KeyringKey {{ Latest = {Latest}, MinDecryptionVersion = {MinDecryptionVersion} }}";
}

/// <summary>A loaded keyring: keys by name.</summary>
public sealed record KeyringSnapshot(IReadOnlyDictionary<string, KeyringKey> Keys)
{
    public override string ToString() => $"KeyringSnapshot {{ Keys = {Keys.Count} }}";
}

/// <summary>
/// Reads a local keyring, from a key file (YAML or JSON) or from the mount's configuration section, both of the shape
/// <c>keys: { name: { minDecryptionVersion: n, versions: { "1": base64 of 32 bytes, "2": ... } } }</c>. Rotation is adding a
/// version; the highest number encrypts. Messages name keys by position and versions by number, never by value.
/// </summary>
public static class Keyring
{
    public const int KeyBytes = 32;

    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    /// <summary>Parses a key file's content (JSON is YAML too).</summary>
    public static KeyringSnapshot ParseFile(string content)
    {
        KeyringModel? model;
        try
        {
            model = Yaml.Deserialize<KeyringModel?>(content);
        }
        catch (YamlException ex)
        {
            throw new FormatException($"not valid YAML/JSON at line {ex.Start.Line}, column {ex.Start.Column}");
        }
        if (model?.Keys is null)
        {
            throw new FormatException("the file has no top-level 'keys' map");
        }
        return Build(model.Keys.Select(k => (k.Key, k.Value?.MinDecryptionVersion,
            (IEnumerable<KeyValuePair<string, string?>>?)k.Value?.Versions)));
    }

    /// <summary>Reads the <c>Keys</c> section of a mount's configuration.</summary>
    public static KeyringSnapshot FromConfiguration(IConfigurationSection keys) =>
        Build(keys.GetChildren().Select(k => (k.Key,
            k["MinDecryptionVersion"] is { } min ? int.TryParse(min, NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : -1 : (int?)null,
            (IEnumerable<KeyValuePair<string, string?>>?)k.GetSection("Versions").GetChildren().Select(v => KeyValuePair.Create(v.Key, v.Value)))));

    private static KeyringSnapshot Build(IEnumerable<(string Name, int? MinDecryptionVersion, IEnumerable<KeyValuePair<string, string?>>? Versions)> keys)
    {
        var result = new Dictionary<string, KeyringKey>(StringComparer.Ordinal);
        var entry = 0;
        foreach (var (name, min, versions) in keys)
        {
            entry++;
            var where = $"key {entry} under 'keys'";
            if (LogicalPath.Validate(name, "name") is { } nameError)
            {
                throw new FormatException($"{where}: {nameError}");
            }
            var material = new Dictionary<int, byte[]>();
            foreach (var (number, value) in versions ?? [])
            {
                if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1)
                {
                    throw new FormatException($"{where}: version numbers must be positive whole numbers");
                }
                material[version] = Decode(value, $"{where}, version {version}");
            }
            if (material.Count == 0)
            {
                throw new FormatException($"{where} has no versions: add 'versions: {{ \"1\": <base64 of {KeyBytes} random bytes> }}'");
            }
            var latest = material.Keys.Max();
            var minimum = min ?? 1;
            if (minimum < 1 || minimum > latest)
            {
                throw new FormatException($"{where}: minDecryptionVersion must be between 1 and the latest version ({latest})");
            }
            result[name] = new KeyringKey(material, latest, minimum);
        }
        if (result.Count == 0)
        {
            throw new FormatException("the keyring has no keys");
        }
        return new KeyringSnapshot(result);
    }

    private static byte[] Decode(string? value, string where)
    {
        var bytes = new byte[KeyBytes + 3];
        if (value is null || !Convert.TryFromBase64String(value.Trim(), bytes, out var written) || written != KeyBytes)
        {
            throw new FormatException($"{where} must be the base64 of exactly {KeyBytes} bytes (AES-256)");
        }
        return bytes[..KeyBytes];
    }

    private sealed class KeyringModel
    {
        public Dictionary<string, KeyModel?>? Keys { get; set; }
    }

    private sealed class KeyModel
    {
        public int? MinDecryptionVersion { get; set; }

        public Dictionary<string, string?>? Versions { get; set; }
    }
}
