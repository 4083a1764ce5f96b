using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Policy;

namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// RotateSecret for callers: validated and authorized (<c>rotate</c> on the path, deny by default, before anything is looked
/// up), run through the single flight, audited allowed or refused (the path sealed as every event's; never a value).
/// </summary>
public sealed class SecretRotation(AccessGuard guard, RotationFlights flights)
{
    public Task<RotationResult> RotateAsync(AccessContext access, string path, CancellationToken cancellationToken) =>
        guard.RunAsync(access, AuditActions.Rotate, path, (guard, flights), static async (attempt, state, ct) =>
        {
            state.guard.Authorize<ISecretBackend>(attempt, Capability.Rotate, "this mount cannot rotate secrets");
            return await state.flights.RotateAsync(attempt.Path, ct).ConfigureAwait(false);
        }, cancellationToken);
}
