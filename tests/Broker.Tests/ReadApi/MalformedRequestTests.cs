using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SecretsBroker.Audit.V1;
using SecretsBroker.Broker.Tests.Audit;
using SecretsBroker.Broker.Tests.Caching;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Tests.ReadApi;

/// <summary>
/// Security review (issue 17, item 7): malformed protobuf, broken gRPC framing and a max_age beyond Duration's range were
/// answered UNKNOWN or INTERNAL, with a stack trace at error level, before authentication and without an audit event.
/// Now: UNAUTHENTICATED first when there is no valid token, else INVALID_ARGUMENT with a clear message, audited, and
/// logged at Debug at most without a stack trace. Raw HTTP/2 to the real Kestrel, since a generated client cannot
/// send such bodies.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MalformedRequestTests : IAsyncLifetime
{
    private const string GetSecret = "/secretsbroker.v1.SecretsBroker/GetSecret";
    private const string WatchSecrets = "/secretsbroker.v1.SecretsBroker/WatchSecrets";
    private const string KeepAlive = "/secretsbroker.v1.SecretsBroker/KeepAlive";

    private static readonly Dictionary<string, string> AuditActions = new()
    {
        [GetSecret] = "read",
        [WatchSecrets] = "watch",
        [KeepAlive] = "renew",
    };

    private static readonly byte[] Valid = new GetSecretRequest { Path = "mem/alpha/db" }.ToByteArray();

    /// <summary>Each body, and the reason the broker gives for refusing it.</summary>
    public static TheoryData<string, string, byte[], string> Bodies => new()
    {
        { "length prefix longer than the body", GetSecret, RawGrpc.Frame(Valid, declaredLength: (uint)Valid.Length + 10),
            "the request message is shorter than its length prefix" },
        { "compressed flag without grpc-encoding", GetSecret, RawGrpc.Frame(Valid, compressedFlag: 1),
            "the request message is marked compressed but the call has no grpc-encoding" },
        { "an unknown compressed flag", GetSecret, RawGrpc.Frame(Valid, compressedFlag: 7), "the request message has an invalid compressed flag" },
        { "two messages in a unary call", GetSecret, [.. RawGrpc.Frame(Valid), .. RawGrpc.Frame(Valid)],
            "the call carries more than one request message; this method takes exactly one" },
        { "no message at all", GetSecret, [], "the call carries no request message" },
        { "a truncated header", GetSecret, [0, 0, 0], "the request message is shorter than its length prefix" },
        // Field 1 (path), length-delimited, claims 5 bytes and has 1.
        { "malformed protobuf", GetSecret, RawGrpc.Frame([0x0A, 0x05, 0x61]), "the request is not a valid secretsbroker.v1.GetSecretRequest" },
        { "malformed protobuf on a server-streaming method", WatchSecrets, RawGrpc.Frame([0x0F]),
            "the request is not a valid secretsbroker.v1.WatchSecretsRequest" },
        // A client stream's messages are read by the service; the interceptor maps what Grpc.AspNetCore cannot read.
        { "malformed protobuf on a request stream", KeepAlive, RawGrpc.Frame([0x0F]), "the request is not a valid secretsbroker.v1.KeepAliveRequest" },
        { "a truncated message on a request stream", KeepAlive, RawGrpc.Frame([0x0A, 0x01, 0x61], declaredLength: 9),
            "a request message on the stream cannot be read (Incomplete message.)" },
    };

    private RedisServer _redis = null!;
    private BrokerHost _host = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        var memory = new InMemoryBackend();
        memory.Put("alpha/db", "1", new Dictionary<string, string> { ["password"] = "FAKE-malformed-password" });
        var settings = CacheTestSettings.WithRedis(_redis).MemoryMount("mem");
        foreach (var (key, value) in BrokerHost.ShippedLogLevels())
        {
            settings[key] = value;
        }
        _host = await BrokerHost.StartAsync(settings, configureServices: memory.Register);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task A_malformed_body_is_invalid_argument_audited_and_logged_quietly(string what, string method, byte[] body, string reason)
    {
        var before = _host.Logs.Lines.Count;
        using var http = RawGrpc.CreateClient();

        var answer = await RawGrpc.CallAsync(http, _host.Address, method, body, BrokerHost.TestToken);

        Assert.True((int)StatusCode.InvalidArgument == answer.GrpcStatus, $"{what}: status {answer.GrpcStatus} '{answer.GrpcMessage}'");
        Assert.Equal(reason, answer.GrpcMessage);
        Assert.Empty(answer.Messages);
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(_redis)).Any(e => e.Event.Reason == reason),
            because: $"the refusal of {what} to be audited");
        var audited = Assert.Single(await AuditStreamReader.ReadAllAsync(_redis), e => e.Event.Reason == reason);
        Assert.Equal("test-alpha", audited.Event.Caller);
        Assert.Equal((int)StatusCode.InvalidArgument, audited.Event.GrpcStatus);
        Assert.Equal(Decision.Error, audited.Event.Decision);
        Assert.Equal(AuditActions[method], audited.Event.Action);
        CapturedLogs.AssertDebugAtMostWithoutStackTraces(_host.Logs.Lines.Skip(before));
    }

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Without_a_valid_token_a_malformed_body_is_unauthenticated(string what, string method, byte[] body, string reason)
    {
        _ = reason;
        var before = _host.Logs.Lines.Count;
        using var http = RawGrpc.CreateClient();

        var noToken = await RawGrpc.CallAsync(http, _host.Address, method, body, token: null);
        var wrongToken = await RawGrpc.CallAsync(http, _host.Address, method, body, token: "FAKE-wrong-token");

        Assert.True((int)StatusCode.Unauthenticated == noToken.GrpcStatus, $"{what}: status {noToken.GrpcStatus} '{noToken.GrpcMessage}'");
        Assert.Equal((int)StatusCode.Unauthenticated, wrongToken.GrpcStatus);
        Assert.Equal("the bearer token is not valid", wrongToken.GrpcMessage);
        CapturedLogs.AssertDebugAtMostWithoutStackTraces(_host.Logs.Lines.Skip(before));
    }

    [Fact]
    public async Task A_max_age_beyond_the_range_of_Duration_is_invalid_argument_and_audited()
    {
        var before = _host.Logs.Lines.Count;
        // google.protobuf.Duration allows at most 315,576,000,000 s (about 10,000 years); the wire format allows more.
        var request = new GetSecretRequest { Path = "mem/alpha/db", MaxAge = new Duration { Seconds = 315_576_000_001 } };

        var error = await Assert.ThrowsAsync<RpcException>(async () => await _host.CreateClient().Raw.GetSecretAsync(request));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("max_age must be a non-negative duration of at most 315576000000 seconds", error.Status.Detail);
        await Eventually.WaitUntilAsync(async () => (await AuditStreamReader.ReadAllAsync(_redis)).Any(e => e.Event.Reason == error.Status.Detail),
            because: "the refusal to be audited");
        var audited = Assert.Single(await AuditStreamReader.ReadAllAsync(_redis), e => e.Event.Reason == error.Status.Detail);
        Assert.Equal("mem/alpha/db", audited.Path);
        Assert.Equal((int)StatusCode.InvalidArgument, audited.Event.GrpcStatus);
        CapturedLogs.AssertDebugAtMostWithoutStackTraces(_host.Logs.Lines.Skip(before));
    }
}
