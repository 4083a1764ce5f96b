using System.Net;
using Grpc.Core;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;
using static SecretsBroker.Broker.Tests.Aws.ScriptedSecretsManager;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// Retries and error mapping of the Secrets Manager client, with scripted HTTP answers in place of the
/// network (moto cannot be made to throttle); see <see cref="ScriptedSecretsManager"/>.
/// </summary>
public sealed class SecretsManagerResilienceTests
{
    private const string SecretName = "team/alpha/db-password";

    [Fact]
    public async Task Throttling_is_retried_with_backoff_and_then_succeeds()
    {
        var script = new ScriptedHandler(
            Error(HttpStatusCode.BadRequest, "ThrottlingException"),
            Error(HttpStatusCode.BadRequest, "com.amazonaws.secretsmanager#ThrottlingException"),
            Ok("""{"Name":"team/alpha/db-password","VersionId":"v-00000000000000000000000000000001","SecretString":"{\"k\":\"v\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.7e9}"""));
        var retries = new List<string>();
        var backend = Backend(script, maxRetries: 3, (attempt, reason, _) => retries.Add($"{attempt}:{reason}"));

        var value = await backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);

        Assert.Equal("v", value.Data!["k"]);
        Assert.Equal(3, script.Calls);
        Assert.Equal(["1:ThrottlingException", "2:ThrottlingException"], retries);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), value.CreatedAt);
        // Every attempt is signed afresh: one Authorization header per attempt, never two.
        Assert.All(script.AuthorizationHeaderCounts, count => Assert.Equal(1, count));
    }

    [Fact]
    public async Task Throttling_that_outlasts_the_retries_is_RESOURCE_EXHAUSTED()
    {
        var script = new ScriptedHandler(Enumerable.Repeat(Error(HttpStatusCode.BadRequest, "ThrottlingException"), 10).ToArray());
        var backend = Backend(script, maxRetries: 2);

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.ResourceExhausted, error.Kind);
        Assert.Equal(3, script.Calls);
    }

    [Fact]
    public async Task Server_errors_are_retried_and_then_UNAVAILABLE()
    {
        var script = new ScriptedHandler(
            Error(HttpStatusCode.InternalServerError, "InternalServiceError"),
            Error(HttpStatusCode.ServiceUnavailable, null),
            Error(HttpStatusCode.BadGateway, null));
        var backend = Backend(script, maxRetries: 2);

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Equal(3, script.Calls);
    }

    [Theory]
    [InlineData("ResourceNotFoundException", BrokerErrorKind.NotFound)]
    [InlineData("AccessDeniedException", BrokerErrorKind.PermissionDenied)]
    [InlineData("InvalidParameterException", BrokerErrorKind.InvalidArgument)]
    [InlineData("InvalidRequestException", BrokerErrorKind.FailedPrecondition)]
    [InlineData("DecryptionFailure", BrokerErrorKind.FailedPrecondition)]
    [InlineData("UnrecognizedClientException", BrokerErrorKind.Unavailable)]
    public async Task Client_errors_are_not_retried_and_map_to_their_status_without_echoing_the_AWS_message(string errorType, BrokerErrorKind expected)
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.BadRequest,
            $$"""{"__type":"{{errorType}}","message":"Secrets Manager can't find {{SecretName}} with value hunter2"}"""));
        var backend = Backend(script, maxRetries: 3);

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(expected, error.Kind);
        Assert.Equal(1, script.Calls);
        Assert.DoesNotContain(SecretName, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_endpoint_that_is_not_Secrets_Manager_is_UNAVAILABLE()
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.NotFound, "<html>not here</html>"));
        var backend = Backend(script, maxRetries: 3);

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Contains("ServiceUrl", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, script.Calls);
    }

    [Fact]
    public async Task A_slow_attempt_times_out_is_retried_and_then_UNAVAILABLE()
    {
        var script = new ScriptedHandler(Enumerable.Repeat(new ScriptedAnswer(HttpStatusCode.OK, "{}", Delay: TimeSpan.FromSeconds(30)), 5).ToArray());
        var backend = Backend(script, maxRetries: 1, attemptTimeout: TimeSpan.FromMilliseconds(200));

        var error = await Assert.ThrowsAsync<BrokerException>(() => backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Equal(2, script.Calls);
    }

    [Fact]
    public async Task A_batch_call_that_fails_as_a_whole_fails_each_item_of_its_chunk()
    {
        var script = new ScriptedHandler(Error(HttpStatusCode.BadRequest, "AccessDeniedException"));
        var backend = Backend(script, maxRetries: 0);

        var results = await backend.GetManyAsync(["a", "b"], CancellationToken.None);

        Assert.All(results, r => Assert.Equal(BrokerErrorKind.PermissionDenied, r.Error!.Kind));
    }

    [Fact]
    public async Task The_health_probe_is_one_ListSecrets_call_for_a_single_entry_and_is_up_when_it_succeeds()
    {
        var script = new ScriptedHandler(Ok("""{"SecretList":[{"Name":"team/alpha/db-password"}],"NextToken":"more"}"""));
        var backend = Backend(script, maxRetries: 3);

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.True(result.Healthy, result.Description);
        Assert.Equal(1, script.Calls);
        var (target, body) = Assert.Single(script.Requests);
        Assert.Equal("secretsmanager.ListSecrets", target);
        Assert.Equal("""{"MaxResults":1}""", body);
        Assert.DoesNotContain(SecretName, result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AccessDenied_on_the_health_probe_is_up_because_the_signed_request_was_answered()
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.BadRequest,
            $$"""{"__type":"AccessDeniedException","message":"User arn:aws:iam::123456789012:user/broker is not authorized to perform secretsmanager:ListSecrets on {{SecretName}}"}"""));
        var backend = Backend(script, maxRetries: 3);

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.True(result.Healthy, result.Description);
        Assert.Contains("ListSecrets not permitted", result.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("arn:aws", result.Description, StringComparison.Ordinal);
        Assert.DoesNotContain(SecretName, result.Description, StringComparison.Ordinal);
        Assert.Equal(1, script.Calls);
    }

    [Theory]
    [InlineData("UnrecognizedClientException")]
    [InlineData("InvalidSignatureException")]
    [InlineData("ExpiredTokenException")]
    [InlineData("InvalidClientTokenId")]
    [InlineData("SignatureDoesNotMatch")]
    public async Task Refused_credentials_make_the_health_probe_down(string errorType)
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.BadRequest,
            $$"""{"__type":"{{errorType}}","message":"The security token included in the request (AKIDTEST) is invalid"}"""));
        var backend = Backend(script, maxRetries: 3);

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.False(result.Healthy);
        Assert.Equal($"AWS rejected the broker's credentials ({errorType})", result.Description);
        Assert.Equal(1, script.Calls);
    }

    [Fact]
    public async Task Throttling_that_outlasts_the_retries_makes_the_health_probe_down()
    {
        var script = new ScriptedHandler(Enumerable.Repeat(Error(HttpStatusCode.BadRequest, "ThrottlingException"), 10).ToArray());
        var backend = Backend(script, maxRetries: 2);

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.False(result.Healthy);
        Assert.Contains("throttling", result.Description, StringComparison.Ordinal);
        Assert.Equal(3, script.Calls);
    }

    [Fact]
    public async Task Server_errors_that_outlast_the_retries_make_the_health_probe_down()
    {
        var script = new ScriptedHandler(Enumerable.Repeat(Error(HttpStatusCode.ServiceUnavailable, null), 10).ToArray());
        var backend = Backend(script, maxRetries: 1);

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.False(result.Healthy);
        Assert.Contains("is failing", result.Description, StringComparison.Ordinal);
        Assert.Contains("503", result.Description, StringComparison.Ordinal);
        Assert.Equal(2, script.Calls);
    }

    [Fact]
    public async Task A_health_probe_whose_attempts_time_out_is_down()
    {
        var script = new ScriptedHandler(Enumerable.Repeat(new ScriptedAnswer(HttpStatusCode.OK, "{}", Delay: TimeSpan.FromSeconds(30)), 5).ToArray());
        var backend = Backend(script, maxRetries: 0, attemptTimeout: TimeSpan.FromMilliseconds(200));

        var result = await backend.ProbeAsync(CancellationToken.None);

        Assert.False(result.Healthy);
        Assert.Contains("did not answer", result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_the_health_probe_propagates_as_cancellation_and_is_not_a_result()
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.OK, "{}", Delay: TimeSpan.FromSeconds(30)));
        var backend = Backend(script, maxRetries: 3);
        using var cancellation = new CancellationTokenSource();

        var probe = backend.ProbeAsync(cancellation.Token);
        await Eventually.WaitUntilAsync(() => script.Calls == 1, TimeSpan.FromSeconds(10), "the probe's request to be sent");
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe);
        Assert.Equal(1, script.Calls);
    }

    [Theory]
    [InlineData("AccessDeniedException", null, true)]
    [InlineData("AccessDenied", null, true)]
    [InlineData("ExpiredTokenException", null, false)]
    [InlineData("RequestThrottledException", null, false)]
    [InlineData("Timeout", null, false)]
    [InlineData("Transport", null, false)]
    [InlineData("InternalServiceError", 500, false)]
    [InlineData("UnrecognizedError", 404, false)]
    [InlineData("MalformedResponse", 200, false)]
    public void Probe_failures_are_classified_by_the_AWS_error_type(string errorCode, int? httpStatus, bool healthy)
    {
        var result = AwsSecretsManagerBackend.ProbeResultFor(new SecretsManagerException("ListSecrets", errorCode, (HttpStatusCode?)httpStatus));

        Assert.Equal(healthy, result.Healthy);
        Assert.False(string.IsNullOrWhiteSpace(result.Description));
    }

    [Theory]
    [InlineData("""{"user":"u","n":1.50,"arr":[1,"x"],"nul":null}""", "user=u;n=1.50;arr=[1,\"x\"];nul=null")]
    [InlineData("""  {"a":"b"}""", "a=b")]
    [InlineData("""["not","an","object"]""", "value=[\"not\",\"an\",\"object\"]")]
    [InlineData("{broken json", "value={broken json")]
    [InlineData("", "value=")]
    public void A_secret_string_becomes_fields_when_it_is_a_json_object_and_one_value_field_otherwise(string secretString, string expected)
    {
        var data = AwsSecretsManagerBackend.ParseSecretString(secretString);
        Assert.Equal(expected, string.Join(';', data.Select(p => $"{p.Key}={p.Value}")));
    }
}
