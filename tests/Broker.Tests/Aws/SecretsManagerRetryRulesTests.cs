using System.Net;
using Grpc.Core;
using SecretsBroker.Broker.Core;
using static SecretsBroker.Broker.Tests.Aws.ScriptedSecretsManager;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The retry decisions of botocore's standard mode (botocore/retries/standard.py), answer by answer:
/// ThrottledRetryableChecker's codes at any HTTP status, TransientRetryableChecker's codes and its statuses
/// 500/502/503/504 (not 501, not a bare 429), connection failures and timeouts, and RetryQuota's budget.
/// </summary>
public sealed class SecretsManagerRetryRulesTests
{
    private const string SecretName = "team/alpha/db-password";
    private const string Value = """{"Name":"team/alpha/db-password","VersionId":"v-00000000000000000000000000000001","SecretString":"{\"k\":\"v\"}","VersionStages":["AWSCURRENT"]}""";

    [Theory]
    [InlineData("Throttling", 400)]
    [InlineData("ThrottlingException", 400)]
    [InlineData("ThrottledException", 400)]
    [InlineData("RequestThrottledException", 400)]
    [InlineData("TooManyRequestsException", 429)]
    [InlineData("ProvisionedThroughputExceededException", 400)]
    [InlineData("TransactionInProgressException", 400)]
    [InlineData("RequestLimitExceeded", 503)]
    [InlineData("BandwidthLimitExceeded", 509)]
    [InlineData("LimitExceededException", 400)]
    [InlineData("RequestThrottled", 403)]
    [InlineData("SlowDown", 503)]
    [InlineData("PriorRequestNotComplete", 409)]
    [InlineData("EC2ThrottledException", 501)]
    [InlineData("com.amazonaws.secretsmanager#ThrottlingException", 501)]
    public async Task Every_botocore_throttling_code_is_retried_whatever_the_HTTP_status(string errorType, int status)
    {
        var script = new ScriptedHandler(Error((HttpStatusCode)status, errorType), Ok(Value));

        var value = await Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);

        Assert.Equal("v", value.Data!["k"]);
        Assert.Equal(2, script.Calls);
    }

    [Theory]
    [InlineData("RequestTimeout", 400)]
    [InlineData("RequestTimeoutException", 408)]
    [InlineData("PriorRequestNotComplete", 400)]
    public async Task Transient_error_codes_are_retried_whatever_the_HTTP_status(string errorType, int status)
    {
        var script = new ScriptedHandler(Error((HttpStatusCode)status, errorType), Ok(Value));

        await Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);

        Assert.Equal(2, script.Calls);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public async Task Transient_HTTP_statuses_are_retried_without_an_error_type(int status)
    {
        var script = new ScriptedHandler(new ScriptedAnswer((HttpStatusCode)status, "<html>bad gateway</html>"), Ok(Value));

        await Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);

        Assert.Equal(2, script.Calls);
    }

    [Fact]
    public async Task HTTP_501_is_not_retried_and_is_UNAVAILABLE()
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.NotImplemented, ""), Ok(Value));

        var error = await Assert.ThrowsAsync<BrokerException>(() => Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.Unavailable, error.Kind);
        Assert.Equal(1, script.Calls);
    }

    [Fact]
    public async Task A_bare_429_without_an_error_type_is_not_retried_and_is_RESOURCE_EXHAUSTED()
    {
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.TooManyRequests, ""), Ok(Value));

        var error = await Assert.ThrowsAsync<BrokerException>(() => Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.ResourceExhausted, error.Kind);
        Assert.Equal(1, script.Calls);
    }

    [Theory]
    [InlineData("SlowDown", 503, BrokerErrorKind.ResourceExhausted)]
    [InlineData("TooManyRequestsException", 429, BrokerErrorKind.ResourceExhausted)]
    [InlineData("RequestTimeoutException", 408, BrokerErrorKind.Unavailable)]
    [InlineData("RequestTimeout", 400, BrokerErrorKind.Unavailable)]
    public async Task A_retryable_error_that_outlasts_the_retries_maps_to_its_status(string errorType, int status, BrokerErrorKind expected)
    {
        var script = new ScriptedHandler(Error((HttpStatusCode)status, errorType));

        var error = await Assert.ThrowsAsync<BrokerException>(() => Backend(script, maxRetries: 2).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None));

        Assert.Equal(expected, error.Kind);
        Assert.Equal(3, script.Calls);
    }

    [Fact]
    public async Task A_connect_timeout_is_retried_like_a_connection_failure()
    {
        // SocketsHttpHandler reports its ConnectTimeout as a cancellation wrapping a TimeoutException.
        var script = new ScriptedHandler(
            new ScriptedAnswer(HttpStatusCode.OK, "", Throw: new TaskCanceledException("connect timed out", new TimeoutException())),
            new ScriptedAnswer(HttpStatusCode.OK, "", Throw: new HttpRequestException("connection refused")),
            Ok(Value));

        await Backend(script, maxRetries: 3).GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);

        Assert.Equal(3, script.Calls);
    }

    [Fact]
    public async Task The_retry_quota_stops_retries_once_spent_and_successes_refill_it()
    {
        // RetryQuota: 500 to spend, 5 per retry, 1 back per call that succeeds without a retry.
        var script = new ScriptedHandler(new ScriptedAnswer(HttpStatusCode.ServiceUnavailable, ""));
        var backend = Backend(script, maxRetries: 3);
        async Task<int> AttemptsOfOneCallAsync()
        {
            var before = script.Calls;
            try
            {
                await backend.GetAsync(SecretName, VersionSelector.Latest, CancellationToken.None);
            }
            catch (BrokerException)
            {
                // The outcome is not the point: the attempts are.
            }
            return script.Calls - before;
        }

        for (var call = 0; call < 33; call++)
        {
            Assert.Equal(4, await AttemptsOfOneCallAsync()); // 33 * 3 retries = 495 spent
        }
        Assert.Equal(2, await AttemptsOfOneCallAsync()); // the last 5 pay one retry
        Assert.Equal(1, await AttemptsOfOneCallAsync()); // nothing left

        script.Override = Ok(Value);
        for (var call = 0; call < 5; call++)
        {
            Assert.Equal(1, await AttemptsOfOneCallAsync()); // each gives 1 back
        }
        script.Override = new ScriptedAnswer(HttpStatusCode.ServiceUnavailable, "");
        Assert.Equal(2, await AttemptsOfOneCallAsync());
    }
}
