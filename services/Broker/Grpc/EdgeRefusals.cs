using System.Diagnostics;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.AspNetCore.Authentication;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// The facts and the audit of calls refused at the edge of the gRPC surface, before any service method runs
/// (no credentials, an unreadable request, a rate limit): one way to describe the caller and to record the refusal, which
/// <see cref="RefusalSummaries"/> folds into counted events when one source repeats it.
/// </summary>
public sealed class EdgeRefusals(AccessAuditor auditor, RefusalSummaries summaries)
{
    /// <summary>Who is asking, from where, in which request; <paramref name="caller"/> is null before authentication succeeded.</summary>
    public AccessContext Access(HttpContext http, CallerIdentity? caller)
    {
        string? bearer = http.Request.Headers.Authorization;
        return new AccessContext(caller, http.TraceIdentifier, Peer(http.Connection), Activity.Current?.TraceId.ToHexString() ?? "",
            BearerTokens.Parse(bearer) is { IsEmpty: false } token ? auditor.Hmac(token) : "", Stopwatch.GetTimestamp());
    }

    /// <summary>Audits a call without a valid credential and returns its UNAUTHENTICATED status, whose message says why.</summary>
    public async Task<Status> UnauthenticatedAsync(HttpContext http, CancellationToken cancellationToken)
    {
        // The handler caches its result per request, so this returns the authentication middleware's outcome with its reason.
        var reason = AuthenticationFailures.Describe((await http.AuthenticateAsync().ConfigureAwait(false)).Failure);
        await RefusedAsync(Access(http, null), new AuditEntry(AuditActions.Authenticate), new BrokerException(BrokerErrorKind.Unauthenticated, reason),
            cancellationToken).ConfigureAwait(false);
        return new Status(StatusCode.Unauthenticated, reason);
    }

    /// <summary>Records a refusal made at the edge; its reason must not vary from call to call, or nothing can be counted.</summary>
    public Task RefusedAsync(AccessContext access, AuditEntry entry, BrokerException error, CancellationToken cancellationToken) =>
        summaries.RefusedAsync(access, entry, error, cancellationToken);

    /// <summary>The caller's address as gRPC names peers (doc/naming.md), in the form Grpc.AspNetCore's ServerCallContext.Peer gives.</summary>
    public static string Peer(ConnectionInfo connection) => connection.RemoteIpAddress switch
    {
        null => "unknown",
        { AddressFamily: AddressFamily.InterNetwork } ip => $"ipv4:{ip}:{connection.RemotePort}",
        { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"ipv6:[{ip}]:{connection.RemotePort}",
        var ip => $"unknown:{ip}:{connection.RemotePort}",
    };
}
