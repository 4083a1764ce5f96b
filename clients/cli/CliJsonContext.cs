using System.Text.Json.Serialization;

namespace SecretsBroker.Cli;

/// <summary>Source-generated JSON for what brokerctl writes itself (a secret's fields in a file or template).</summary>
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSourceGenerationOptions(WriteIndented = false)]
internal sealed partial class CliJsonContext : JsonSerializerContext;
