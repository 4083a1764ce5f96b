using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace SecretsBroker.Broker.Backends.Vault;

/// <summary>
/// Instruments of the Vault connections (meter <c>SecretsBroker.Vault</c>, exported with the broker's
/// other meters). Labels are connection names and auth methods from configuration and fixed outcome
/// names; never a credential, a token or a path.
/// </summary>
public sealed class VaultMetrics : IDisposable
{
    public const string MeterName = "SecretsBroker.Vault";

    private readonly Meter _meter;
    private readonly Counter<long> _logins;
    private readonly ConcurrentDictionary<string, VaultTokenSource> _connections = new(StringComparer.Ordinal);

    public VaultMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _logins = _meter.CreateCounter<long>("secretsbroker.vault.logins", unit: "{login}",
            description: "Logins of the broker to Vault, by connection, auth method and outcome (ok, refused, failed)");
        _meter.CreateObservableGauge("secretsbroker.vault.credential.refused", Observe, unit: "{credential}",
            description: "1 while Vault refuses a connection's login credential (an AppRole secret_id used up or expired, a JWT expired), else 0");
    }

    internal void Track(string connection, VaultTokenSource tokens)
    {
        _connections[connection] = tokens;
        // Every outcome at zero from start, so an alert on increase() sees the first refused or failed login.
        foreach (var outcome in (string[])["ok", "refused", "failed"])
        {
            Login(connection, tokens.Method, outcome, 0);
        }
    }

    internal void Login(string connection, string method, string outcome, int count = 1) =>
        _logins.Add(count, new KeyValuePair<string, object?>("connection", connection), new KeyValuePair<string, object?>("method", method),
            new KeyValuePair<string, object?>("outcome", outcome));

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<int>> Observe() =>
        _connections.Select(c => new Measurement<int>(c.Value.LoginRefusal is null ? 0 : 1,
            new KeyValuePair<string, object?>("connection", c.Key), new KeyValuePair<string, object?>("method", c.Value.Method)));
}
