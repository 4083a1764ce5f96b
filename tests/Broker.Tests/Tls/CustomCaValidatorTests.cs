using System.Net.Security;
using System.Net.Sockets;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Tests.Tls;

/// <summary>
/// The shared custom-CA check against real Kestrel TLS servers presenting a root -> intermediate -> leaf
/// chain, cross-checked with curl <c>--cacert</c> (OpenSSL): whatever curl accepts with the same CA file the
/// broker's clients accept, and whatever curl refuses they refuse.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CustomCaValidatorTests
{
    [Fact]
    public async Task A_server_presenting_leaf_and_intermediate_is_accepted_with_only_the_root_in_the_CA_file()
    {
        using var pki = new TestCertificateChain();
        using var directory = new TestDirectory();
        var files = pki.WriteServerFiles(directory.Path);
        await using var server = await TlsTestServer.StartAsync(pki, Map);

        Assert.Equal(0, (await CurlAsync(server.Address, files.RootFile)).ExitCode);
        Assert.Equal("ok", await GetAsync(server.Address, files.RootFile));
    }

    [Fact]
    public async Task A_server_presenting_only_its_leaf_is_refused_as_curl_refuses_it()
    {
        using var pki = new TestCertificateChain();
        using var directory = new TestDirectory();
        var files = pki.WriteServerFiles(directory.Path);
        await using var server = await TlsTestServer.StartAsync(pki, Map, presentIntermediate: false);

        Assert.NotEqual(0, (await CurlAsync(server.Address, files.RootFile)).ExitCode);
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(server.Address, files.RootFile));
    }

    [Fact]
    public async Task An_intermediate_in_the_CA_file_completes_a_chain_the_server_did_not_send()
    {
        using var pki = new TestCertificateChain();
        using var directory = new TestDirectory();
        var caFile = directory.WriteFile("root-and-intermediate.pem", pki.RootPem + "\n" + pki.Intermediate.ExportCertificatePem() + "\n");
        await using var server = await TlsTestServer.StartAsync(pki, Map, presentIntermediate: false);

        Assert.Equal(0, (await CurlAsync(server.Address, caFile)).ExitCode);
        Assert.Equal("ok", await GetAsync(server.Address, caFile));
    }

    [Fact]
    public async Task A_chain_to_another_root_is_refused()
    {
        using var pki = new TestCertificateChain();
        using var other = new TestCertificateChain("Another");
        using var directory = new TestDirectory();
        var otherRoot = directory.WriteFile("other-root.pem", other.RootPem);
        await using var server = await TlsTestServer.StartAsync(pki, Map);

        Assert.NotEqual(0, (await CurlAsync(server.Address, otherRoot)).ExitCode);
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(server.Address, otherRoot));
    }

    [Fact]
    public async Task A_host_name_the_certificate_does_not_name_is_refused_even_with_a_trusted_chain()
    {
        using var pki = new TestCertificateChain();
        using var directory = new TestDirectory();
        var files = pki.WriteServerFiles(directory.Path);
        await using var server = await TlsTestServer.StartAsync(pki, Map);
        var validator = CustomCaValidator.FromPemFile(files.RootFile, "Test:CaCertificateFile");

        async Task HandshakeAsync(string targetHost)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(server.Address.Host, server.Address.Port);
            await using var tls = new SslStream(tcp.GetStream(), false, validator.ValidateServerCertificate);
            await tls.AuthenticateAsClientAsync(targetHost);
        }

        await HandshakeAsync("localhost");
        await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() => HandshakeAsync("vault.other.test"));
    }

    [Fact]
    public void A_CA_file_without_a_root_or_that_cannot_be_read_stops_the_start_with_a_message_naming_the_setting()
    {
        using var pki = new TestCertificateChain();
        using var directory = new TestDirectory();
        var intermediateOnly = directory.WriteFile("intermediate.pem", pki.Intermediate.ExportCertificatePem());

        var noRoot = Assert.Throws<InvalidOperationException>(() => CustomCaValidator.FromPemFile(intermediateOnly, "Broker:Redis:CaCertificateFile"));
        var missing = Assert.Throws<InvalidOperationException>(() => CustomCaValidator.FromPemFile(Path.Combine(directory.Path, "absent.pem"), "Broker:Redis:CaCertificateFile"));

        Assert.StartsWith("Broker:Redis:CaCertificateFile: ", noRoot.Message, StringComparison.Ordinal);
        Assert.Contains("no self-signed (root) CA certificate", noRoot.Message, StringComparison.Ordinal);
        Assert.StartsWith("Broker:Redis:CaCertificateFile: ", missing.Message, StringComparison.Ordinal);
    }

    private static void Map(WebApplication app) => app.MapGet("/", () => "ok");

    private static async Task<string> GetAsync(Uri address, string caFile)
    {
        var validator = CustomCaValidator.FromPemFile(caFile, "Test:CaCertificateFile");
        using var http = new HttpClient(validator.ApplyTo(new SocketsHttpHandler()));
        return await http.GetStringAsync(address);
    }

    /// <summary>curl (OpenSSL) with the same CA file: exit code 0 when it accepts the server, 60 when the chain does not verify.</summary>
    private static Task<(int ExitCode, string StandardOutput, string StandardError)> CurlAsync(Uri address, string caFile) =>
        ExternalProcess.RunAsync("curl", ["--silent", "--show-error", "--cacert", caFile, "--max-time", "20", address.ToString()], timeout: TimeSpan.FromSeconds(30));
}
