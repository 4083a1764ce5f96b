using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.Extensions.Options;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Store;
using SecretsBroker.Audit.V1;

namespace SecretsBroker.Audit.Service.Export;

/// <summary>
/// <c>SecretsBroker.Audit export --out FILE [--open-paths true]</c>: writes every stored record as one JSON
/// line, in sequence order, with what an offline check of the chain needs (the record's bytes in base64,
/// previous_hash, hash) and the event as protobuf JSON. Paths stay sealed unless --open-paths is given.
/// Reads the same configuration as the service (appsettings, environment, command line).
/// </summary>
public static class ExportCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Logging.ClearProviders();
        builder.AddAuditStore();
        using var host = builder.Build();

        var output = builder.Configuration["out"];
        if (string.IsNullOrWhiteSpace(output))
        {
            await Console.Error.WriteLineAsync("usage: SecretsBroker.Audit export --out FILE|- [--open-paths true] [--Audit:Store:Path=PATH]").ConfigureAwait(false);
            return 2;
        }
        var openPaths = builder.Configuration.GetValue("open-paths", false);
        IAuditStore store;
        AuditKey? auditKey;
        try
        {
            var storeOptions = host.Services.GetRequiredService<IOptions<StoreOptions>>().Value;
            var storePath = AuditStore.ResolvePath(storeOptions, builder.Environment);
            if (!storeOptions.UsesPostgres && !File.Exists(storePath))
            {
                await Console.Error.WriteLineAsync($"no audit store at {storePath} (set Audit:Store:Path)").ConfigureAwait(false);
                return 1;
            }
            store = host.Services.GetRequiredService<IAuditStore>();
            auditKey = openPaths ? host.Services.GetRequiredService<AuditKey>() : null;
        }
        catch (Exception exception) when (exception is OptionsValidationException or ArgumentException or Npgsql.NpgsqlException)
        {
            await Console.Error.WriteLineAsync($"export: {exception.Message}").ConfigureAwait(false);
            return 1;
        }

        var stream = output == "-" ? Console.OpenStandardOutput() : File.Create(output);
        await using var streamScope = stream.ConfigureAwait(false);
        var writer = new StreamWriter(stream, new UTF8Encoding(false));
        await using var writerScope = writer.ConfigureAwait(false);
        var formatter = new JsonFormatter(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));
        long count = 0;
        var anchor = store.ReadAnchor();
        foreach (var record in store.ReadAll())
        {
            var line = new StringBuilder();
            line.Append("{\"sequence\":").Append(record.Sequence)
                .Append(",\"previous_hash\":").Append(JsonSerializer.Serialize(record.PreviousHash, ExportJsonContext.Default.String))
                .Append(",\"hash\":").Append(JsonSerializer.Serialize(record.Hash, ExportJsonContext.Default.String));
            if (record.ParseEvent(out var unreadable) is not { } auditEvent)
            {
                // Same rule as Query: a damaged record is written as such and the export goes on.
                line.Append(",\"unreadable\":").Append(JsonSerializer.Serialize(unreadable, ExportJsonContext.Default.String)).Append('}');
                await writer.WriteLineAsync(line.ToString()).ConfigureAwait(false);
                count++;
                continue;
            }
            if (auditKey is not null)
            {
                auditEvent.Path = auditKey.OpenPath(auditEvent) ?? "";
            }
            line.Append(",\"stored_at_unix_ms\":").Append(record.StoredAtUnixMilliseconds)
                .Append(",\"record\":\"").Append(Convert.ToBase64String(record.Record)).Append('"')
                .Append(",\"event\":").Append(formatter.Format(auditEvent))
                .Append('}');
            await writer.WriteLineAsync(line.ToString()).ConfigureAwait(false);
            count++;
        }
        await writer.FlushAsync().ConfigureAwait(false);
        await Console.Error.WriteLineAsync(
            $"exported {count} records{(anchor is null ? "" : $" (retention anchor: sequence {anchor.Sequence}, hash {anchor.Hash})")}").ConfigureAwait(false);
        return 0;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class ExportJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
