using Microsoft.Extensions.DependencyInjection;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>The vault-kv write layer against the emulator: KV v2 versions with options.cas as Vault applies it.</summary>
[Collection(VaultCollection.Name)]
[Trait("Category", "Integration")]
public sealed class VaultKvWriteTests(VaultFixture fixture)
{
    private readonly string _name = "app/write-" + Guid.NewGuid().ToString("N")[..8];

    private ISecretWriter Writer => Assert.IsType<VaultKvBackend>(fixture.Host.Services.GetRequiredService<MountTable>().Resolve("vault/" + _name).Mounted.Backend);

    private static SecretWrite Fields(string value, string? expected = null) =>
        new() { Data = new Dictionary<string, string> { ["password"] = value }, ExpectedVersion = expected };

    [Fact]
    public async Task Versions_are_written_with_check_and_set_and_a_stale_one_names_the_current_version()
    {
        var first = await Writer.WriteVersionAsync(_name, Fields("FAKE-w1", expected: ""), CancellationToken.None);
        var second = await Writer.WriteVersionAsync(_name, Fields("FAKE-w2", expected: "1"), CancellationToken.None);
        var stale = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, Fields("FAKE-w3", expected: "1"), CancellationToken.None));
        var onlyIfNew = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, Fields("FAKE-w3", expected: ""), CancellationToken.None));
        var third = await Writer.WriteVersionAsync(_name, Fields("FAKE-w3"), CancellationToken.None);

        Assert.Equal(["1", "2", "3"], new[] { first.Version, second.Version, third.Version });
        Assert.NotNull(second.CreatedAt);
        Assert.Equal("check-and-set failed: the current version is 2", stale.Message);
        Assert.Equal(BrokerErrorKind.FailedPrecondition, stale.Kind);
        Assert.Equal("check-and-set failed: the current version is 2", onlyIfNew.Message);
        var read = await fixture.Host.CreateClient().GetSecretAsync("vault/" + _name);
        Assert.Equal("FAKE-w3", read.Data["password"]);
    }

    [Fact]
    public async Task An_expected_version_on_a_missing_secret_says_it_does_not_exist()
    {
        var error = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, Fields("FAKE-x", expected: "4"), CancellationToken.None));

        Assert.Equal(BrokerErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal("check-and-set failed: the secret does not exist, so no version is current", error.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    [InlineData("-1")]
    public async Task An_expected_version_that_is_not_a_kv_version_is_invalid(string expected)
    {
        var error = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, Fields("FAKE-x", expected), CancellationToken.None));

        Assert.Equal(BrokerErrorKind.InvalidArgument, error.Kind);
    }

    [Fact]
    public async Task Bytes_and_stages_are_refused_on_vault_kv()
    {
        var binary = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, new SecretWrite { Binary = [1, 2] }, CancellationToken.None));
        var staged = await Assert.ThrowsAsync<BrokerException>(() => Writer.WriteVersionAsync(_name, Fields("FAKE-x") with { Stages = ["AWSPENDING"] }, CancellationToken.None));

        Assert.Equal(BrokerErrorKind.FailedPrecondition, binary.Kind);
        Assert.Equal(BrokerErrorKind.FailedPrecondition, staged.Kind);
    }
}
