using Microsoft.Extensions.Time.Testing;
using SecretsBroker.Broker.Access;

namespace SecretsBroker.Broker.Tests.Unit.Leases;

/// <summary>A stream's token follows its caller's credential: cancelled at the expiry on the broker's clock, never for credentials that do not expire.</summary>
public sealed class StreamLifetimeTests
{
    [Fact]
    public void The_token_is_cancelled_exactly_when_the_credential_expires()
    {
        var time = new FakeTimeProvider();
        using var lifetime = new StreamLifetime(time.GetUtcNow().AddSeconds(10), time, CancellationToken.None);

        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        Assert.False(lifetime.Token.IsCancellationRequested);

        time.Advance(TimeSpan.FromTicks(1));
        Assert.True(lifetime.Token.IsCancellationRequested);
        Assert.True(lifetime.CredentialExpired);
    }

    [Fact]
    public void An_expiry_beyond_the_timer_range_is_still_met_exactly()
    {
        var time = new FakeTimeProvider();
        using var lifetime = new StreamLifetime(time.GetUtcNow().AddDays(100), time, CancellationToken.None);

        time.Advance(TimeSpan.FromDays(99));
        Assert.False(lifetime.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromDays(1));
        Assert.True(lifetime.CredentialExpired);
    }

    [Fact]
    public void Credentials_without_an_expiry_end_only_with_their_call()
    {
        var time = new FakeTimeProvider();
        using var call = new CancellationTokenSource();
        using var lifetime = new StreamLifetime(null, time, call.Token);

        time.Advance(TimeSpan.FromDays(3650));
        Assert.False(lifetime.Token.IsCancellationRequested);

        call.Cancel();
        Assert.True(lifetime.Token.IsCancellationRequested);
        Assert.False(lifetime.CredentialExpired);
    }

    [Fact]
    public void A_credential_already_expired_at_open_ends_the_stream_at_once()
    {
        var time = new FakeTimeProvider();
        using var lifetime = new StreamLifetime(time.GetUtcNow().AddSeconds(-1), time, CancellationToken.None);

        Assert.True(lifetime.CredentialExpired);
        Assert.True(lifetime.Token.IsCancellationRequested);
    }
}
