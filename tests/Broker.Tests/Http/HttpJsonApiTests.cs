using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Http;

/// <summary>
/// The v1 API over HTTP/1.1 and JSON (gRPC JSON transcoding, docs/http.md) against a real broker: the same authentication,
/// policy and audit as gRPC, errors as google.rpc.Status JSON with gRPC's HTTP status mapping. .NET's HttpClient speaks
/// HTTP/1.1 to the broker's cleartext HTTP/1.1 port, as curl would.
/// </summary>
[Trait("Category", "Integration")]
[Collection(HttpBrokerCollection.Name)]
public sealed class HttpJsonApiTests(HttpTestBroker broker) : IDisposable
{
    private readonly HttpClient _http = new() { DefaultRequestVersion = HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

    public void Dispose() => _http.Dispose();

    private async Task<(HttpResponseMessage Response, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token = BrokerHost.TestToken,
        string? json = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(broker.Http1, path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task A_secret_is_read_over_http_1_1_as_json_and_the_read_is_audited()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/db");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        var secret = body.GetProperty("secret");
        Assert.Equal("demo/alpha/db", secret.GetProperty("path").GetString());
        Assert.Equal("2", secret.GetProperty("version").GetString());
        Assert.Equal("FAKE-http-password", secret.GetProperty("data").GetProperty("password").GetString());
        Assert.Equal("2026-02-01T12:30:00.250Z", secret.GetProperty("createdTime").GetString());
        Assert.Equal("demo", secret.GetProperty("serving").GetProperty("mount").GetString());
        var audited = await broker.AuditedAsync(e => e.Event.Action == "read" && e.Path == "demo/alpha/db" && e.Event.Decision == Decision.Allow
            && e.Event.Caller == "test-alpha", "the HTTP read to be audited");
        Assert.Equal("dev-token", audited.Event.AuthMethod);
    }

    [Fact]
    public async Task Writes_rotations_and_encryption_work_over_http_with_the_same_policy_and_audit()
    {
        var (put, written) = await SendAsync(HttpMethod.Put, "/v1/secrets/writable/app/api-key",
            json: """{"data": {"client": "FAKE-client", "api_key": "FAKE-api-key-v2"}, "expectedVersion": "1"}""");
        Assert.True(put.StatusCode == HttpStatusCode.OK, written.ToString());
        Assert.Equal("2", written.GetProperty("version").GetString());
        var (stale, staleBody) = await SendAsync(HttpMethod.Put, "/v1/secrets/writable/app/api-key",
            json: """{"data": {"api_key": "FAKE-api-key-lost"}, "expectedVersion": "1"}""");
        Assert.Equal(HttpStatusCode.BadRequest, stale.StatusCode); // FAILED_PRECONDITION maps to 400
        Assert.Equal(9, staleBody.GetProperty("code").GetInt32());

        var (rotate, rotated) = await SendAsync(HttpMethod.Post, "/v1/secrets/writable/app/api-key:rotate", json: "{}");
        Assert.True(rotate.StatusCode == HttpStatusCode.OK, rotated.ToString());
        Assert.Equal("2", rotated.GetProperty("previousVersion").GetString());
        var (_, read) = await SendAsync(HttpMethod.Get, "/v1/secrets/writable/app/api-key");
        Assert.Equal(rotated.GetProperty("version").GetString(), read.GetProperty("secret").GetProperty("version").GetString());
        Assert.NotEqual("FAKE-api-key-v2", read.GetProperty("secret").GetProperty("data").GetProperty("api_key").GetString());
        Assert.Equal("FAKE-client", read.GetProperty("secret").GetProperty("data").GetProperty("client").GetString());

        var plaintext = Convert.ToBase64String("FAKE checkpoint bytes"u8);
        var (encrypt, sealedBody) = await SendAsync(HttpMethod.Post, "/v1/keys/keys/http:encrypt",
            json: $$$"""{"plaintext": "{{{plaintext}}}", "context": {"model": "demo"}}""");
        Assert.True(encrypt.StatusCode == HttpStatusCode.OK, sealedBody.ToString());
        var ciphertext = sealedBody.GetProperty("ciphertext").GetString();
        var (decrypt, opened) = await SendAsync(HttpMethod.Post, "/v1/keys/keys/http:decrypt",
            json: $$$"""{"ciphertext": "{{{ciphertext}}}", "context": {"model": "demo"}}""");
        Assert.True(decrypt.StatusCode == HttpStatusCode.OK, opened.ToString());
        Assert.Equal(plaintext, opened.GetProperty("plaintext").GetString());
        var (wrongContext, _) = await SendAsync(HttpMethod.Post, "/v1/keys/keys/http:decrypt",
            json: $$$"""{"ciphertext": "{{{ciphertext}}}", "context": {"model": "other"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, wrongContext.StatusCode);

        // Outside the grant: refused over HTTP as over gRPC, and audited.
        var (denied, _) = await SendAsync(HttpMethod.Put, "/v1/secrets/demo/alpha/token", json: """{"data": {"value": "FAKE-no"}}""");
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        await broker.AuditedAsync(e => e.Event.Action == "write" && e.Path == "writable/app/api-key" && e.Event.Decision == Decision.Allow,
            "the HTTP write to be audited");
        await broker.AuditedAsync(e => e.Event.Action == "rotate" && e.Path == "writable/app/api-key" && e.Event.Decision == Decision.Allow,
            "the HTTP rotation to be audited");
        await broker.AuditedAsync(e => e.Event.Action == "encrypt" && e.Event.Decision == Decision.Allow, "the HTTP encryption to be audited");
        await broker.AuditedAsync(e => e.Event.Action == "write" && e.Path == "demo/alpha/token" && e.Event.Decision == Decision.Deny,
            "the refused HTTP write to be audited");
    }

    [Fact]
    public async Task Version_and_max_age_are_query_parameters()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/db?version=1&max_age=30s");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("FAKE-old-password", body.GetProperty("secret").GetProperty("data").GetProperty("password").GetString());
    }

    [Fact]
    public async Task A_binary_secret_is_base64_in_json()
    {
        var (_, body) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/cert");

        Assert.Equal("FAKE-cert", Encoding.UTF8.GetString(Convert.FromBase64String(body.GetProperty("secret").GetProperty("binaryData").GetString()!)));
    }

    [Fact]
    public async Task Without_a_token_the_answer_is_401_with_a_google_rpc_status_and_the_refusal_is_audited()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/db", token: "FAKE-wrong-http-token");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("application/json", response.Content.Headers.ContentType!.ToString());
        Assert.Equal(16, body.GetProperty("code").GetInt32());
        Assert.Equal("the bearer token is not valid", body.GetProperty("message").GetString());
        await broker.AuditedAsync(e => e.Event.Action == "authenticate" && e.Event.Decision == Decision.Deny && e.Event.Reason == "the bearer token is not valid",
            "the refused HTTP call to be audited");
    }

    [Fact]
    public async Task A_path_the_policy_does_not_grant_is_403_and_audited()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/beta/db");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(7, body.GetProperty("code").GetInt32());
        Assert.DoesNotContain("FAKE-beta", body.ToString());
        await broker.AuditedAsync(e => e.Event.Action == "read" && e.Path == "demo/beta/db" && e.Event.Decision == Decision.Deny && e.Event.Caller == "test-alpha",
            "the denied HTTP read to be audited");
    }

    [Fact]
    public async Task A_missing_secret_is_404_and_a_malformed_path_400()
    {
        var (missing, missingBody) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/none");
        var (malformed, malformedBody) = await SendAsync(HttpMethod.Get, "/v1/secrets/demo/alpha/a%20b");

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(5, missingBody.GetProperty("code").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal(3, malformedBody.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Batch_get_answers_each_path_with_its_secret_or_its_status()
    {
        var (response, body) = await SendAsync(HttpMethod.Post, "/v1/secrets:batchGet", json: """{"paths":["demo/alpha/db","demo/beta/db"]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var results = body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal("FAKE-http-password", results[0].GetProperty("secret").GetProperty("data").GetProperty("password").GetString());
        Assert.Equal(7, results[1].GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_400_and_audited()
    {
        var (response, body) = await SendAsync(HttpMethod.Post, "/v1/secrets:batchGet", json: """{"paths": [""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(3, body.GetProperty("code").GetInt32());
        await broker.AuditedAsync(e => e.Event.Reason == "the HTTP request cannot be read as a secretsbroker.v1.BatchGetSecretsRequest"
            && e.Event.Caller == "test-alpha" && e.Event.GrpcStatus == 3, "the unreadable HTTP request to be audited");
    }

    [Fact]
    public async Task Listing_takes_the_prefix_as_a_query_parameter()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/v1/secrets:list?prefix=demo/alpha&page_size=10");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new string?[] { "demo/alpha/cert", "demo/alpha/db", "demo/alpha/token" },
            body.GetProperty("secrets").EnumerateArray().Select(s => s.GetProperty("path").GetString()).ToArray());
    }

    [Fact]
    public async Task The_broker_serves_an_openapi_document_of_the_http_api()
    {
        var (response, body) = await SendAsync(HttpMethod.Get, "/openapi/v1.json", token: null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var paths = body.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Contains("/v1/secrets:batchGet", paths);
        Assert.Contains(paths, p => p.StartsWith("/v1/secrets/{path", StringComparison.Ordinal));
        // The Crypto service's rules (/v1/keys/...) appear once its implementation (issue 20) maps the service.
    }

    [Fact]
    public async Task Json_is_served_over_h2c_on_the_grpc_port_as_the_readme_curl_does()
    {
        // curl --http2-prior-knowledge: HTTP/2 without TLS or upgrade.
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(broker.Host.Address, "/v1/secrets/demo/alpha/db"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", BrokerHost.TestToken);
        using var response = await _http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Contains("FAKE-http-password", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_tls_port_offers_http_1_1_by_alpn_beside_grpc_over_http_2()
    {
        using var pki = new TestPki();
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-tls-password" });
        await using var tls = await BrokerHost.StartAsync(SecretsBroker.Broker.Tests.Caching.CacheTestSettings.MemoryMount(SecretsBroker.Broker.Tests.Caching.CacheTestSettings.InProcessOnly(), "mem"), configureServices: memory.Register, tls: pki);
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
            chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(pki.Authority);
            chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
            return chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate!));
        };
        using var client = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(tls.Address, "/v1/secrets/mem/alpha/db"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", BrokerHost.TestToken);
        using var response = await client.SendAsync(request);
        var viaGrpc = await tls.CreateClient().GetSecretAsync("mem/alpha/db");

        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("FAKE-tls-password", await response.Content.ReadAsStringAsync());
        Assert.Equal("FAKE-tls-password", viaGrpc.Data["password"]);
    }

    [Fact]
    public async Task The_grpc_port_still_serves_grpc_beside_the_http_1_1_port()
    {
        var secret = await broker.Host.CreateClient().GetSecretAsync("demo/alpha/db");

        Assert.Equal("FAKE-http-password", secret.Data["password"]);
    }
}
