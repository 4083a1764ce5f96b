using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Grpc;

/// <summary>A bad configuration stops the service at start with a message that says what to fix.</summary>
[Trait("Category", "Integration")]
public sealed class StartupValidationTests : RedisAndStoreTest
{
    [Theory]
    [InlineData("--Audit:Key=", "the audit key is not configured")]
    [InlineData("--Audit:Key=c2hvcnQ=", "the audit key must be 32 bytes")]
    [InlineData("--Audit:Auth:Tokens:0:Sha256=not-a-hash", "Audit:Auth:Tokens:0:Sha256 must be 64 hex digits")]
    [InlineData("--Audit:Ingestion:BatchSize=0", "BatchSize")]
    [InlineData("--Audit:Store:RetentionDays=-1", "RetentionDays")]
    [InlineData("--Audit:Store:Provider=mysql", "Audit:Store:Provider must be sqlite or postgres")]
    [InlineData("--Audit:Store:Provider=postgres", "Audit:Store:ConnectionString is required")]
    [InlineData("--Audit:Auth:Mtls:Enabled=true", "Audit:Auth:Mtls:CaFiles needs at least one CA file")]
    [InlineData("--Audit:Auth:Mtls:Enabled=true --Audit:Auth:Mtls:CaFiles:0=/nonexistent/operators-ca.crt", "Audit:Auth:Mtls:Enabled needs TLS on the gRPC endpoint")]
    public async Task The_service_refuses_to_start_on_a_bad_setting_and_names_it(string setting, string message)
    {
        await using var service = new AuditServiceProcess(Redis, Path.Combine(Directory.Path, "audit.db"), extraArguments: setting.Split(' '));
        service.StartWithoutWaiting();
        await service.WaitForOutputAsync(message);
        Assert.Equal(1, await service.WaitForExitAsync());
        Assert.DoesNotContain(service.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
        Assert.DoesNotContain(service.Output, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_operator_token_without_a_name_or_hash_stops_the_service_at_start()
    {
        var storePath = Path.Combine(Directory.Path, "audit.db");
        await using var service = new AuditServiceProcess(Redis, storePath, extraArguments: ["--Audit:Auth:Tokens:0:Sha256=", "--Audit:Auth:Tokens:0:Name="]);
        service.StartWithoutWaiting();
        await service.WaitForOutputAsync("Audit:Auth:Tokens:0");
        await Eventually.WaitUntilAsync(() => service.HasExited, because: "the service to exit");
    }

    [Fact]
    public async Task An_operator_ca_file_that_does_not_load_stops_the_service_at_start()
    {
        var notPem = Path.Combine(Directory.Path, "operators-ca.crt");
        await File.WriteAllTextAsync(notPem, "not a certificate");
        await using var service = new AuditServiceProcess(Redis, Path.Combine(Directory.Path, "audit.db"), extraArguments:
            ["--Kestrel:Endpoints:Grpc:Url=https://127.0.0.1:0", "--Audit:Auth:Mtls:Enabled=true", $"--Audit:Auth:Mtls:CaFiles:0={notPem}"]);
        service.StartWithoutWaiting();
        await service.WaitForOutputAsync("Audit:Auth:Mtls:CaFiles:0: the CA file");
        Assert.Equal(1, await service.WaitForExitAsync());
        Assert.DoesNotContain(service.Output, line => line.Contains("Now listening on", StringComparison.Ordinal));
    }
}
