using Grpc.Core;
using SecretsBroker.Broker.Auth;

namespace SecretsBroker.Broker.Grpc;

public static class CallerContext
{
    /// <summary>The admitted caller and request facts <see cref="BrokerCallInterceptor"/> recorded for this call.</summary>
    public static AccessContext GetAccess(this ServerCallContext context) =>
        context.GetHttpContext().Features.Get<AccessContext>()
        ?? throw new InvalidOperationException("no access context: the call did not pass through BrokerCallInterceptor");
}
