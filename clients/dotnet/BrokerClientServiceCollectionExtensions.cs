using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using CryptoClient = SecretsBroker.V1.Crypto.CryptoClient;
using V1Client = SecretsBroker.V1.SecretsBroker.SecretsBrokerClient;

namespace SecretsBroker.Client;

public static class BrokerClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="BrokerClient"/> (and the generated client) through Grpc.Net.ClientFactory, with
    /// bearer-token call credentials and retries on UNAVAILABLE.
    /// </summary>
    public static IServiceCollection AddSecretsBrokerClient(this IServiceCollection services, Action<BrokerClientOptions> configure)
    {
        services.AddOptions<BrokerClientOptions>().Configure(configure);
        AddConfiguredGrpcClient<V1Client>(services);
        AddConfiguredGrpcClient<CryptoClient>(services);
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<BrokerClientOptions>>().Value;
            return new BearerTokenSource(options.Token, options.TokenFile);
        });
        services.AddTransient(sp => new BrokerClient(sp.GetRequiredService<V1Client>(),
            sp.GetRequiredService<IOptions<BrokerClientOptions>>().Value.DefaultTimeout, sp.GetRequiredService<BearerTokenSource>(), sp.GetRequiredService<CryptoClient>()));
        return services;
    }

    private static void AddConfiguredGrpcClient<TClient>(IServiceCollection services) where TClient : class
    {
        services.AddGrpcClient<TClient>((sp, o) => o.Address = sp.GetRequiredService<IOptions<BrokerClientOptions>>().Value.Address)
            .ConfigurePrimaryHttpMessageHandler(sp => CreateHandler(sp.GetRequiredService<IOptions<BrokerClientOptions>>().Value))
            .ConfigureChannel((sp, channel) => ConfigureChannel(channel, sp.GetRequiredService<IOptions<BrokerClientOptions>>().Value))
            .AddCallCredentials((_, metadata, sp) =>
            {
                AddBearer(metadata, sp.GetRequiredService<BearerTokenSource>());
                return Task.CompletedTask;
            });
    }

    /// <summary>Creates a client without dependency injection (command-line tools, scripts). Dispose the channel when done.</summary>
    public static (BrokerClient Client, GrpcChannel Channel) CreateClient(BrokerClientOptions options)
    {
        var tokens = new BearerTokenSource(options.Token, options.TokenFile);
        var channelOptions = new GrpcChannelOptions { HttpHandler = CreateHandler(options), DisposeHttpClient = true };
        ConfigureChannel(channelOptions, options);
        if (tokens.HasToken)
        {
            channelOptions.Credentials = ChannelCredentials.Create(
                options.Address.Scheme == Uri.UriSchemeHttps ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
                CallCredentials.FromInterceptor((_, metadata) =>
                {
                    AddBearer(metadata, tokens);
                    return Task.CompletedTask;
                }));
        }
        var channel = GrpcChannel.ForAddress(options.Address, channelOptions);
        return (new BrokerClient(new V1Client(channel), options.DefaultTimeout, tokens.HasToken ? tokens : null, new CryptoClient(channel)), channel);
    }

    private static SocketsHttpHandler CreateHandler(BrokerClientOptions options)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan };
        if (options.ClientCertificate is { } certificate)
        {
            handler.SslOptions.ClientCertificates = new X509CertificateCollection { certificate };
        }
        if (options.TrustedCaCertificates is { Count: > 0 } trusted)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, serverCertificate, _, errors) =>
                serverCertificate is not null && IsIssuedByTrustedCa(new X509Certificate2(serverCertificate), trusted, errors);
        }
        return handler;
    }

    /// <summary>Chain validation against the given CAs only; name mismatches still fail.</summary>
    private static bool IsIssuedByTrustedCa(X509Certificate2 serverCertificate, X509Certificate2Collection trusted, SslPolicyErrors errors)
    {
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(serverCertificate);
    }

    private static void ConfigureChannel(GrpcChannelOptions channel, BrokerClientOptions options)
    {
        // Plain HTTP is for loopback development; tokens still have to travel there.
        channel.UnsafeUseInsecureChannelCallCredentials = options.Address.Scheme == Uri.UriSchemeHttp;
        if (options.MaxAttempts > 1)
        {
            channel.ServiceConfig = new ServiceConfig
            {
                MethodConfigs =
                {
                    new MethodConfig
                    {
                        Names = { MethodName.Default },
                        RetryPolicy = new RetryPolicy
                        {
                            MaxAttempts = options.MaxAttempts,
                            InitialBackoff = TimeSpan.FromMilliseconds(200),
                            MaxBackoff = TimeSpan.FromSeconds(2),
                            BackoffMultiplier = 2,
                            RetryableStatusCodes = { StatusCode.Unavailable },
                        },
                    },
                    // PutSecret is never retried by the channel: UNAVAILABLE can follow a write that happened, and a
                    // retry would write a second version or fail its check-and-set. The exact method name wins.
                    new MethodConfig { Names = { new MethodName { Service = "secretsbroker.v1.SecretsBroker", Method = "PutSecret" } } },
                    // A rotation is not repeated by the channel: an UNAVAILABLE answer may follow a rotation that happened.
                    new MethodConfig { Names = { new MethodName { Service = "secretsbroker.v1.SecretsBroker", Method = "RotateSecret" } } },
                },
            };
        }
    }

    private static void AddBearer(Metadata metadata, BearerTokenSource tokens)
    {
        if (tokens.GetToken() is { Length: > 0 } token)
        {
            metadata.Add("authorization", "Bearer " + token);
        }
    }
}
