using Grpc.Core;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Grpc;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Unit.Audit;
using SecretsBroker.Broker.Tests.Unit.Support;

namespace SecretsBroker.Broker.Tests.Unit.Grpc;

/// <summary>
/// The one mapping from broker error kinds to gRPC statuses (DESIGN.md, "gRPC status codes"), on its own and as the
/// call interceptor applies it to whatever a service method throws. No server: a hand-made call context.
/// </summary>
public sealed class ErrorMappingTests
{
    [Theory]
    [InlineData(BrokerErrorKind.Cancelled, StatusCode.Cancelled)]
    [InlineData(BrokerErrorKind.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(BrokerErrorKind.DeadlineExceeded, StatusCode.DeadlineExceeded)]
    [InlineData(BrokerErrorKind.NotFound, StatusCode.NotFound)]
    [InlineData(BrokerErrorKind.AlreadyExists, StatusCode.AlreadyExists)]
    [InlineData(BrokerErrorKind.PermissionDenied, StatusCode.PermissionDenied)]
    [InlineData(BrokerErrorKind.ResourceExhausted, StatusCode.ResourceExhausted)]
    [InlineData(BrokerErrorKind.FailedPrecondition, StatusCode.FailedPrecondition)]
    [InlineData(BrokerErrorKind.Aborted, StatusCode.Aborted)]
    [InlineData(BrokerErrorKind.Internal, StatusCode.Internal)]
    [InlineData(BrokerErrorKind.Unavailable, StatusCode.Unavailable)]
    [InlineData(BrokerErrorKind.Unauthenticated, StatusCode.Unauthenticated)]
    public void Each_error_kind_has_its_status(BrokerErrorKind kind, StatusCode expected)
    {
        Assert.Equal(expected, ErrorStatus.ToStatusCode(kind));
    }

    public static TheoryData<BrokerErrorKind> EveryErrorKind() => new(Enum.GetValues<BrokerErrorKind>());

    [Theory]
    [MemberData(nameof(EveryErrorKind))]
    public void Every_error_kind_keeps_its_canonical_code_and_name(BrokerErrorKind kind)
    {
        // Kinds are numbered as google.rpc.Code, like gRPC's StatusCode: an audit record's code and the caller's status agree.
        var status = ErrorStatus.ToStatusCode(kind);

        Assert.Equal((int)kind, (int)status);
        Assert.Equal(kind.Name().Replace("_", "", StringComparison.Ordinal), status.ToString(), ignoreCase: true);
    }

    [Fact]
    public void A_kind_without_a_mapping_is_INTERNAL()
    {
        Assert.Equal(StatusCode.Internal, ErrorStatus.ToStatusCode((BrokerErrorKind)2));
    }

    [Theory]
    [MemberData(nameof(EveryErrorKind))]
    public async Task A_broker_exception_reaches_the_caller_as_its_status_with_its_message(BrokerErrorKind kind)
    {
        await using var call = new InterceptedCall();

        var error = await call.FailAsync(new BrokerException(kind, "a message meant for the caller"));

        Assert.Equal((StatusCode)(int)kind, error.StatusCode);
        Assert.Equal("a message meant for the caller", error.Status.Detail);
    }

    [Fact]
    public async Task An_unexpected_exception_is_INTERNAL_with_the_trace_id_and_never_its_message()
    {
        const string leaked = "FAKE-leaked-password-in-an-exception-message";
        await using var call = new InterceptedCall();

        var error = await call.FailAsync(new InvalidOperationException("backend said: " + leaked));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Contains(InterceptedCall.TraceIdentifier, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(leaked, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(leaked, error.Message, StringComparison.Ordinal);
        // The log names the exception type for the operator, and never the message either.
        Assert.Contains(call.Logs.Lines, line => line.Contains(nameof(InvalidOperationException), StringComparison.Ordinal));
        call.Logs.AssertNoneContain([leaked]);
    }

    [Fact]
    public async Task Cancellation_by_the_caller_is_CANCELLED()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await using var call = new InterceptedCall(cancellationToken: cancelled.Token);

        var error = await call.FailAsync(new OperationCanceledException(cancelled.Token));

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
    }

    [Fact]
    public async Task Cancellation_after_the_callers_deadline_is_DEADLINE_EXCEEDED()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await using var call = new InterceptedCall(deadline: DateTime.UtcNow.AddSeconds(-1), cancellationToken: cancelled.Token);

        var error = await call.FailAsync(new TaskCanceledException());

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
    }

    [Fact]
    public async Task A_cancellation_the_caller_did_not_ask_for_is_INTERNAL_not_CANCELLED()
    {
        // An internal timeout surfacing as OperationCanceledException is a broker fault, not the caller's doing.
        await using var call = new InterceptedCall();

        var error = await call.FailAsync(new OperationCanceledException("an internal timeout"));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
    }

    [Fact]
    public async Task A_status_set_by_the_service_passes_through_unchanged()
    {
        await using var call = new InterceptedCall();

        var error = await call.FailAsync(new RpcException(new Status(StatusCode.OutOfRange, "page token out of range")));

        Assert.Equal((StatusCode.OutOfRange, "page token out of range"), (error.StatusCode, error.Status.Detail));
    }

    [Fact]
    public async Task An_admitted_call_runs_with_its_callers_access_context()
    {
        await using var call = new InterceptedCall();

        var answer = await call.Interceptor.UnaryServerHandler<string, string>("request", call.Context,
            (request, context) => Task.FromResult($"{request} by {context.GetAccess().Caller!.Subject} in {context.GetAccess().RequestId}"));

        Assert.Equal($"request by test-alpha in {InterceptedCall.TraceIdentifier}", answer);
    }

    /// <summary>The interceptor with an authenticated caller's call context, a real access auditor and captured logs.</summary>
    private sealed class InterceptedCall : IAsyncDisposable
    {
        public const string TraceIdentifier = "0HTESTTRACE:00000001";

        private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        private readonly ILoggerFactory _loggers;
        private readonly CallerRateLimiter _rateLimiter = new(Options.Create(new RateLimitOptions()), TimeProvider.System);

        public InterceptedCall(DateTime? deadline = null, CancellationToken cancellationToken = default)
        {
            _loggers = LoggerFactory.Create(builder => builder.AddProvider(Logs));
            var auditOptions = Options.Create(new AuditOptions { Strict = false, Key = Convert.ToBase64String(new byte[32]) });
            // Never started: refusals the interceptor audits wait in its queue, which is all these tests need.
            var recorder = new AuditRecorder(new FakeAuditStream(), auditOptions, new HostingEnvironment { ContentRootPath = Path.GetTempPath() },
                new AuditMetrics(_services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()), TimeProvider.System, NullLogger<AuditRecorder>.Instance);
            var auditor = new AccessAuditor(recorder, auditOptions, TimeProvider.System);
            var summaries = new RefusalSummaries(auditor.RefusedAsync, Options.Create(new RefusalAuditOptions()), TimeProvider.System, NullLogger<RefusalSummaries>.Instance);
            Interceptor = new BrokerCallInterceptor(_rateLimiter, new EdgeRefusals(auditor, summaries),
                _loggers.CreateLogger<BrokerCallInterceptor>());
            var caller = new CallerIdentity("test-alpha", "dev-token", new Dictionary<string, string>(StringComparer.Ordinal) { ["team"] = "alpha" });
            var http = new DefaultHttpContext { User = caller.ToPrincipal("test"), TraceIdentifier = TraceIdentifier };
            Context = new FakeServerCallContext(http, deadline ?? DateTime.MaxValue, cancellationToken);
        }

        public CapturedLogs Logs { get; } = new();

        public BrokerCallInterceptor Interceptor { get; }

        public ServerCallContext Context { get; }

        /// <summary>Runs a call whose service method throws <paramref name="exception"/>; returns what the caller gets.</summary>
        public Task<RpcException> FailAsync(Exception exception) =>
            Assert.ThrowsAsync<RpcException>(() => Interceptor.UnaryServerHandler<string, string>("request", Context, (_, _) => throw exception).OrTimeout());

        public async ValueTask DisposeAsync()
        {
            _rateLimiter.Dispose();
            _loggers.Dispose();
            await _services.DisposeAsync();
        }
    }

    /// <summary>
    /// A call context outside Kestrel. Grpc.AspNetCore's GetHttpContext() also finds the HttpContext under the
    /// "__HttpContext" user-state key, the documented way to test services and interceptors without a server.
    /// </summary>
    private sealed class FakeServerCallContext : ServerCallContext
    {
        private readonly DateTime _deadline;
        private readonly CancellationToken _cancellationToken;

        public FakeServerCallContext(HttpContext httpContext, DateTime deadline, CancellationToken cancellationToken)
        {
            _deadline = deadline;
            _cancellationToken = cancellationToken;
            UserState["__HttpContext"] = httpContext;
        }

        protected override string MethodCore => "/secretsbroker.v1.SecretsBroker/GetSecret";

        protected override string HostCore => "localhost";

        protected override string PeerCore => "ipv4:127.0.0.1:50000";

        protected override DateTime DeadlineCore => _deadline;

        protected override Metadata RequestHeadersCore { get; } = [];

        protected override CancellationToken CancellationTokenCore => _cancellationToken;

        protected override Metadata ResponseTrailersCore { get; } = [];

        protected override Status StatusCore { get; set; }

        protected override WriteOptions? WriteOptionsCore { get; set; }

        protected override AuthContext AuthContextCore { get; } = new(null, new Dictionary<string, List<AuthProperty>>());

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
