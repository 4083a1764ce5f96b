using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Http;

/// <summary>
/// The identity a drop-in port serves (<c>Identity</c> of its options). Code written for the AWS Secrets Manager Agent or a Dapr
/// sidecar sends no broker credential (the agent's token header is SSRF protection, not authentication), so each drop-in port
/// is bound to loopback and every request on it acts as this one configured subject: policy, rate limits and audit apply to it.
/// </summary>
public sealed class DropInIdentity
{
    /// <summary>The policy subject, e.g. <c>svc-billing</c>. Required when the drop-in is on.</summary>
    public string Subject { get; set; } = "";

    /// <summary>Attributes policies can template on (namespace, team, ...).</summary>
    public Dictionary<string, string> Attributes { get; set; } = new(StringComparer.Ordinal);

    internal CallerIdentity ToCaller(string authMethod) => new(Subject, authMethod, Attributes);
}

/// <summary>
/// A drop-in API on its own small Kestrel server (HTTP/1.1, like the management port), so its routes and its identity never
/// reach the gRPC port and the gRPC surface never this one. Requests read through <see cref="Reading.SecretReader"/>, the
/// broker's one read path; a port that cannot be bound is logged and the broker goes on.
/// </summary>
public abstract partial class DropInServer(IServiceProvider services, IHostEnvironment environment, ILoggerFactory loggerFactory, ILogger logger)
    : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>The addresses the server listens on once started; empty when off or not bound.</summary>
    public IReadOnlyList<Uri> Addresses { get; private set; } = [];

    protected abstract string Name { get; }

    protected abstract string Urls { get; }

    protected abstract bool Enabled { get; }

    protected abstract void Map(WebApplication app);

    protected IServiceProvider Services => services;

    protected string ContentRootPath => environment.ContentRootPath;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }
        var builder = SideServer.CreateBuilder(environment, loggerFactory, SideServer.SplitUrls(Urls));
        var app = builder.Build();
        Map(app);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException)
        {
            LogBindFailed(logger, Name, Urls, ex.GetType().Name);
            await app.DisposeAsync().ConfigureAwait(false);
            return;
        }
        _app = app;
        Addresses = [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];
        LogListening(logger, Name, string.Join(' ', Addresses));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Admits a request as the port's identity: the access context for the audit, or the refusal (audited) when the identity is
    /// over its rate limit (<see cref="CallerRateLimiter"/>, as for gRPC callers).
    /// </summary>
    protected async Task<(AccessContext? Access, BrokerException? Refusal)> AdmitAsync(HttpContext http, CallerIdentity caller)
    {
        var refusals = services.GetRequiredService<EdgeRefusals>();
        var access = refusals.Access(http, caller);
        if (services.GetRequiredService<CallerRateLimiter>().TryAcquire(caller) is not null)
        {
            var refusal = new BrokerException(BrokerErrorKind.ResourceExhausted, "rate limit exceeded for this caller");
            await refusals.RefusedAsync(access, new AuditEntry(AuditActions.RateLimit), refusal, http.RequestAborted).ConfigureAwait(false);
            return (null, refusal);
        }
        return (access, null);
    }

    /// <summary>Audits a request refused before it names a secret (a bad token, a bad request) as an authentication refusal.</summary>
    protected Task RefusedAsync(HttpContext http, BrokerErrorKind kind, string reason) =>
        services.GetRequiredService<EdgeRefusals>().RefusedAsync(services.GetRequiredService<EdgeRefusals>().Access(http, null),
            new AuditEntry(AuditActions.Authenticate), new BrokerException(kind, reason), http.RequestAborted);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name} drop-in listening on {Addresses}")]
    private static partial void LogListening(ILogger logger, string name, string addresses);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Name} drop-in could not listen on {Urls} ({ExceptionType}); the broker goes on without it")]
    private static partial void LogBindFailed(ILogger logger, string name, string urls, string exceptionType);
}
