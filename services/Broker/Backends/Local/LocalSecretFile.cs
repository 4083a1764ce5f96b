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

    /// <summary>
    /// Parses the file. A version without <c>created</c> keeps the time it had in <paramref name="previous"/> (the
    /// snapshot before this edit) when its content is unchanged, and otherwise takes <paramref name="fileTime"/>, the
    /// time of the edit that introduced it: editing one secret changes only that secret's times. At start there is no
    /// previous snapshot, so such versions take the file's modification time (write <c>created</c> for times that
    /// survive a restart).
    /// </summary>
    public static LocalSecretSnapshot Parse(string content, bool isYaml, DateTimeOffset fileTime, LocalSecretSnapshot? previous = null)
    {
        var model = ReadModel(content, isYaml);
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
            SecretValue[]? before = null;
            previous?.Secrets.TryGetValue(name, out before);
            secrets[name] = [.. versions.Select((v, i) => KeepTime(before, i, ToValue(v, i + 1, entry, fileTime), explicitTime: v?.Created is not null))];
        }
        return new LocalSecretSnapshot(secrets);
    }

    /// <summary>
    /// <paramref name="value"/>, with the time version <paramref name="index"/> had when last loaded if its content is
    /// the same and the file gives it no <c>created</c>.
    /// </summary>
    private static SecretValue KeepTime(SecretValue[]? before, int index, SecretValue value, bool explicitTime)
    {
        if (explicitTime || before is null || index >= before.Length || before[index].CreatedAt is not { } seen)
        {
            return value;
        }
        var old = before[index];
        var sameData = value.Data is null
            ? old.Data is null
            : old.Data is not null && old.Data.Count == value.Data.Count && value.Data.All(f => old.Data.TryGetValue(f.Key, out var v) && v == f.Value);
        var sameBinary = value.Binary is null ? old.Binary is null : old.Binary is not null && value.Binary.AsSpan().SequenceEqual(old.Binary);
        return sameData && sameBinary
            ? new SecretValue { Version = value.Version, CreatedAt = seen, Data = value.Data, Binary = value.Binary, Stages = value.Stages }
            : value;
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

    /// <summary>The file's model as written, for the writer (which appends a version and writes it back).</summary>
    public static LocalSecretFileModel? ReadModel(string content, bool isYaml) => isYaml ? ParseYaml(content) : ParseJson(content);

    /// <summary>The model in the file's own format (JSON indented, or YAML), without the members that are not set.</summary>
    public static string Write(LocalSecretFileModel model, bool isYaml) => isYaml
        ? YamlWriter.Serialize(model)
        : JsonSerializer.Serialize(model, LocalSecretFileWriteJsonContext.Default.LocalSecretFileModel);

    private static readonly ISerializer YamlWriter = new SerializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull)
        .Build();

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

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LocalSecretFileModel))]
internal sealed partial class LocalSecretFileWriteJsonContext : JsonSerializerContext;
