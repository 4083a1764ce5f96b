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
}
