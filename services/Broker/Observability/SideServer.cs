using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace SecretsBroker.Broker.Observability;

/// <summary>
/// A small HTTP/1.1 Kestrel host beside the broker's own (the management port, the drop-in APIs): the broker's logging
/// without this host's own lifetime messages ("Now listening on", "Application started"), which would read as the
/// broker's, and no console lifetime of its own: the broker's host starts and stops it.
/// </summary>
internal static class SideServer
{
    /// <summary>A list of URLs separated by ';' or ',' (as ASPNETCORE_URLS).</summary>
    public static IEnumerable<string> SplitUrls(string? urls) =>
        (urls ?? "").Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static WebApplicationBuilder CreateBuilder(IHostEnvironment environment, ILoggerFactory loggerFactory, IEnumerable<string> urls)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions
        {
            ApplicationName = environment.ApplicationName,
            EnvironmentName = environment.EnvironmentName,
            ContentRootPath = environment.ContentRootPath,
        });
        builder.Services.AddSingleton<ILoggerFactory>(new WithoutLifetimeMessages(loggerFactory));
        builder.Services.AddSingleton<IHostLifetime, BrokerOwnedLifetime>();
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.ConfigureEndpointDefaults(endpoint => endpoint.Protocols = HttpProtocols.Http1);
        });
        builder.WebHost.UseUrls([.. urls]);
        return builder;
    }
}

/// <summary>The broker's logger factory minus the category <c>Microsoft.Hosting.Lifetime</c> (the management host's start and stop messages).</summary>
internal sealed class WithoutLifetimeMessages(ILoggerFactory inner) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) =>
        categoryName == "Microsoft.Hosting.Lifetime" ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : inner.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    // The broker's host owns and disposes the inner factory.
    public void Dispose()
    {
    }
}

/// <summary>A lifetime that waits for nothing and handles no signal: the management host starts and stops with the broker's.</summary>
internal sealed class BrokerOwnedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
