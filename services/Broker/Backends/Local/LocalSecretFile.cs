using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SecretsBroker.Broker.Core;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace SecretsBroker.Broker.Backends.Local;

/// <summary>
/// Parses the local backend's file (JSON, or YAML by extension .yaml/.yml) into an immutable snapshot.
/// Shape: <c>secrets: { name: { data: {k: v} } | { binary: base64 } | { versions: [ {data|binary, created} ] } }</c>.
/// Error messages name entries by number and position, never by name or value.
/// </summary>
public static class LocalSecretFile
{
    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    public static LocalSecretSnapshot Parse(string content, bool isYaml, DateTimeOffset fileTime)
    {
        var model = isYaml ? ParseYaml(content) : ParseJson(content);
        if (model?.Secrets is null)
        {
            throw new FormatException("the file has no top-level 'secrets' map");
        }

        var secrets = new Dictionary<string, SecretValue[]>(StringComparer.Ordinal);
        var entry = 0;
        foreach (var (name, secret) in model.Secrets)
        {
            entry++;
            if (LogicalPath.Validate(name, "name") is { } nameError)
            {
                throw new FormatException($"entry {entry} under 'secrets': {nameError}");
            }
            if (secret is null)
            {
                throw new FormatException($"entry {entry} under 'secrets' is empty");
            }
            var versions = secret.Versions;
            if (versions is not null && (secret.Data is not null || secret.Binary is not null))
            {
                throw new FormatException($"entry {entry} under 'secrets' has both 'versions' and a value; put every value inside 'versions'");
            }
            versions ??= [secret];
            if (versions.Count == 0)
            {
                throw new FormatException($"entry {entry} under 'secrets' has an empty 'versions' list");
            }
            secrets[name] = [.. versions.Select((v, i) => ToValue(v, i + 1, entry, fileTime))];
        }
        return new LocalSecretSnapshot(secrets);
    }

    private static SecretValue ToValue(LocalSecretVersionModel? version, int number, int entry, DateTimeOffset fileTime)
    {
        var where = $"entry {entry} under 'secrets', version {number}";
        if (version is null || (version.Data is null) == (version.Binary is null))
        {
            throw new FormatException($"{where}: give exactly one of 'data' (a map of strings) or 'binary' (base64)");
        }
        byte[]? binary = null;
        if (version.Binary is not null)
        {
            try
            {
                binary = Convert.FromBase64String(version.Binary);
            }
            catch (FormatException)
            {
                throw new FormatException($"{where}: 'binary' is not valid base64");
            }
        }
        var created = fileTime;
        if (version.Created is not null &&
            !DateTimeOffset.TryParse(version.Created, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out created))
        {
            throw new FormatException($"{where}: 'created' is not an ISO 8601 time");
        }
        return new SecretValue
        {
            Version = number.ToString(CultureInfo.InvariantCulture),
            CreatedAt = created,
            Data = version.Data,
            Binary = binary,
        };
    }

    private static LocalSecretFileModel? ParseJson(string content)
    {
        try
        {
            return JsonSerializer.Deserialize(content, LocalSecretFileJsonContext.Default.LocalSecretFileModel);
        }
        catch (JsonException ex)
        {
            // JsonException's message can quote the offending token; report only where it is.
            throw new FormatException($"the file is not valid JSON of the expected shape (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})");
        }
    }

    private static LocalSecretFileModel? ParseYaml(string content)
    {
        try
        {
            return Yaml.Deserialize<LocalSecretFileModel?>(content);
        }
        catch (YamlException ex)
        {
            throw new FormatException($"the file is not valid YAML of the expected shape (line {ex.Start.Line}, column {ex.Start.Column})");
        }
    }
}

/// <summary>The parsed file: every secret's versions (oldest first) and its names in ordinal order for listings.</summary>
public sealed class LocalSecretSnapshot(Dictionary<string, SecretValue[]> secrets)
{
    public IReadOnlyDictionary<string, SecretValue[]> Secrets { get; } = secrets;

    public string[] SortedNames { get; } = [.. secrets.Keys.Order(StringComparer.Ordinal)];
}

public sealed class LocalSecretFileModel
{
    public Dictionary<string, LocalSecretModel?>? Secrets { get; set; }
}

public class LocalSecretVersionModel
{
    public Dictionary<string, string>? Data { get; set; }

    public string? Binary { get; set; }

    public string? Created { get; set; }
}

public sealed class LocalSecretModel : LocalSecretVersionModel
{
    public List<LocalSecretVersionModel?>? Versions { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(LocalSecretFileModel))]
internal sealed partial class LocalSecretFileJsonContext : JsonSerializerContext;
