using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SecretsBroker.Broker.Backends.Aws;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// Scripted Secrets Manager answers in place of the network, for what moto cannot be made to do (throttle,
/// fail with 5xx, time out). Everything above the socket is the production pipeline: resilience handler,
/// signing handler, client and backend. Answer shapes follow the JSON 1.1 protocol as botocore parses it
/// (botocore/parsers.py BaseJSONParser._do_error_parse: <c>__type</c>, optionally namespaced).
/// </summary>
internal static class ScriptedSecretsManager
{
    public static readonly Uri Endpoint = new("https://secretsmanager.eu-west-1.amazonaws.com/");

    public static SecretsManagerClient Client(HttpMessageHandler script, int maxRetries, SecretsManagerHttp.RetryObserver? onRetry = null,
        TimeSpan? attemptTimeout = null)
    {
        var options = new AwsSecretsManagerOptions
        {
            MaxRetries = maxRetries,
            RetryBaseDelay = TimeSpan.FromMilliseconds(5),
            AttemptTimeout = attemptTimeout ?? TimeSpan.FromSeconds(10),
        };
        var http = SecretsManagerHttp.CreateClient(options, "eu-west-1", new StaticAwsCredentialSource(new AwsCredentials("AKIDTEST", "secret")),
            TimeProvider.System, onRetry, script);
        return new SecretsManagerClient(http, Endpoint);
    }

    public static AwsSecretsManagerBackend Backend(HttpMessageHandler script, int maxRetries, SecretsManagerHttp.RetryObserver? onRetry = null,
        TimeSpan? attemptTimeout = null) =>
        new(Client(script, maxRetries, onRetry, attemptTimeout), "aws", NullLogger<AwsSecretsManagerBackend>.Instance);

    public static ScriptedAnswer Ok(string body) => new(HttpStatusCode.OK, body);

    public static ScriptedAnswer Error(HttpStatusCode status, string? type) =>
        new(status, type is null ? "" : $$"""{"__type":"{{type}}","message":"Rate exceeded"}""");
}

/// <summary>One answer; with <paramref name="Throw"/> the attempt fails with that exception instead (a lost connection, a connect timeout).</summary>
internal sealed record ScriptedAnswer(HttpStatusCode Status, string Body, TimeSpan Delay = default, Exception? Throw = null);

/// <summary>Answers each request with the next scripted answer (the last one repeats) and records what was sent.</summary>
internal sealed class ScriptedHandler(params ScriptedAnswer[] answers) : HttpMessageHandler
{
    /// <summary>When set, answers every request from now on instead of the script.</summary>
    public ScriptedAnswer? Override { get; set; }

    private int _calls;

    public int Calls => _calls;

    public List<int> AuthorizationHeaderCounts { get; } = [];

    /// <summary>Each request's X-Amz-Target and body, in order.</summary>
    public List<(string Target, string Body)> Requests { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var index = Interlocked.Increment(ref _calls) - 1;
        lock (AuthorizationHeaderCounts)
        {
            AuthorizationHeaderCounts.Add(request.Headers.TryGetValues("Authorization", out var values) ? values.Count() : 0);
        }
        var target = request.Headers.GetValues("X-Amz-Target").Single();
        Assert.StartsWith("secretsmanager.", target, StringComparison.Ordinal);
        var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
        lock (Requests)
        {
            Requests.Add((target, body));
        }
        var answer = Override ?? answers[Math.Min(index, answers.Length - 1)];
        if (answer.Delay > TimeSpan.Zero)
        {
            await Task.Delay(answer.Delay, cancellationToken);
        }
        if (answer.Throw is { } exception)
        {
            throw exception;
        }
        return new HttpResponseMessage(answer.Status) { Content = new StringContent(answer.Body, Encoding.UTF8, "application/x-amz-json-1.1") };
    }
}
