using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;

namespace SecretsBroker.Cli;

/// <summary>
/// What brokerctl prints: proto3 JSON on stdout (indented, or one line with <c>--compact</c>; every field
/// present, so an empty listing is <c>{"secrets":[]}</c> and jq filters never meet a missing key), bare
/// values for <c>$(...)</c>, and errors as <c>{"error":{"code":"NOT_FOUND","message":...}}</c> on stderr.
/// </summary>
public sealed class CliOutput(bool compact)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    private static readonly JsonWriterOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Prints a message; <paramref name="patch"/> may rewrite the JSON first (status numbers to names).</summary>
    public void Print(IMessage message, Action<JsonNode>? patch = null) => Console.Out.WriteLine(Format(message, compact, patch));

    /// <summary>One event per line (JSON lines), whatever <c>--compact</c> says.</summary>
    public static void PrintLine(IMessage message) => Console.Out.WriteLine(Format(message, compact: true, patch: null));

    /// <summary>A value as it is, for <c>$(brokerctl get ... -f password)</c>: a newline only when stdout is a terminal.</summary>
    public static void PrintBare(string value)
    {
        Console.Out.Write(value);
        if (!Console.IsOutputRedirected)
        {
            Console.Out.WriteLine();
        }
        Console.Out.Flush();
    }

    /// <summary>Binary data as raw bytes.</summary>
    public static void PrintBytes(ReadOnlySpan<byte> bytes)
    {
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(bytes);
        stdout.Flush();
    }

    /// <summary>The status name as gRPC documents it: NotFound -> NOT_FOUND.</summary>
    public static string StatusName(StatusCode code) =>
        string.Concat(code.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));

    /// <summary>Replaces a numeric <c>code</c> of an <c>error</c> object (ItemError) by its status name, as top-level errors print it.</summary>
    public static void NameErrorCode(JsonNode? item)
    {
        if (item?["error"] is JsonObject error && error["code"] is JsonValue value && value.TryGetValue<int>(out var number))
        {
            error["code"] = StatusName((StatusCode)number);
        }
    }

    public static void WriteError(string code, string message) => WriteProblem("error", code, message);

    /// <summary>A warning on stderr, as errors print: {"warning":{"code":...,"message":...}}; the command goes on.</summary>
    public static void WriteWarning(string code, string message) => WriteProblem("warning", code, message);

    private static void WriteProblem(string kind, string code, string message)
    {
        using var writer = new Utf8JsonWriter(Console.OpenStandardError(), Relaxed);
        writer.WriteStartObject();
        writer.WriteStartObject(kind);
        writer.WriteString("code", code);
        writer.WriteString("message", message);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        Console.Error.WriteLine();
    }

    public static int Usage(string message)
    {
        WriteError("USAGE", message);
        return ExitCodes.Usage;
    }

    private static string Format(IMessage message, bool compact, Action<JsonNode>? patch)
    {
        var node = JsonNode.Parse(Formatter.Format(message))!;
        patch?.Invoke(node);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Relaxed with { Indented = !compact }))
        {
            node.WriteTo(writer);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
