using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Redis;

namespace SecretsBroker.Broker.Rotation;

public static class RotationExtensions
{
    /// <summary>Registers RotateSecret, the rotation engine and scheduler: the per-path lock in Redis when one is configured.</summary>
    public static IHostApplicationBuilder AddBrokerRotation(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<RotationEngineOptions>().BindConfiguration(RotationEngineOptions.SectionName);
        services.AddSingleton<IValidateOptions<RotationEngineOptions>, RotationEngineOptionsValidator>();
        services.AddSingleton<RotationRules>();
        if (builder.HasBrokerRedis())
        {
            services.AddSingleton<IRotationLocks, RedisRotationLocks>();
        }
        else
        {
            services.AddSingleton<IRotationLocks, InProcessRotationLocks>();
        }
        services.AddSingleton<IRotationStoreProvider, RotationStoreProvider>();
        services.AddSingleton<IAwsManagedRotation, AwsManagedRotation>();
        services.AddSingleton<RotationMetrics>();
        services.AddSingleton<RotationEngine>();
        services.AddSingleton<RotationFlights>();
        services.AddSingleton<SecretRotation>();
        services.AddSingleton<RotationScheduler>();
        services.AddHostedService(sp => sp.GetRequiredService<RotationScheduler>());
        return builder;
    }
}

public sealed class RotationEngineOptionsValidator : IValidateOptions<RotationEngineOptions>
{
    public ValidateOptionsResult Validate(string? name, RotationEngineOptions options)
    {
        var failures = new List<string>();
        if (options.LockHold < TimeSpan.FromSeconds(1))
        {
            failures.Add($"{RotationEngineOptions.SectionName}:LockHold must be at least 1 second");
        }
        if (options.RetryBase <= TimeSpan.Zero || options.RetryMax < options.RetryBase)
        {
            failures.Add($"{RotationEngineOptions.SectionName}:RetryBase must be positive and RetryMax at least RetryBase");
        }
        if (options.ScheduleInterval < TimeSpan.FromSeconds(1) || options.MaxConcurrency is < 1 or > 64 || options.Jitter < TimeSpan.Zero)
        {
            failures.Add($"{RotationEngineOptions.SectionName}: ScheduleInterval must be at least 1 second, MaxConcurrency 1 to 64, Jitter not negative");
        }
        if (options.TestCrashAfterStep is < 1 or > 4)
        {
            failures.Add($"{RotationEngineOptions.SectionName}:TestCrashAfterStep must be 1 to 4 (test only)");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
