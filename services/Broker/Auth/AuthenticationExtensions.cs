using SecretsBroker.Audit.Contracts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Certificate;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using SecretsBroker.Broker.Tls;

namespace SecretsBroker.Broker.Auth;

public static class AuthenticationExtensions
{
    public const string SectionName = "Broker:Auth";
    public const string BrokerScheme = "Broker";
    public const string JwtScheme = "Jwt";
    public const string MtlsScheme = "Mtls";


    /// <summary>
    /// Registers dev tokens, JWT bearer and client certificates behind one policy scheme that picks the
    /// method from what the caller presented: a bearer token shaped like a JWT goes to JWT validation
    /// (when enabled), any other bearer token to the dev tokens, no token but a client certificate to mTLS.
    /// </summary>
    public static WebApplicationBuilder AddBrokerAuthentication(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        var jwt = builder.Configuration.GetSection(JwtAuthOptions.SectionName).Get<JwtAuthOptions>() ?? new JwtAuthOptions();
        var mtls = builder.Configuration.GetSection(MtlsAuthOptions.SectionName).Get<MtlsAuthOptions>() ?? new MtlsAuthOptions();

        var authentication = services.AddAuthentication(BrokerScheme)
            .AddPolicyScheme(BrokerScheme, "JWT, mTLS or dev token", o => o.ForwardDefaultSelector = context => SelectScheme(context, jwt.Enabled, mtls.Enabled))
            .AddScheme<DevTokenAuthenticationOptions, DevTokenAuthenticationHandler>(DevTokenAuthenticationHandler.SchemeName, _ => { });
        AddDevTokenOptions(builder);

        services.AddOptionsWithValidateOnStart<JwtAuthOptions>().BindConfiguration(JwtAuthOptions.SectionName);
        services.AddSingleton<IValidateOptions<JwtAuthOptions>, JwtAuthOptionsValidator>();
        if (jwt.Enabled)
        {
            authentication.AddJwtBearer(JwtScheme, _ => { });
            services.AddSingleton<JwtValidationCache>();
            services.AddOptions<JwtBearerOptions>(JwtScheme).Configure<IHostEnvironment, JwtValidationCache>(
                (o, environment, cache) => ConfigureJwt(o, jwt, environment, cache));
        }

        services.AddOptionsWithValidateOnStart<MtlsAuthOptions>().BindConfiguration(MtlsAuthOptions.SectionName);
        services.AddSingleton<IValidateOptions<MtlsAuthOptions>, MtlsAuthOptionsValidator>();
        if (mtls.Enabled)
        {
            authentication.AddCertificate(MtlsScheme, _ => { });
            services.AddOptions<CertificateAuthenticationOptions>(MtlsScheme).Configure<IHostEnvironment>((o, environment) => ConfigureMtls(o, mtls, environment));
            // Kestrel asks for a certificate but leaves trust to the authentication handler, which
            // checks it against the configured CAs only (not the machine's store).
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https =>
            {
                https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                https.ClientCertificateValidation = (_, _, _) => true;
            }));
        }
        return builder;
    }

    private static string SelectScheme(HttpContext context, bool jwtEnabled, bool mtlsEnabled)
    {
        string? header = context.Request.Headers.Authorization;
        if (!string.IsNullOrEmpty(header))
        {
            var token = BearerTokens.Parse(header);
            return jwtEnabled && token.Count('.') == 2 ? JwtScheme : DevTokenAuthenticationHandler.SchemeName;
        }
        return mtlsEnabled && context.Connection.ClientCertificate is not null ? MtlsScheme : DevTokenAuthenticationHandler.SchemeName;
    }

    /// <summary>The token after "Bearer " in the Authorization header, as JwtBearerHandler reads it; empty if none.</summary>
    private static ReadOnlySpan<char> BearerToken(HttpRequest request)
    {
        return BearerTokens.Parse(request.Headers.Authorization.ToString());
    }

    private static void ConfigureJwt(JwtBearerOptions options, JwtAuthOptions jwt, IHostEnvironment environment, JwtValidationCache cache)
    {
        options.MapInboundClaims = false;
        options.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
        options.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = jwt.Issuer,
            ValidAudiences = jwt.Audiences,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = jwt.ClockSkew,
        };
        // With a CA file, the discovery document and the JWKS are fetched through one handler that trusts only it.
        var backchannel = string.IsNullOrWhiteSpace(jwt.CaCertificateFile)
            ? null
            : LoadCa(jwt, environment).ApplyTo(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        if (!string.IsNullOrWhiteSpace(jwt.MetadataAddress))
        {
            options.MetadataAddress = jwt.MetadataAddress;
            options.BackchannelHttpHandler = backchannel;
        }
        else if (!string.IsNullOrWhiteSpace(jwt.JwksUrl))
        {
            var retriever = backchannel is null ? new HttpDocumentRetriever() : new HttpDocumentRetriever(new HttpClient(backchannel));
            retriever.RequireHttps = jwt.RequireHttpsMetadata;
            options.ConfigurationManager = new ConfigurationManager<OpenIdConnectConfiguration>(jwt.JwksUrl, new JwksRetriever(), retriever);
        }
        else
        {
            var keys = new JsonWebKeySet(File.ReadAllText(Path.Combine(environment.ContentRootPath, jwt.JwksFile!)));
            options.TokenValidationParameters.IssuerSigningKeys = keys.GetSigningKeys();
        }
        options.Events = new JwtBearerEvents
        {
            // A token validated recently (and not expired by now) skips parsing and the signature check:
            // a result set here is what JwtBearerHandler returns.
            OnMessageReceived = context =>
            {
                if (cache.Enabled && BearerToken(context.Request) is { IsEmpty: false } token && cache.TryGet(token, out var caller))
                {
                    context.Principal = caller.ToPrincipal(JwtScheme);
                    context.Success();
                }
                return Task.CompletedTask;
            },
            // Only reached when validation succeeded: only successes are remembered.
            OnTokenValidated = context =>
            {
                // The issuer and exp travel with the identity: lease ownership uses the issuer, streams end at exp.
                var caller = IdentityMapping.FromJwt(context.Principal!, jwt.AttributeClaims) with
                {
                    Issuer = context.SecurityToken.Issuer ?? "",
                    CredentialExpiresAt = new DateTimeOffset(DateTime.SpecifyKind(context.SecurityToken.ValidTo, DateTimeKind.Utc)),
                };
                if (string.IsNullOrWhiteSpace(caller.Subject))
                {
                    // Tokens without a subject would all share the empty identity (and its leases and audit trail).
                    context.Fail(AuthenticationFailures.NoSubject);
                    return Task.CompletedTask;
                }
                context.Principal = caller.ToPrincipal(JwtScheme);
                if (cache.Enabled && BearerToken(context.Request) is { IsEmpty: false } token)
                {
                    cache.Add(token, caller, context.SecurityToken.ValidTo);
                }
                return Task.CompletedTask;
            },
        };
    }

    internal static CustomCaValidator LoadCa(JwtAuthOptions jwt, IHostEnvironment environment) =>
        CustomCaValidator.FromPemFile(Path.Combine(environment.ContentRootPath, jwt.CaCertificateFile!), $"{JwtAuthOptions.SectionName}:CaCertificateFile");

    private static void ConfigureMtls(CertificateAuthenticationOptions options, MtlsAuthOptions mtls, IHostEnvironment environment)
    {
        options.AllowedCertificateTypes = CertificateTypes.Chained;
        options.ChainTrustValidationMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
        foreach (var file in mtls.CaFiles)
        {
            options.CustomTrustStore.ImportFromPemFile(Path.Combine(environment.ContentRootPath, file));
        }
        options.RevocationMode = mtls.CheckRevocation
            ? System.Security.Cryptography.X509Certificates.X509RevocationMode.Online
            : System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
        options.ValidateCertificateUse = true;
        options.ValidateValidityPeriod = true;
        options.Events = new CertificateAuthenticationEvents
        {
            OnCertificateValidated = context =>
            {
                context.Principal = IdentityMapping.FromCertificate(context.ClientCertificate).ToPrincipal(MtlsScheme);
                context.Success();
                return Task.CompletedTask;
            },
            OnAuthenticationFailed = context =>
            {
                context.Fail("the client certificate is not trusted");
                return Task.CompletedTask;
            },
        };
    }

    private static void AddDevTokenOptions(WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DevTokenAuthenticationOptions>(DevTokenAuthenticationHandler.SchemeName)
            .BindConfiguration($"{SectionName}:DevTokens")
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DevTokenAuthenticationOptions>, DevTokenOptionsValidator>();
        builder.Services.AddSingleton<IValidateOptions<DevTokenAuthenticationOptions>, DevTokenSectionGuard>();
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

    /// <summary>Reads a bare JWKS document (no OIDC discovery) into the configuration JwtBearer consumes.</summary>
    private sealed class JwksRetriever : IConfigurationRetriever<OpenIdConnectConfiguration>
    {
        public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(string address, IDocumentRetriever retriever, CancellationToken cancel)
        {
            var keys = new JsonWebKeySet(await retriever.GetDocumentAsync(address, cancel).ConfigureAwait(false));
            var configuration = new OpenIdConnectConfiguration { JsonWebKeySet = keys };
            foreach (var key in keys.GetSigningKeys())
            {
                configuration.SigningKeys.Add(key);
            }
            return configuration;
        }
    }
}
