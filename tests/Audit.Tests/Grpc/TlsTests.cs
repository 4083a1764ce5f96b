using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Audit.Tests.Grpc;

/// <summary>
/// The audit service's gRPC port over TLS with the broker's Kestrel certificate settings
/// (<c>Kestrel:Endpoints:Grpc:Certificate:Path/KeyPath</c>, PEM files as cert-manager writes them).
/// </summary>
[Trait("Category", "Integration")]
public sealed class TlsTests : RedisAndStoreTest
{
    [Fact]
    public async Task The_grpc_port_serves_tls_with_the_configured_certificate_and_refuses_cleartext()
    {
        using var pki = new TestPki("Audit Test CA");
        using var certificate = pki.IssueServer();
        var certificatePath = Path.Combine(Directory.Path, "tls.crt");
        var keyPath = Path.Combine(Directory.Path, "tls.key");
        await File.WriteAllTextAsync(certificatePath, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, extraArguments:
        [
            "--Kestrel:Endpoints:Grpc:Url=https://127.0.0.1:0",
            $"--Kestrel:Endpoints:Grpc:Certificate:Path={certificatePath}",
            $"--Kestrel:Endpoints:Grpc:Certificate:KeyPath={keyPath}",
        ]);
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), [TestEvents.Make("alice", "kv/teams/alpha/db")]);
        await service.WaitUntilStoredAsync(1);

        // A client that trusts only the test CA: the chain and the name (127.0.0.1) must check out.
        X509Certificate2? presented = null;
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            presented = cert is null ? null : new X509Certificate2(cert);
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(pki.Authority);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && chain.Build(new X509Certificate2(cert));
        };
        using var channel = GrpcChannel.ForAddress($"https://127.0.0.1:{service.GrpcPort}", new GrpcChannelOptions { HttpHandler = handler });
        var client = new AuditLog.AuditLogClient(channel);
        using var query = client.Query(new QueryRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(await query.ResponseStream.MoveNext());
        Assert.Equal("kv/teams/alpha/db", query.ResponseStream.Current.Event.Path);
        Assert.Equal(certificate.Thumbprint, presented!.Thumbprint);

        // Cleartext HTTP/2 to the TLS port gets no answer.
        using var cleartext = GrpcChannel.ForAddress($"http://127.0.0.1:{service.GrpcPort}");
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            new AuditLog.AuditLogClient(cleartext).VerifyAsync(new VerifyRequest(), AuditServiceProcess.OperatorHeaders).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
    }

    [Fact]
    public async Task With_client_certificates_required_only_a_certificate_from_the_configured_ca_gets_through()
    {
        using var serverPki = new TestPki("Audit Server CA");
        using var operatorPki = new TestPki("Audit Operators CA");
        using var otherPki = new TestPki("Some Other CA");
        using var serverCertificate = serverPki.IssueServer();
        var certificatePath = Path.Combine(Directory.Path, "tls.crt");
        var keyPath = Path.Combine(Directory.Path, "tls.key");
        var operatorCaPath = Path.Combine(Directory.Path, "operators-ca.crt");
        await File.WriteAllTextAsync(certificatePath, serverCertificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, serverCertificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        await File.WriteAllTextAsync(operatorCaPath, operatorPki.AuthorityPem);

        await using var service = await AuditServiceProcess.StartAsync(Redis, StorePath, extraArguments:
        [
            "--Kestrel:Endpoints:Grpc:Url=https://127.0.0.1:0",
            $"--Kestrel:Endpoints:Grpc:Certificate:Path={certificatePath}",
            $"--Kestrel:Endpoints:Grpc:Certificate:KeyPath={keyPath}",
            "--Audit:Auth:Mtls:Enabled=true",
            $"--Audit:Auth:Mtls:CaFiles:0={operatorCaPath}",
        ]);
        await TestEvents.AppendAsync(await Redis.DatabaseAsync(), [TestEvents.Make("alice", "kv/teams/alpha/db")]);
        await service.WaitUntilStoredAsync(1);

        // A certificate from the configured CA (and the operator token): Query answers.
        using (var operatorCertificate = operatorPki.IssueClient("oncall"))
        {
            var stored = await QueryAsync(service.GrpcPort, serverPki, operatorCertificate);
            Assert.Equal("kv/teams/alpha/db", stored.Event.Path);
        }

        // No client certificate: refused in the handshake.
        AssertRefusedByTls(await Assert.ThrowsAsync<RpcException>(() => QueryAsync(service.GrpcPort, serverPki, clientCertificate: null)));

        // A client certificate from another CA: refused, and the refusal is logged with its issuer.
        using (var foreign = otherPki.IssueClient("oncall"))
        {
            AssertRefusedByTls(await Assert.ThrowsAsync<RpcException>(() => QueryAsync(service.GrpcPort, serverPki, foreign)));
        }
        await service.WaitForOutputAsync("Refused a TLS client certificate issued by CN=Some Other CA");

        // A certificate from the right CA but not for client authentication (a server certificate): refused.
        using (var serverUsage = operatorPki.IssueServer())
        {
            AssertRefusedByTls(await Assert.ThrowsAsync<RpcException>(() => QueryAsync(service.GrpcPort, serverPki, serverUsage)));
        }
    }

    /// <summary>
    /// The server ended the connection over the client certificate. With TLS 1.3 the client's side of the handshake is
    /// complete before the server checks its certificate (RFC 8446: section 2, the client may send data right after its
    /// Finished; 4.4.2.4, the server aborts with an alert), so the server's alert reaches the
    /// client while it opens the call (UNAVAILABLE) or while it reads the answer (INTERNAL), depending on timing; either
    /// way no answer came back.
    /// </summary>
    private static void AssertRefusedByTls(RpcException refused) =>
        Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"expected a transport failure, got {refused.Status}");

    /// <summary>One Query over TLS, trusting only <paramref name="serverPki"/>, presenting <paramref name="clientCertificate"/> if any.</summary>
    private static async Task<StoredEvent> QueryAsync(int port, TestPki serverPki, X509Certificate2? clientCertificate)
    {
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(serverPki.Authority);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && chain.Build(new X509Certificate2(cert));
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }
        using var channel = GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = handler });
        using var query = new AuditLog.AuditLogClient(channel).Query(new QueryRequest(), AuditServiceProcess.OperatorHeaders);
        Assert.True(await query.ResponseStream.MoveNext());
        return query.ResponseStream.Current;
    }
}
