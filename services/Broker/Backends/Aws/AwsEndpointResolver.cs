using System.Text.RegularExpressions;
using Amazon;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Internal.Endpoints.StandardLibrary;

namespace SecretsBroker.Broker.Backends.Aws;

/// <summary>Where a mount sends its requests, and which setting chose it (for the start log line).</summary>
public sealed record AwsEndpoint(Uri Url, string Source);

/// <summary>
/// Resolves a mount's Secrets Manager endpoint as the AWS SDKs do.
/// <list type="number">
/// <item>A configured endpoint: the mount's <c>ServiceUrl</c>, else (unless <c>AWS_IGNORE_CONFIGURED_ENDPOINT_URLS</c>
/// / <c>ignore_configured_endpoint_urls</c>) <c>AWS_ENDPOINT_URL_SECRETS_MANAGER</c>, <c>AWS_ENDPOINT_URL</c>, the
/// profile's <c>endpoint_url</c> (botocore configprovider.py ConfiguredEndpointProvider; AWS SDKs and Tools
/// reference guide, "Service-specific endpoints").</item>
/// <item>Otherwise Secrets Manager's endpoint rule set (botocore data/secretsmanager/2017-10-17/endpoint-rule-set-1.json)
/// over the region's partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc, from
/// AWSSDK.Core's copy of partitions.json), with FIPS (<c>UseFipsEndpoint</c> / <c>AWS_USE_FIPS_ENDPOINT</c> /
/// <c>use_fips_endpoint</c>) and dual-stack likewise. A region of no known partition is refused (the SDKs would
/// guess "aws").</item>
/// </list>
/// A custom endpoint with FIPS or dual-stack asked for in the mount is refused (the rule set's first branch); from the
/// environment or profile the custom endpoint wins with a warning, as botocore does (args.py drops UseFIPS then).
/// Checked against botocore's own resolution by AwsEndpointResolverTests.
/// </summary>
public static class AwsEndpointResolver
{
    public const string ServiceEndpointVariable = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
    public const string GlobalEndpointVariable = "AWS_ENDPOINT_URL";

    /// <summary>The endpoint, or null with the reasons added to <paramref name="failures"/>; notes for the log go to <paramref name="warnings"/>.</summary>
    public static AwsEndpoint? Resolve(AwsSecretsManagerOptions options, string region, AwsEnvironment environment, CredentialProfile? profile,
        List<string> failures, List<string> warnings)
    {
        var failuresBefore = failures.Count;
        var fips = options.UseFipsEndpoint ?? Flag(environment, "AWS_USE_FIPS_ENDPOINT", failures) ?? profile?.UseFIPSEndpoint ?? false;
        var dualStack = options.UseDualStackEndpoint ?? Flag(environment, "AWS_USE_DUALSTACK_ENDPOINT", failures) ?? profile?.UseDualstackEndpoint ?? false;
        var ignoreConfigured = Flag(environment, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", failures) ?? profile?.IgnoreConfiguredEndpointUrls ?? false;

        var (configured, source) = (options.ServiceUrl, "'ServiceUrl'");
        if (string.IsNullOrWhiteSpace(configured) && !ignoreConfigured)
        {
            (configured, source) = environment.Variable(ServiceEndpointVariable) is { Length: > 0 } service ? (service, ServiceEndpointVariable)
                : environment.Variable(GlobalEndpointVariable) is { Length: > 0 } global ? (global, GlobalEndpointVariable)
                : (profile?.EndpointUrl, "the profile's endpoint_url");
            if (string.IsNullOrWhiteSpace(configured) && !string.IsNullOrEmpty(profile?.Services))
            {
                warnings.Add("the profile names a 'services' section; the broker does not read it: set ServiceUrl or AWS_ENDPOINT_URL_SECRETS_MANAGER for a custom endpoint");
            }
        }
        if (failures.Count > failuresBefore)
        {
            return null;
        }
        if (!string.IsNullOrWhiteSpace(configured))
        {
            // The rule set refuses a custom endpoint with FIPS or dual-stack. Asked for in the mount itself, that is a
            // conflict to fix; from the environment or profile, botocore lets the custom endpoint win (args.py builtins).
            if (options.UseFipsEndpoint == true || options.UseDualStackEndpoint == true)
            {
                failures.Add($"'UseFipsEndpoint' and 'UseDualStackEndpoint' cannot be combined with a custom endpoint ({source}); give the FIPS endpoint's URL as the custom endpoint, or drop one");
                return null;
            }
            if (fips || dualStack)
            {
                warnings.Add($"the FIPS / dual-stack setting of the environment or profile does not apply to the custom endpoint from {source}");
            }
            return Configured(configured.Trim(), source, failures);
        }
        return Regional(region, fips, dualStack, failures);
    }

    private static AwsEndpoint? Configured(string url, string source, List<string> failures)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https")
            || (endpoint.AbsolutePath != "/" && endpoint.AbsolutePath.Length > 0) || !string.IsNullOrEmpty(endpoint.Query) || !string.IsNullOrEmpty(endpoint.UserInfo))
        {
            failures.Add($"{source} must be an absolute http(s) URL without a path or query, for example http://127.0.0.1:5000");
            return null;
        }
        return new AwsEndpoint(endpoint, source);
    }

    private static AwsEndpoint? Regional(string region, bool fips, bool dualStack, List<string> failures)
    {
        if (!RegionEndpoint.AllPartitionRegionRegex.Any(regex => Regex.IsMatch(region, regex, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))))
        {
            failures.Add($"'Region' {region} belongs to no AWS partition this broker knows (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc); "
                + "set ServiceUrl to its Secrets Manager endpoint");
            return null;
        }
        var partition = Fn.Partition(region);
        var kind = (fips, dualStack) switch { (true, true) => "FIPS, dual-stack", (true, false) => "FIPS", (false, true) => "dual-stack", _ => "regional" };
        string? host = (fips, dualStack) switch
        {
            (true, true) when partition.supportsFIPS && partition.supportsDualStack =>
                partition.name is "aws" or "aws-us-gov" ? $"secretsmanager-fips.{region}.amazonaws.com" : $"secretsmanager-fips.{region}.{partition.dualStackDnsSuffix}",
            (true, false) when partition.supportsFIPS => $"secretsmanager-fips.{region}.{partition.dnsSuffix}",
            (false, true) when partition.supportsDualStack => partition.name switch
            {
                "aws" or "aws-us-gov" => $"secretsmanager.{region}.amazonaws.com",
                "aws-cn" => $"secretsmanager.{region}.amazonaws.com.cn",
                _ => $"secretsmanager.{region}.{partition.dualStackDnsSuffix}",
            },
            (false, false) => $"secretsmanager.{region}.{partition.dnsSuffix}",
            _ => null,
        };
        if (host is null)
        {
            failures.Add($"the {partition.name} partition has no {kind} Secrets Manager endpoint");
            return null;
        }
        return new AwsEndpoint(new Uri($"https://{host}/"), $"{kind} endpoint of partition {partition.name}");
    }

    /// <summary>An SDK boolean setting: "true" or "false" (any case); anything else stops the start.</summary>
    private static bool? Flag(AwsEnvironment environment, string variable, List<string> failures)
    {
        var value = environment.Variable(variable);
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (bool.TryParse(value.Trim(), out var flag))
        {
            return flag;
        }
        failures.Add($"the environment variable {variable} must be true or false");
        return null;
    }
}
