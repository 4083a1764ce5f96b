using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Policy;

public static class PolicyExtensions
{
    /// <summary>Registers the policy evaluator and the per-caller rate limiter.</summary>
    public static IHostApplicationBuilder AddBrokerPolicy(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<PolicyOptions>().BindConfiguration(PolicyOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<PolicyOptions>, PolicyOptionsValidator>();
        builder.Services.AddSingleton<PolicyEvaluator>();
        builder.Services.AddOptionsWithValidateOnStart<RateLimitOptions>().BindConfiguration(RateLimitOptions.SectionName);
        builder.Services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        builder.Services.AddSingleton<CallerRateLimiter>();
        builder.Services.AddSingleton<SourceRateLimiter>();
        return builder;
    }
}
