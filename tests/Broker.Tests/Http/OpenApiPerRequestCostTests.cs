using System.Net;
using Microsoft.Extensions.DependencyInjection;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using Swashbuckle.AspNetCore.Swagger;

namespace SecretsBroker.Broker.Tests.Http;

/// <summary>
/// The OpenAPI document costs nothing on other requests. Swashbuckle's SwaggerMiddleware takes its ISwaggerProvider as an
/// Invoke parameter, so wherever it sits in the pipeline the provider (SwaggerGenerator and its schema machinery, transient)
/// is built for every request that passes, gRPC calls included (seen in a perf profile of the cached GetSecret).
/// </summary>
[Trait("Category", "Integration")]
public sealed class OpenApiPerRequestCostTests
{
    [Fact]
    public async Task A_grpc_call_does_not_build_the_openapi_provider_and_the_document_still_does()
    {
        var resolved = 0;
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-openapi-cost" });
        await using var host = await BrokerHost.StartAsync(CacheTestSettings.MemoryMount(CacheTestSettings.InProcessOnly(), "mem"), configureServices: builder =>
        {
            memory.Register(builder);
            var original = builder.Services.Last(d => d.ServiceType == typeof(ISwaggerProvider));
            builder.Services.AddTransient<ISwaggerProvider>(sp =>
            {
                Interlocked.Increment(ref resolved);
                return original.ImplementationFactory is { } factory
                    ? (ISwaggerProvider)factory(sp)
                    : (ISwaggerProvider)ActivatorUtilities.CreateInstance(sp, original.ImplementationType!);
            });
        });
        var client = host.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("FAKE-openapi-cost", (await client.GetSecretAsync("mem/alpha/db")).Data["password"]);
        }
        var afterCalls = Volatile.Read(ref resolved);
        // The document is served on the gRPC port too (h2c, prior knowledge), and builds the provider when asked for.
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var document = await http.GetAsync(new Uri(host.Address, "/openapi/v1.json"));

        Assert.Equal(0, afterCalls);
        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
        Assert.Contains("\"openapi\"", await document.Content.ReadAsStringAsync());
        Assert.True(Volatile.Read(ref resolved) > 0);
    }
}
