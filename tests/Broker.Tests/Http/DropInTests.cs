using System.Net;
using System.Text.Json;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Http;

/// <summary>
/// The AWS Secrets Manager Agent drop-in (requests as the agent's README shows them, answers parsed by botocore with the
/// GetSecretValue output shape) and the Dapr secrets API drop-in (dapr pkg/api/http/secrets.go), both acting as the configured
/// identity svc-dropin, with policy and audit.
/// </summary>
[Trait("Category", "Integration")]
[Collection(HttpBrokerCollection.Name)]
public sealed class DropInTests(HttpTestBroker broker) : IDisposable
{
    private static readonly string AgentClient = Path.Combine(RepositoryLayout.Root, "tests", "Broker.Tests", "Http", "agent_client.py");
    private readonly HttpClient _http = new();

    public void Dispose() => _http.Dispose();

    private async Task<JsonElement> AgentAsync(string token, string secretId, string? stage = null)
    {
        var (exit, stdout, stderr) = await ExternalProcess.RunAsync(MotoServer.Python,
            [AgentClient, broker.Agent.ToString(), token, secretId, .. stage is null ? Array.Empty<string>() : [stage]]);
        Assert.True(exit == 0, stderr);
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    [Fact]
    public async Task The_agent_request_of_the_docs_gets_an_answer_botocore_parses_as_GetSecretValue()
    {
        var answer = await AgentAsync(HttpTestBroker.AgentToken, "alpha/db");

        Assert.Equal(200, answer.GetProperty("status").GetInt32());
        var parsed = answer.GetProperty("parsed");
        Assert.Equal("alpha/db", parsed.GetProperty("Name").GetString());
        Assert.Equal("2", parsed.GetProperty("VersionId").GetString());
        Assert.EndsWith(":secret:alpha/db", parsed.GetProperty("ARN").GetString());
        var fields = JsonDocument.Parse(parsed.GetProperty("SecretString").GetString()!).RootElement;
        Assert.Equal("FAKE-http-password", fields.GetProperty("password").GetString());
        Assert.Equal("2026-02-01T12:30:00.250000+00:00", parsed.GetProperty("CreatedDate").GetString());
        // The agent writes CreatedDate as fractional epoch seconds in a string (output.rs, TimestampSecondsWithFrac<String>).
        Assert.Equal("1769949000.25", answer.GetProperty("raw").GetProperty("CreatedDate").GetString());
        var audited = await broker.AuditedAsync(e => e.Event.Caller == "svc-dropin" && e.Path == "demo/alpha/db" && e.Event.Decision == Decision.Allow,
            "the agent read to be audited");
        Assert.Equal("aws-agent", audited.Event.AuthMethod);
    }

    [Fact]
    public async Task A_binary_secret_is_SecretBinary()
    {
        var answer = await AgentAsync(HttpTestBroker.AgentToken, "alpha/cert");

        Assert.Equal("RkFLRS1jZXJ0", answer.GetProperty("parsed").GetProperty("SecretBinary").GetString());
        Assert.False(answer.GetProperty("parsed").TryGetProperty("SecretString", out _));
    }

    [Fact]
    public async Task Without_the_ssrf_token_the_agent_answers_403_Bad_Token_and_the_refusal_is_audited()
    {
        using var response = await _http.GetAsync(new Uri(broker.Agent, "/secretsmanager/get?secretId=alpha/db"));
        var wrong = await AgentAsync("FAKE-wrong-ssrf-token", "alpha/db");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("Bad Token", await response.Content.ReadAsStringAsync());
        Assert.Equal(403, wrong.GetProperty("status").GetInt32());
        await broker.AuditedAsync(e => e.Event.Action == "authenticate" && e.Event.Reason == "missing or wrong SSRF token header", "the refusal to be audited");
    }

    [Fact]
    public async Task A_secret_the_identity_may_not_read_is_AccessDeniedException_and_a_missing_one_ResourceNotFoundException()
    {
        var denied = await AgentAsync(HttpTestBroker.AgentToken, "alpha/token");
        var missing = await AgentAsync(HttpTestBroker.AgentToken, "alpha/none");

        Assert.Equal(400, denied.GetProperty("status").GetInt32());
        Assert.Equal("AccessDeniedException", denied.GetProperty("parsed").GetProperty("Error").GetProperty("Code").GetString());
        Assert.Equal("ResourceNotFoundException", missing.GetProperty("parsed").GetProperty("Error").GetProperty("Code").GetString());
        await broker.AuditedAsync(e => e.Event.Caller == "svc-dropin" && e.Path == "demo/alpha/token" && e.Event.Decision == Decision.Deny,
            "the denied agent read to be audited");
    }

    [Theory]
    [InlineData("/secretsmanager/get", 400, "missing parameter secretId")]
    [InlineData("/secretsmanager/get?secretId=alpha/db&foo=1", 400, "unknown parameter: foo")]
    [InlineData("/secretsmanager/get?secretId=alpha/db&refreshNow=maybe", 400, "invalid refreshNow value")]
    [InlineData("/elsewhere", 404, "Not found")]
    [InlineData("/ping", 200, "healthy")]
    public async Task Requests_are_checked_with_the_agents_rules_and_messages(string path, int status, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(broker.Agent, path));
        request.Headers.Add("X-Aws-Parameters-Secrets-Token", HttpTestBroker.AgentToken);
        using var response = await _http.SendAsync(request);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(text, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_path_form_and_refreshNow_read_the_same_secret()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(broker.Agent, "/v1/alpha%2Fdb?refreshNow=true"));
        request.Headers.Add("X-Vault-Token", HttpTestBroker.AgentToken);
        using var response = await _http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("alpha/db", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("Name").GetString());
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> DaprAsync(string path, string? token = HttpTestBroker.DaprToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(broker.Dapr, path));
        if (token is not null)
        {
            request.Headers.Add("dapr-api-token", token);
        }
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : JsonDocument.Parse(JsonSerializer.Serialize(text)).RootElement.Clone());
    }

    [Fact]
    public async Task Dapr_get_secret_answers_the_fields_and_takes_version_metadata()
    {
        var (status, body) = await DaprAsync("/v1.0/secrets/alpha/db");
        var (_, old) = await DaprAsync("/v1.0/secrets/alpha/db?metadata.version_id=1");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("FAKE-http-password", body.GetProperty("password").GetString());
        Assert.Equal("FAKE-old-password", old.GetProperty("password").GetString());
        var audited = await broker.AuditedAsync(e => e.Event.Caller == "svc-dropin" && e.Event.AuthMethod == "dapr" && e.Path == "demo/alpha/db",
            "the Dapr read to be audited");
        Assert.Equal(Decision.Allow, audited.Event.Decision);
    }

    [Fact]
    public async Task Dapr_bulk_answers_every_secret_of_the_store_the_identity_may_read()
    {
        var (status, body) = await DaprAsync("/v1.0/secrets/alpha/bulk");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["cert", "db"], body.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal("FAKE-http-password", body.GetProperty("db").GetProperty("password").GetString());
        Assert.Equal("RkFLRS1jZXJ0", body.GetProperty("cert").GetProperty("cert").GetString());
    }

    [Fact]
    public async Task Dapr_errors_have_daprs_codes_and_statuses()
    {
        var (unknownStatus, unknown) = await DaprAsync("/v1.0/secrets/gamma/db");
        var (deniedStatus, denied) = await DaprAsync("/v1.0/secrets/alpha/token");
        var (missingStatus, missing) = await DaprAsync("/v1.0/secrets/alpha/none");
        var (tokenStatus, token) = await DaprAsync("/v1.0/secrets/alpha/db", token: null);

        Assert.Equal(HttpStatusCode.Unauthorized, unknownStatus);
        Assert.Equal("ERR_SECRET_STORE_NOT_FOUND", unknown.GetProperty("errorCode").GetString());
        Assert.Equal("failed finding secret store with key gamma", unknown.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, deniedStatus);
        Assert.Equal("ERR_PERMISSION_DENIED", denied.GetProperty("errorCode").GetString());
        Assert.Equal("access denied by policy to get \"token\" from \"alpha\"", denied.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.InternalServerError, missingStatus);
        Assert.Equal("ERR_SECRET_GET", missing.GetProperty("errorCode").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, tokenStatus);
        Assert.Equal("invalid api token\n", token.GetString());
        await broker.AuditedAsync(e => e.Event.Caller == "svc-dropin" && e.Path == "demo/alpha/token" && e.Event.Decision == Decision.Deny
            && e.Event.AuthMethod == "dapr", "the denied Dapr read to be audited");
    }
}
