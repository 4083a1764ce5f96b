namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// One broker-driven rotation strategy, in the steps of AWS's rotation protocol (createSecret, setSecret, testSecret;
/// finishSecret is the engine's promotion). Each step is idempotent, so a rotation interrupted anywhere is finished by
/// running the remaining steps again (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html).
/// </summary>
public interface IRotationStrategy
{
    /// <summary><c>generated</c> or <c>postgres</c>: the metric label and the response's strategy.</summary>
    string Name { get; }

    /// <summary>createSecret: the pending value, built from the current one. Nothing outside the broker changes yet.</summary>
    IReadOnlyDictionary<string, string> CreatePending(IReadOnlyDictionary<string, string> current);

    /// <summary>setSecret: makes the target system accept the pending value. Succeeds at once when it already does.</summary>
    Task SetAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken);

    /// <summary>testSecret: proves the pending value works (a login); throws FAILED_PRECONDITION or UNAVAILABLE when not.</summary>
    Task TestAsync(RotationContext context, IReadOnlyDictionary<string, string> pending, CancellationToken cancellationToken);

    /// <summary>
    /// Undoes <see cref="SetAsync"/> after a failed test, so the current value works again; returns false when the
    /// target cannot be reached (the pending record is then kept and the rotation retried).
    /// </summary>
    Task<bool> RollbackAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken);
}

/// <summary>What a strategy may use besides the values: the broker's own reads (an admin secret) by logical path.</summary>
public sealed record RotationContext(Func<string, CancellationToken, Task<IReadOnlyDictionary<string, string>>> ReadSecretAsync);

/// <summary>generated: new values for the named fields, other fields kept; there is no target system to set or test.</summary>
public sealed class GeneratedStrategy(IReadOnlyList<string> fields, PasswordGenerator generator) : IRotationStrategy
{
    public const string StrategyName = "generated";

    public string Name => StrategyName;

    public IReadOnlyDictionary<string, string> CreatePending(IReadOnlyDictionary<string, string> current)
    {
        var pending = new Dictionary<string, string>(current, StringComparer.Ordinal);
        foreach (var field in fields)
        {
            pending[field] = generator.Next();
        }
        return pending;
    }

    public Task SetAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken) => Task.CompletedTask;

    public Task TestAsync(RotationContext context, IReadOnlyDictionary<string, string> pending, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    public Task<bool> RollbackAsync(RotationContext context, IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> pending,
        CancellationToken cancellationToken) => Task.FromResult(true);
}
