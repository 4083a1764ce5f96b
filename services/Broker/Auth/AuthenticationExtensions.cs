using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Auth;

public static class AuthenticationExtensions
{
    public const string SectionName = "Broker:Auth";

    /// <summary>Registers the broker's authentication schemes (dev tokens for now) and validates their settings at start.</summary>
    public static IHostApplicationBuilder AddBrokerAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(DevTokenAuthenticationHandler.SchemeName)
            .AddScheme<DevTokenAuthenticationOptions, DevTokenAuthenticationHandler>(DevTokenAuthenticationHandler.SchemeName, _ => { });
        builder.Services.AddOptions<DevTokenAuthenticationOptions>(DevTokenAuthenticationHandler.SchemeName)
            .Bind(builder.Configuration.GetSection($"{SectionName}:DevTokens"))
            .Validate(o => o.Tokens.All(t => t.Sha256.Length == 64 && t.Sha256.All(char.IsAsciiHexDigit) && t.Subject.Length > 0),
                $"{SectionName}:DevTokens:Tokens: every token needs a Subject and a 64-character hex Sha256")
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DevTokenAuthenticationOptions>, DevTokenSectionGuard>();
        return builder;
    }

    /// <summary>Refuses dev tokens outside Development unless the operator opts in explicitly.</summary>
    private sealed class DevTokenSectionGuard(IHostEnvironment environment, IConfiguration configuration) : IValidateOptions<DevTokenAuthenticationOptions>
    {
        public ValidateOptionsResult Validate(string? name, DevTokenAuthenticationOptions options)
        {
            if (name != DevTokenAuthenticationHandler.SchemeName || options.Tokens.Count == 0 || environment.IsDevelopment()
                || configuration.GetValue<bool>($"{SectionName}:DevTokens:AllowOutsideDevelopment"))
            {
                return ValidateOptionsResult.Success;
            }
            return ValidateOptionsResult.Fail(
                $"{SectionName}:DevTokens are for development; the environment is '{environment.EnvironmentName}'. "
                + $"Use JWT or mTLS, or set {SectionName}:DevTokens:AllowOutsideDevelopment=true to accept them anyway.");
        }
    }
}
