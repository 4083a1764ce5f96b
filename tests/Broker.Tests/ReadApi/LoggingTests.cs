namespace SecretsBroker.Broker.Tests.ReadApi;

[Collection(LocalMountCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LoggingTests(LocalMountFixture fixture)
{
    [Fact]
    public async Task No_secret_value_token_or_logical_path_reaches_the_log_at_trace_level()
    {
        var client = fixture.Host.CreateClient();
        await client.GetSecretAsync("team/ml/db");
        await client.GetSecretAsync("team/ml/registry", version: "1");
        await client.GetSecretAsync("team/certs/ca");
        await client.BatchGetSecretsAsync(["team/ml/db", "mem/shared/one", "team/ml/missing"]);
        await client.ListSecretsAsync("team").ToListAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => fixture.Host.CreateClient(token: "FAKE-wrong-token").GetSecretAsync("team/ml/db"));

        fixture.Host.Logs.AssertNoneContain([.. LocalMountFixture.SecretValues, "team/ml/db", "ml/registry", "FAKE-wrong-token", Infrastructure.BrokerHost.TestToken]);
    }
}
