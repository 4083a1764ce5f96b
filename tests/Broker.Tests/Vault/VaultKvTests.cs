using Grpc.Core;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Vault;

[Collection(VaultCollection.Name)]
[Trait("Category", "Integration")]
public sealed class VaultKvTests(VaultFixture fixture) : IDisposable
{
    public void Dispose() => fixture.Vault.ResetFaults();

    [Fact]
    public async Task The_latest_version_is_read_when_no_version_is_asked_for()
    {
        var secret = await fixture.Host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("2", secret.Version);
        Assert.Equal("FAKE-db-password-v2", secret.Data["password"]);
        Assert.Equal("FAKE-db-user", secret.Data["user"]);
    }

    [Fact]
    public async Task An_older_version_is_read_by_its_kv_version_number()
    {
        var secret = await fixture.Host.CreateClient().GetSecretAsync("vault/app/db", version: "1");

        Assert.Equal("1", secret.Version);
        Assert.Equal("FAKE-db-password-v1", secret.Data["password"]);
        Assert.False(secret.Data.ContainsKey("user"));
    }

    [Fact]
    public async Task A_batch_read_answers_each_vault_path_with_its_own_outcome()
    {
        var results = await fixture.Host.CreateClient().BatchGetSecretsAsync(["vault/app/db", "vault/app/missing", "vault/team-b/secret"]);

        Assert.Equal("FAKE-db-password-v2", results[0].Secret.Data["password"]);
        Assert.Equal((int)StatusCode.NotFound, results[1].Error.Code);
        Assert.Equal((int)StatusCode.PermissionDenied, results[2].Error.Code);
    }

    [Fact]
    public async Task A_missing_secret_is_not_found()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/missing"));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("secret not found", error.Status.Detail);
    }

    [Fact]
    public async Task A_version_that_does_not_exist_is_not_found()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/db", version: "9"));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("version 9 of this secret does not exist", error.Status.Detail);
    }

    [Fact]
    public async Task A_deleted_latest_version_is_not_found_and_says_it_was_deleted()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/gone"));
        var older = await fixture.Host.CreateClient().GetSecretAsync("vault/app/gone", version: "1");

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("version 2 of this secret was deleted", error.Status.Detail);
        Assert.Equal("FAKE-gone-v1", older.Data["key"]);
    }

    [Fact]
    public async Task A_stage_selector_is_a_failed_precondition_and_a_bad_version_is_invalid()
    {
        var stage = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAtStageAsync("vault/app/db", "AWSCURRENT"));
        var version = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/db", version: "latest"));

        Assert.Equal(StatusCode.FailedPrecondition, stage.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, version.StatusCode);
    }

    [Fact]
    public async Task A_path_outside_the_brokers_vault_policy_is_permission_denied_without_echoing_the_path()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/team-b/secret"));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.DoesNotContain("team-b", error.Status.Detail);
    }

    [Fact]
    public async Task Listing_walks_the_kv_tree_in_ordinal_order_across_pages()
    {
        var client = fixture.Host.CreateClient();
        var names = new List<string>();
        var pages = 0;
        string? token = null;
        do
        {
            var page = await client.ListSecretsPageAsync("vault/app/list", pageSize: 2, pageToken: token);
            names.AddRange(page.Secrets.Select(s => s.Path));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0);

        Assert.Equal(["vault/app/list/api-gateway", "vault/app/list/api/key", "vault/app/list/db", "vault/app/list/z"], names);
        Assert.Equal(2, pages);
    }

    [Fact]
    public async Task Listing_works_behind_a_proxy_that_rejects_the_LIST_verb()
    {
        fixture.Vault.SetFaults("""{ "reject_list_verb": true }""");

        var page = await fixture.Host.CreateClient().ListSecretsPageAsync("vault/app/list", pageSize: 10);

        Assert.Equal(["vault/app/list/api-gateway", "vault/app/list/api/key", "vault/app/list/db", "vault/app/list/z"], page.Secrets.Select(s => s.Path));
    }

    [Fact]
    public async Task Listing_an_empty_folder_returns_nothing()
    {
        var page = await fixture.Host.CreateClient().ListSecretsPageAsync("vault/nothing-here");

        Assert.Empty(page.Secrets);
        Assert.Equal("", page.NextPageToken);
    }

    [Fact]
    public async Task A_sealed_vault_is_unavailable()
    {
        fixture.Vault.SetFaults("""{ "sealed": true }""");

        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("vault is sealed", error.Status.Detail);
    }

    [Fact]
    public async Task Rate_limited_reads_are_retried_with_backoff_and_then_succeed()
    {
        var limitedBefore = fixture.Vault.Faults.RateLimited;
        fixture.Vault.SetFaults("""{ "rate_limit_count": 2, "path_prefix": "secret/data/" }""");

        var secret = await fixture.Host.CreateClient().GetSecretAsync("vault/app/db");

        Assert.Equal("FAKE-db-password-v2", secret.Data["password"]);
        Assert.Equal(2, fixture.Vault.Faults.RateLimited - limitedBefore);
    }

    [Fact]
    public async Task Reads_still_rate_limited_after_every_retry_are_resource_exhausted()
    {
        fixture.Vault.SetFaults("""{ "rate_limit_count": 50, "path_prefix": "secret/data/" }""");

        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/app/db"));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal(46, fixture.Vault.Faults.RateLimitRemaining); // one attempt and three retries
    }

    [Fact]
    public async Task A_dropped_connection_on_a_read_is_retried()
    {
        fixture.Vault.SetFaults("""{ "drop_count": 1, "path_prefix": "secret/data/" }""");

        var secret = await fixture.Host.CreateClient().GetSecretAsync("vault/app/db", version: "1");

        Assert.Equal("FAKE-db-password-v1", secret.Data["password"]);
        Assert.Equal(0, fixture.Vault.Faults.DropRemaining);
    }

    [Fact]
    public async Task A_check_and_set_write_with_a_stale_version_is_a_failed_precondition()
    {
        var backend = Assert.IsType<VaultKvBackend>(fixture.Host.Services.GetRequiredService<MountTable>().Resolve("vault/app/cas").Mounted.Backend);

        var first = await backend.WriteVersionAsync("app/cas", new Dictionary<string, string> { ["k"] = "FAKE-cas-1" }, cas: 0, CancellationToken.None);
        var error = await Assert.ThrowsAsync<BrokerException>(() =>
            backend.WriteVersionAsync("app/cas", new Dictionary<string, string> { ["k"] = "FAKE-cas-2" }, cas: 0, CancellationToken.None));
        var current = await backend.GetCurrentVersionAsync("app/cas", CancellationToken.None);

        Assert.Equal("1", first.Version);
        Assert.NotNull(first.CreatedAt);
        Assert.Equal(BrokerErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal("check-and-set failed: the current version is 1", error.Message);
        Assert.Equal("1", current);
    }

    [Fact]
    public async Task Dynamic_database_credentials_are_issued_renewed_and_revoked()
    {
        var backend = Assert.IsType<VaultDynamicBackend>(fixture.Host.Services.GetRequiredService<MountTable>().Resolve("db/readonly").Mounted.Backend);

        var lease = await backend.IssueAsync("readonly", CancellationToken.None);
        var renewed = await backend.RenewAsync(lease.LeaseId, TimeSpan.FromMinutes(30), CancellationToken.None);
        await backend.RevokeAsync(lease.LeaseId, CancellationToken.None);
        var afterRevoke = await Assert.ThrowsAsync<BrokerException>(() => backend.RenewAsync(lease.LeaseId, null, CancellationToken.None));
        var get = await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("db/readonly"));

        Assert.StartsWith("database/creds/readonly/", lease.LeaseId);
        Assert.Equal(TimeSpan.FromHours(1), lease.Duration);
        Assert.True(lease.Renewable);
        Assert.NotEmpty(lease.Data["username"]);
        Assert.NotEmpty(lease.Data["password"]);
        Assert.Equal(TimeSpan.FromMinutes(30), renewed.Duration);
        Assert.Equal(BrokerErrorKind.NotFound, afterRevoke.Kind);
        Assert.Contains(fixture.Vault.State.DescribeLeases(), l => (string)l!["lease_id"]! == lease.LeaseId && (bool)l["revoked"]! && !(bool)l["live"]!);
        Assert.Equal(StatusCode.FailedPrecondition, get.StatusCode);
        Assert.Contains("IssueCredentials", get.Status.Detail);
    }

    [Fact]
    public async Task Broker_logs_never_contain_vault_secret_values_tokens_or_paths()
    {
        await fixture.Host.CreateClient().GetSecretAsync("vault/app/db");
        await Assert.ThrowsAsync<RpcException>(() => fixture.Host.CreateClient().GetSecretAsync("vault/team-b/secret"));

        fixture.Host.Logs.AssertNoneContain(VaultFixture.Forbidden);
    }
}
