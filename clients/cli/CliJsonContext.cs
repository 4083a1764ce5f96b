using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SecretsBroker.Cli;

/// <summary>Source-generated JSON for what brokerctl writes itself (a secret's fields in a file or template).</summary>
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>Values as they are (a password with + or &lt; is not \u-escaped): these are files for programs, not HTML.</summary>
    public static CliJsonContext Relaxed { get; } = new(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
