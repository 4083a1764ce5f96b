using System.Collections.Frozen;
using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Grpc;

/// <summary>
/// Runs after authentication and before Grpc.AspNetCore reads a SecretsBroker call's body: a call without a valid
/// credential is answered UNAUTHENTICATED without reading its body, and the one request message of a unary or
/// server-streaming call is checked (<see cref="SingleMessageBody"/>), so broken framing or protobuf is INVALID_ARGUMENT
/// with a reason instead of Grpc.AspNetCore's INTERNAL or UNKNOWN. Both refusals are audited and logged at Debug.
/// </summary>
internal sealed partial class GrpcCallGate(RequestDelegate next, EdgeRefusals refusals, IOptions<GrpcServiceOptions<SecretsBrokerService>> grpcOptions,
    ILogger<GrpcCallGate> logger)
{
    private readonly int _maxMessageBytes = grpcOptions.Value.MaxReceiveMessageSize ?? int.MaxValue;
    private readonly IList<global::Grpc.Net.Compression.ICompressionProvider> _compressionProviders = grpcOptions.Value.CompressionProviders;

    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method;
        if (method is null || !BrokerMethods.All.TryGetValue(method.FullName, out var gated))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var cancellationToken = context.RequestAborted;
        if (CallerIdentity.FromPrincipal(context.User) is not { } caller)
        {
            var status = await refusals.UnauthenticatedAsync(context, cancellationToken).ConfigureAwait(false);
            LogRefused(gated.Name, nameof(StatusCode.Unauthenticated));
            await GrpcAnswers.WriteAsync(context, status).ConfigureAwait(false);
            return;
        }
        if (TranscodedCalls.IsTranscoded(context))
        {
            await TranscodedAsync(context, gated, caller, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (gated.Parser is not null)
        {
            var refusal = await SingleMessageBody.ReadAsync(context.Request, gated.Parser, gated.MessageName, _maxMessageBytes,
                _compressionProviders, cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                await refusals.RefusedAsync(refusals.Access(context, caller), new AuditEntry(gated.AuditAction),
                    new BrokerException((BrokerErrorKind)(int)refusal.Status, refusal.Reason), cancellationToken).ConfigureAwait(false);
                LogUnreadable(gated.Name, refusal.Status.ToString(), refusal.Reason);
                await GrpcAnswers.WriteAsync(context, new Status(refusal.Status, refusal.Reason)).ConfigureAwait(false);
                return;
            }
        }
        await next(context).ConfigureAwait(false);
    }

    /// <summary>
    /// An HTTP/JSON call: gRPC JSON transcoding reads the JSON body and the URL's fields itself and answers what it cannot read
    /// (400, google.rpc.Status JSON) before the interceptor runs. Such a refusal is audited here, as an unreadable gRPC
    /// message is above: the interceptor records the access context of every call it admitted or refused, so a failed answer
    /// without one was refused by transcoding.
    /// </summary>
    private async Task TranscodedAsync(HttpContext context, BrokerMethod gated, CallerIdentity caller, CancellationToken cancellationToken)
    {
        await next(context).ConfigureAwait(false);
        if (context.Response.StatusCode < StatusCodes.Status400BadRequest || context.Features.Get<AccessContext>() is not null)
        {
            return;
        }
        var status = (StatusCode)RpcHttpStatus.FromHttp(context.Response.StatusCode);
        var reason = $"the HTTP request cannot be read as a {gated.MessageName}";
        await refusals.RefusedAsync(refusals.Access(context, caller), new AuditEntry(gated.AuditAction),
            new BrokerException((BrokerErrorKind)(int)status, reason), cancellationToken).ConfigureAwait(false);
        LogUnreadable(gated.Name, status.ToString(), reason);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "A call to {Method} was refused before its service method ran: {Status}")]
    private partial void LogRefused(string method, string status);

    // The reasons are the broker's own fixed texts; nothing of the body is logged.
    [LoggerMessage(Level = LogLevel.Debug, Message = "A call to {Method} was refused: {Status}, {Reason}")]
    private partial void LogUnreadable(string method, string status, string reason);
}

/// <summary>A method of the SecretsBroker service: its request parser (null for a client stream, read by the service) and audit action.</summary>
internal sealed record BrokerMethod(string Name, MessageParser? Parser, string MessageName, string AuditAction);

internal static class BrokerMethods
{
    /// <summary>Every method of the v1 services (SecretsBroker, Crypto) by its full name ("/secretsbroker.v1.SecretsBroker/GetSecret"), from the proto descriptor.</summary>
    public static readonly FrozenDictionary<string, BrokerMethod> All = V1.SecretsBroker.Descriptor.Methods.Concat(V1.Crypto.Descriptor.Methods).ToFrozenDictionary(
        m => $"/{m.Service.FullName}/{m.Name}",
        m => new BrokerMethod(m.Name, m.IsClientStreaming ? null : m.InputType.Parser, m.InputType.FullName, m.Name switch
        {
            "GetSecret" or "BatchGetSecrets" => AuditActions.Read,
            "ListSecrets" => AuditActions.List,
            "IssueCredentials" => AuditActions.Issue,
            "RevokeLease" => AuditActions.Revoke,
            "WatchSecrets" => AuditActions.Watch,
            "KeepAlive" => AuditActions.Renew,
            "PutSecret" => AuditActions.Write,
            "RotateSecret" => AuditActions.Rotate,
            _ => CryptoAction(m.Name) ?? throw new InvalidOperationException($"no audit action for method {m.Name}"),
        }));

    private static string? CryptoAction(string method) => method switch
    {
        "Encrypt" => AuditActions.Encrypt,
        "Decrypt" => AuditActions.Decrypt,
        "GenerateDataKey" => AuditActions.GenerateDataKey,
        "DecryptDataKey" => AuditActions.DecryptDataKey,
        "Rewrap" => AuditActions.Rewrap,
        _ => null,
    };
}
