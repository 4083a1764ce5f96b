using System.Diagnostics;

namespace SecretsBroker.Broker.Core;

/// <summary>The broker's activity source: spans around backend calls, children of the ASP.NET Core request span.</summary>
public static class BrokerTelemetry
{
    public const string ActivitySourceName = "SecretsBroker.Broker";

    public static readonly ActivitySource ActivitySource = new(ActivitySourceName);

    /// <summary>The W3C trace id of the call being served (for audit events and log correlation), or null outside a call.</summary>
    public static string? CurrentTraceId => Activity.Current is { } activity && activity.TraceId != default ? activity.TraceId.ToHexString() : null;
}
