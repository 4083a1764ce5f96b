using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Access;
using SecretsBroker.Broker.Audit;
using SecretsBroker.Broker.Auth;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Leases;
using SecretsBroker.Broker.Policy;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Unit.Audit;
using SecretsBroker.Broker.Tests.Unit.Support;

namespace SecretsBroker.Broker.Tests.Unit.Leases;

/// <summary>
/// The lease keeper in process (in-memory registry, the real access guard and policy, a scripted credential backend)
/// on fake time: scheduled work of detached or revoked leases is skipped, renewals capped by the max TTL rotate,
/// refusals rotate, outages are retried while the lease lives. One operation at a time, so calls arrive in order.
/// </summary>
public sealed class LeaseKeeperTests
{
    [Fact]
    public async Task Renewals_scheduled_for_detached_or_revoked_leases_are_skipped_and_lateness_is_reported()
    {
        await using var keeper = await KeeperUnderTest.StartAsync();
        using var lateness = new MetricCollector<double>(keeper.Meters, "SecretsBroker.Leases", "secretsbroker.lease.renewal.lateness");
        var start = keeper.Time.GetUtcNow();
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60)); // renewal due at 40 s
        await keeper.AttachNewLeaseAsync("lease-b", TimeSpan.FromSeconds(90)); // at 60 s
        await keeper.AttachNewLeaseAsync("lease-c", TimeSpan.FromSeconds(120)); // at 80 s

        await keeper.Keeper.DetachAsync(keeper.Session, "lease-a");
        keeper.Keeper.Revoked("lease-b");
        Assert.Equal((LeaseNoticeType.Revoked, "lease-b"), await keeper.NextNoticeAsync());

        // The cancelled jobs stay queued and come due first; the loop takes them and skips them.
        await keeper.AdvanceToAsync(start.AddSeconds(40));
        await keeper.AdvanceToAsync(start.AddSeconds(60));
        await keeper.Time.WaitForArmedAsync(start.AddSeconds(80));
        keeper.Time.Advance(start.AddSeconds(85) - keeper.Time.GetUtcNow());

        Assert.Equal("renew lease-c", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "lease-c"), await keeper.NextNoticeAsync());
        Assert.Equal(1, keeper.Keeper.AttachedCount);
        await lateness.WaitForMeasurementsAsync(1, TaskGuards.Limit);
        Assert.Equal(5, Assert.Single(lateness.GetMeasurementSnapshot()).Value);
    }

    [Fact]
    public async Task A_renewal_capped_by_the_max_ttl_rotates_and_the_replaced_lease_is_revoked_after_the_overlap()
    {
        await using var keeper = await KeeperUnderTest.StartAsync(options => options.RotationOverlap = TimeSpan.FromSeconds(10));
        var start = keeper.Time.GetUtcNow();
        keeper.Backend.Renewals.Enqueue(_ => new LeaseRenewal(TimeSpan.FromSeconds(30), Renewable: true)); // less than the 60 s TTL
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60));

        await keeper.AdvanceToAsync(start.AddSeconds(40));

        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal("issue role", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "lease-a"), await keeper.NextNoticeAsync());
        var rotated = await keeper.Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
        Assert.Equal(LeaseNoticeType.Rotated, rotated.Type);
        Assert.Equal("rotated-1", rotated.RotatedTo!.LeaseId);

        // The old credentials stay valid for the overlap (10 s), then are revoked.
        await keeper.AdvanceToAsync(start.AddSeconds(50));
        Assert.Equal("revoke lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Revoked, "lease-a"), await keeper.NextNoticeAsync());

        // The new lease is renewed on its own schedule: at 2/3 of its 60 s TTL after the rotation.
        await keeper.AdvanceToAsync(start.AddSeconds(80));
        Assert.Equal("renew rotated-1", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "rotated-1"), await keeper.NextNoticeAsync());
        Assert.Equal(["rotated-1"], keeper.Session.Leases.Keys);
    }

    [Fact]
    public async Task An_outage_is_retried_after_the_retry_delay_and_a_refusal_rotates()
    {
        await using var keeper = await KeeperUnderTest.StartAsync(options => options.RetryDelay = TimeSpan.FromSeconds(1));
        var start = keeper.Time.GetUtcNow();
        keeper.Backend.Renewals.Enqueue(_ => throw new BrokerException(BrokerErrorKind.Unavailable, "backend unreachable"));
        keeper.Backend.Renewals.Enqueue(ttl => new LeaseRenewal(ttl, Renewable: true));
        keeper.Backend.Renewals.Enqueue(_ => throw new BrokerException(BrokerErrorKind.NotFound, "lease not found"));
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60));

        await keeper.AdvanceToAsync(start.AddSeconds(40));
        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        var failed = await keeper.Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
        Assert.Equal((LeaseNoticeType.Error, BrokerErrorKind.Unavailable), (failed.Type, failed.ErrorCode));

        await keeper.AdvanceToAsync(start.AddSeconds(41));
        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "lease-a"), await keeper.NextNoticeAsync());

        // Renewed at 41 s for 60 s: due again at 81 s, where the backend says the lease is gone.
        await keeper.AdvanceToAsync(start.AddSeconds(81));
        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal("issue role", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Rotated, "lease-a"), await keeper.NextNoticeAsync());
    }

    [Fact]
    public async Task An_outage_that_outlasts_the_lease_ends_it_as_expired()
    {
        await using var keeper = await KeeperUnderTest.StartAsync(options => options.RetryDelay = TimeSpan.FromSeconds(30));
        var start = keeper.Time.GetUtcNow();
        keeper.Backend.Renewals.Enqueue(_ => throw new BrokerException(BrokerErrorKind.Unavailable, "backend unreachable"));
        keeper.Backend.IssueFailure = new BrokerException(BrokerErrorKind.Unavailable, "backend unreachable");
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60));

        // Due at 40 s; a retry 30 s later would land after the expiry at 60 s, so rotation is tried at once, and fails too.
        await keeper.AdvanceToAsync(start.AddSeconds(40));

        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal("issue role", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Error, "lease-a"), await keeper.NextNoticeAsync());
        Assert.Equal((LeaseNoticeType.Expired, "lease-a"), await keeper.NextNoticeAsync());
        Assert.Equal(0, keeper.Keeper.AttachedCount);
    }

    [Fact]
    public async Task A_renewal_that_comes_due_after_the_expiry_reports_EXPIRED_and_renews_nothing()
    {
        await using var keeper = await KeeperUnderTest.StartAsync();
        var start = keeper.Time.GetUtcNow();
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60)); // due at 40 s, expires at 60 s

        // The replica stalled: the renewal runs at 70 s, when the lease is already over.
        await keeper.Time.WaitForArmedAsync(start.AddSeconds(40));
        keeper.Time.ForgetArmed();
        keeper.Time.Advance(TimeSpan.FromSeconds(70));

        Assert.Equal((LeaseNoticeType.Expired, "lease-a"), await keeper.NextNoticeAsync());
        Assert.False(keeper.Backend.TryNextCall(out var call), $"nothing is renewed or rotated for an expired lease, but: {call}");
        Assert.Equal(0, keeper.Keeper.AttachedCount);
    }

    [Fact]
    public async Task Renewals_failing_until_near_the_expiry_rotate_to_fresh_credentials_before_it()
    {
        await using var keeper = await KeeperUnderTest.StartAsync(options =>
        {
            options.RetryDelay = TimeSpan.FromSeconds(5);
            options.RotateOnFailureWindow = 0.1; // the last 6 s of the 60 s TTL
        });
        var start = keeper.Time.GetUtcNow();
        for (var i = 0; i < 3; i++)
        {
            keeper.Backend.Renewals.Enqueue(_ => throw new BrokerException(BrokerErrorKind.Unavailable, "vault answered 500"));
        }
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60)); // due at 40 s, expires at 60 s

        // 40 s and 45 s: retried (the next attempt still comes before 54 s).
        foreach (var at in new[] { 40, 45 })
        {
            await keeper.AdvanceToAsync(start.AddSeconds(at));
            Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
            var failed = await keeper.Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
            Assert.Equal((LeaseNoticeType.Error, BrokerErrorKind.Unavailable), (failed.Type, failed.ErrorCode));
        }

        // 50 s: a retry at 55 s would be inside the window, so the keeper rotates now, 10 s before the expiry.
        await keeper.AdvanceToAsync(start.AddSeconds(50));
        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal("issue role", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Error, "lease-a"), await keeper.NextNoticeAsync());
        var rotated = await keeper.Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
        Assert.Equal(LeaseNoticeType.Rotated, rotated.Type);
        Assert.Equal("rotated-1", rotated.RotatedTo!.LeaseId);
        Assert.Equal("FAKE-rotated-password", rotated.RotatedTo.Credentials["password"]);
        Assert.True(rotated.Time < start.AddSeconds(60));
    }

    [Fact]
    public async Task A_lease_is_owned_by_the_whole_identity_not_by_the_subject_alone()
    {
        await using var keeper = await KeeperUnderTest.StartAsync();
        await keeper.SaveNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60), "db/role", keeper.Session.Caller);
        var none = new Dictionary<string, string>(StringComparer.Ordinal);
        CallerIdentity[] impostors =
        [
            new("test-alpha", "jwt", none) { Issuer = "https://issuer.test" },                            // another method
            new("test-alpha", "dev-token", none) { Issuer = "https://other.test" },                       // another issuer
            new("test-alpha", "dev-token", new Dictionary<string, string> { ["namespace"] = "team-b" }),  // another namespace
        ];
        foreach (var impostor in impostors)
        {
            var session = KeeperUnderTest.NewSession(impostor);
            await keeper.Keeper.AttachAsync(session, "lease-a");
            var answer = await session.Events.Reader.ReadAsync().AsTask().OrTimeout();
            Assert.Equal((LeaseNoticeType.Error, BrokerErrorKind.NotFound), (answer.Type, answer.ErrorCode));
        }
        Assert.Equal(0, keeper.Keeper.AttachedCount);

        await keeper.Keeper.AttachAsync(keeper.Session, "lease-a");
        Assert.Equal((LeaseNoticeType.Attached, "lease-a"), await keeper.NextNoticeAsync());
    }

    [Fact]
    public async Task Nothing_is_renewed_for_a_stream_whose_credential_has_expired()
    {
        await using var keeper = await KeeperUnderTest.StartAsync();
        var start = keeper.Time.GetUtcNow();
        var expiring = KeeperUnderTest.NewSession(new CallerIdentity("test-alpha", "jwt", new Dictionary<string, string>())
        {
            Issuer = "https://issuer.test",
            CredentialExpiresAt = start.AddSeconds(30),
        });
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60), session: expiring); // due at 40 s
        await keeper.AttachNewLeaseAsync("lease-b", TimeSpan.FromSeconds(90));                      // due at 60 s

        await keeper.AdvanceToAsync(start.AddSeconds(40));
        await keeper.AdvanceToAsync(start.AddSeconds(60));

        // One operation at a time: the first backend call is lease-b's, so lease-a's renewal called nothing.
        Assert.Equal("renew lease-b", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "lease-b"), await keeper.NextNoticeAsync());
        Assert.False(expiring.Events.Reader.TryRead(out var notice), $"no event for the expired stream's lease, but {notice}");
    }

    [Fact]
    public async Task A_rotation_needs_issue_as_well_as_renew_and_without_it_the_lease_waits_for_revocation()
    {
        await using var keeper = await KeeperUnderTest.StartAsync(options => options.GracePeriod = TimeSpan.FromSeconds(30));
        var start = keeper.Time.GetUtcNow();
        keeper.Backend.Renewals.Enqueue(_ => new LeaseRenewal(TimeSpan.FromSeconds(10), Renewable: true)); // capped: rotation is next
        await keeper.AttachNewLeaseAsync("lease-a", TimeSpan.FromSeconds(60), "db/renew-only");

        await keeper.AdvanceToAsync(start.AddSeconds(40));

        Assert.Equal("renew lease-a", await keeper.Backend.NextCallAsync());
        Assert.Equal((LeaseNoticeType.Renewed, "lease-a"), await keeper.NextNoticeAsync());
        var refused = await keeper.Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
        Assert.Equal((LeaseNoticeType.Error, BrokerErrorKind.PermissionDenied), (refused.Type, refused.ErrorCode));
        Assert.Contains("'issue'", refused.ErrorMessage);
        Assert.False(keeper.Backend.TryNextCall(out var call), $"no credentials are issued without the grant, but: {call}");
        Assert.Equal(0, keeper.Keeper.AttachedCount);
        // Handed to the grace-period machinery: ownerless, and due for revocation 30 s from now.
        Assert.Equal("", (await keeper.Registry.GetAsync("lease-a"))!.Owner);
        Assert.Empty(await keeper.Registry.DueOrphanKeysAsync(start.AddSeconds(69), 10));
        Assert.Single(await keeper.Registry.DueOrphanKeysAsync(start.AddSeconds(70), 10));
    }

    /// <summary>A credential backend whose renewals follow a script (default: the full TTL again) and which logs every call.</summary>
    private sealed class ScriptedIssuer : ICredentialIssuing, ISecretBackendFactory
    {
        private readonly Channel<string> _calls = Channel.CreateUnbounded<string>();
        private int _issued;

        public string MountType => "scripted-dynamic";

        /// <summary>Answers for the next renewals, in order, given the TTL asked for.</summary>
        public Queue<Func<TimeSpan, LeaseRenewal>> Renewals { get; } = new();

        public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings) => this;

        public Task<string> NextCallAsync() => _calls.Reader.ReadAsync().AsTask().OrTimeout();

        public bool TryNextCall(out string? call) => _calls.Reader.TryRead(out call);

        /// <summary>When set, issuing fails with this (an outage that hits issuing as well as renewals).</summary>
        public BrokerException? IssueFailure { get; set; }

        public Task<IssuedCredentials> IssueAsync(string role, CancellationToken cancellationToken)
        {
            _calls.Writer.TryWrite("issue " + role);
            if (IssueFailure is { } failure)
            {
                return Task.FromException<IssuedCredentials>(failure);
            }
            var id = $"rotated-{Interlocked.Increment(ref _issued)}";
            return Task.FromResult(new IssuedCredentials(id, new Dictionary<string, string> { ["password"] = "FAKE-rotated-password" },
                TimeSpan.FromSeconds(60), Renewable: true));
        }

        public Task<LeaseRenewal> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken)
        {
            _calls.Writer.TryWrite("renew " + leaseId);
            var ttl = increment ?? TimeSpan.Zero;
            return Task.FromResult(Renewals.TryDequeue(out var answer) ? answer(ttl) : new LeaseRenewal(ttl, Renewable: true));
        }

        public Task RevokeAsync(string leaseId, CancellationToken cancellationToken)
        {
            _calls.Writer.TryWrite("revoke " + leaseId);
            return Task.CompletedTask;
        }
    }

    private sealed class KeeperUnderTest : IAsyncDisposable
    {
        private const string Policy = """
            policies:
              - name: alpha-db
                appliesTo: { subjects: [test-alpha] }
                rules:
                  - paths: ["db/**"]
                    capabilities: [issue, renew, revoke]
                  - paths: ["db/renew-only"]
                    capabilities: [issue]
                    effect: deny
            """;

        private readonly TestDirectory _directory = new();
        private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        private readonly PolicyEvaluator _policy;
        private readonly ILeaseRegistry _registry;
        private readonly AccessGuard _guard;

        private KeeperUnderTest(Action<LeaseOptions>? configure)
        {
            _directory.WriteFile("policy.yaml", Policy);
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Mounts:0:Prefix"] = "db",
                ["Broker:Mounts:0:Type"] = Backend.MountType,
                ["Broker:Policy:File"] = "policy.yaml",
                ["Broker:Policy:Watch"] = "false",
            }).Build();
            var environment = new HostingEnvironment { ContentRootPath = _directory.Path };
            var auditOptions = Options.Create(new AuditOptions { Strict = false, Key = Convert.ToBase64String(new byte[32]) });
            // Not started and not strict: audit events of lease work wait in its queue.
            var recorder = new AuditRecorder(new FakeAuditStream(), auditOptions, environment, new AuditMetrics(Meters), Time, NullLogger<AuditRecorder>.Instance);
            var auditor = new AccessAuditor(recorder, auditOptions, Time);
            _policy = new PolicyEvaluator(Options.Create(new PolicyOptions { File = "policy.yaml", Watch = false }), environment, NullLogger<PolicyEvaluator>.Instance);
            var guard = _guard = new AccessGuard(new MountTable(configuration, [Backend]), _policy, auditor);
            _registry = new InMemoryLeaseRegistry(auditor);
            // No jitter, so due times are exact; one operation at a time, so backend calls arrive in order.
            var options = new LeaseOptions { RenewJitter = 0, MaxConcurrentOperations = 1 };
            configure?.Invoke(options);
            Keeper = new LeaseKeeper(guard, new LeaseRecords(_registry, NullLogger<LeaseRecords>.Instance), new LeaseMetrics(Meters), Options.Create(options),
                Time, NullLogger<LeaseKeeper>.Instance);
            Session = NewSession(new CallerIdentity("test-alpha", "dev-token", new Dictionary<string, string>(StringComparer.Ordinal)));
        }

        public ILeaseRegistry Registry => _registry;

        public static KeepAliveSession NewSession(CallerIdentity caller) => new(AccessContext.ForCaller(caller));

        public ObservableTimeProvider Time { get; } = new();

        public IMeterFactory Meters => _services.GetRequiredService<IMeterFactory>();

        public ScriptedIssuer Backend { get; } = new();

        public LeaseKeeper Keeper { get; }

        public KeepAliveSession Session { get; }

        public static async Task<KeeperUnderTest> StartAsync(Action<LeaseOptions>? configure = null)
        {
            var keeper = new KeeperUnderTest(configure);
            await keeper.Keeper.StartAsync(CancellationToken.None);
            return keeper;
        }

        /// <summary>Records a lease as IssueCredentials would, attaches it to the session and checks it was attached.</summary>
        public async Task AttachNewLeaseAsync(string leaseId, TimeSpan ttl, string path = "db/role", KeepAliveSession? session = null)
        {
            session ??= Session;
            await SaveNewLeaseAsync(leaseId, ttl, path, session.Caller);
            await Keeper.AttachAsync(session, leaseId);
            var notice = await session.Events.Reader.ReadAsync().AsTask().OrTimeout();
            Assert.Equal((LeaseNoticeType.Attached, leaseId), (notice.Type, notice.LeaseId));
        }

        /// <summary>Records a lease as IssueCredentials would for <paramref name="owner"/>: owned by its whole identity.</summary>
        public Task SaveNewLeaseAsync(string leaseId, TimeSpan ttl, string path, CallerIdentity owner) =>
            _registry.SaveAsync(new LeaseRecord(leaseId, path, owner.Subject, ttl, Renewable: true, Time.GetUtcNow() + ttl) { Identity = _guard.OwnerKey(owner) });

        /// <summary>Waits until the keeper's scheduler is armed for <paramref name="due"/>, then moves the clock there.</summary>
        public async Task AdvanceToAsync(DateTimeOffset due)
        {
            await Time.WaitForArmedAsync(due);
            Time.ForgetArmed();
            Time.Advance(due - Time.GetUtcNow());
        }

        public async Task<(LeaseNoticeType, string)> NextNoticeAsync()
        {
            var notice = await Session.Events.Reader.ReadAsync().AsTask().OrTimeout();
            return (notice.Type, notice.LeaseId);
        }

        public async ValueTask DisposeAsync()
        {
            await Keeper.StopAsync(CancellationToken.None).OrTimeout();
            Keeper.Dispose();
            _policy.Dispose();
            await _services.DisposeAsync();
            _directory.Dispose();
        }
    }
}
