using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using SecretsBroker.Broker.Backends.Vault;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>The mapping of Vault's error texts (quoted from Vault's source, see each case) to the broker's status codes.</summary>
public sealed class VaultErrorsTests
{
    private static BrokerException Map(int status, string error) =>
        Assert.Throws<BrokerException>(() => VaultErrors.Throw((HttpStatusCode)status, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { errors = new[] { error } }))));

    [Theory]
    // vault/expiration.go, leaseEntry.renewable and Renew
    [InlineData("lease not found", BrokerErrorKind.NotFound)]
    [InlineData("lease expired", BrokerErrorKind.NotFound)]
    [InlineData("lease is expired and has failed previous revocation attempts", BrokerErrorKind.NotFound)]
    [InlineData("cannot renew a lease across namespaces", BrokerErrorKind.NotFound)]
    [InlineData("invalid lease", BrokerErrorKind.NotFound)]
    [InlineData("lease is not renewable", BrokerErrorKind.FailedPrecondition)]
    // builtin/logical/database/path_creds_create.go and builtin/logical/aws/path_user.go
    [InlineData("unknown role: readonly", BrokerErrorKind.NotFound)]
    [InlineData("Role \"deploy\" not found", BrokerErrorKind.NotFound)]
    // 400s that merely contain "not found" are not a missing role (builtin/credential/jwt path_login.go; aws secret_access_keys.go)
    [InlineData("claim \"groups\" not found in token", BrokerErrorKind.InvalidArgument)]
    [InlineData("Error assuming role: NoSuchEntity: role not found", BrokerErrorKind.InvalidArgument)]
    public void Bad_requests_map_by_their_meaning(string error, BrokerErrorKind expected)
    {
        Assert.Equal(expected, Map(400, error).Kind);
    }

    [Fact]
    public void Role_and_lease_messages_never_quote_vault()
    {
        Assert.Equal("vault has no such role", Map(400, "unknown role: FAKE-secret-role").Message);
        Assert.Equal("the lease does not exist or has expired", Map(400, "lease expired").Message);
        Assert.DoesNotContain("FAKE", Map(400, "claim \"FAKE\" not found in token").Message, StringComparison.Ordinal);
    }
}
