using System.Text;
using System.Text.RegularExpressions;
using Grpc.Core;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Tests.Infrastructure;
using SecretsBroker.Broker.Tests.Observability;
using SecretsBroker.V1;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The IAM table of docs/aws.md ("IAM permissions"), read from the file and checked against moto with IAM
/// enforcement on: every feature works for a user holding exactly its row's actions, and is denied when any
/// one of them is missing. moto checks only the action of each call, so the per-secret GetSecretValue check
/// that AWS makes inside BatchGetSecretValue cannot be removed here (it comes from AWS's API reference).
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsIamPolicyTests(AwsIamPolicyTests.IamMoto moto) : IClassFixture<AwsIamPolicyTests.IamMoto>
{
    public static TheoryData<string> Features => [.. DocumentedPolicy.Features];

    public static TheoryData<string, string> Removals
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var (feature, actions) in DocumentedPolicy.Read())
            {
                foreach (var action in actions.Where(a => !(feature == "BatchGetSecrets" && a == "secretsmanager:GetSecretValue")))
                {
                    data.Add(feature, action);
                }
            }
            return data;
        }
    }

    [Fact]
    public void The_table_documents_every_feature_and_no_write_permission()
    {
        var table = DocumentedPolicy.Read();

        Assert.Equal(DocumentedPolicy.Features.Order(), table.Keys.Order());
        Assert.DoesNotContain(table.Values.SelectMany(a => a), a => Regex.IsMatch(a, "(Create|Put|Update|Rotate|Delete)"));
    }

    [Theory]
    [MemberData(nameof(Features))]
    public async Task Each_feature_works_with_exactly_its_documented_actions(string feature)
    {
        Assert.True(await moto.ExerciseAsync(feature, moto.Keys[IamMoto.UserName(feature, null)]), $"{feature} was denied with its documented actions");
    }

    [Theory]
    [MemberData(nameof(Removals))]
    public async Task Each_feature_is_denied_without_any_one_of_its_documented_actions(string feature, string action)
    {
        Assert.False(await moto.ExerciseAsync(feature, moto.Keys[IamMoto.UserName(feature, action)]), $"{feature} worked without {action}");
    }

    /// <summary>The "IAM permissions" table of docs/aws.md: feature -> the secretsmanager:* actions of its row.</summary>
    public static class DocumentedPolicy
    {
        public static readonly string[] Features =
            ["GetSecret", "BatchGetSecrets", "ListSecrets", "WatchSecrets on paths", "WatchSecrets on prefixes", "Readiness probe"];

        public static Dictionary<string, string[]> Read()
        {
            var text = File.ReadAllText(Path.Combine(RepositoryLayout.Root, "docs", "aws.md"));
            var section = text[text.IndexOf("## IAM permissions", StringComparison.Ordinal)..];
            section = section[..section.IndexOf("\n## ", 3, StringComparison.Ordinal)];
            var table = new Dictionary<string, string[]>(StringComparer.Ordinal);
            foreach (var line in section.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)))
            {
                var cells = line.Split('|', StringSplitOptions.TrimEntries);
                var feature = cells[1].Replace("`", "", StringComparison.Ordinal);
                if (feature is "Feature" or "---" or "Writes")
                {
                    continue;
                }
                table[feature] = [.. Regex.Matches(cells[3], @"secretsmanager:[A-Za-z]+").Select(m => m.Value)];
            }
            return table;
        }
    }

    /// <summary>moto with two secrets in one folder, an admin user and one user per documented row and per row minus one action; then IAM is enforced.</summary>
    public sealed class IamMoto : IAsyncLifetime
    {
        private readonly MotoServer _moto = new();
        private readonly string _run = "iam" + Guid.NewGuid().ToString("N")[..8];

        public Dictionary<string, (string KeyId, string Secret)> Keys { get; } = [];

        private string Folder => $"{_run}/app";

        public static string UserName(string feature, string? without) =>
            Regex.Replace(feature, "[^A-Za-z]", "") + "-" + (without is null ? "full" : "no-" + without.Split(':')[1]);

        public async Task InitializeAsync()
        {
            await _moto.InitializeAsync();
            await _moto.Boto3Async(new { op = "create_many", names = new[] { $"{Folder}/a", $"{Folder}/b" }, @string = """{"password":"FAKE-iam"}""" });
            var users = new List<object> { new { user = "admin", actions = new[] { "secretsmanager:*" } } };
            foreach (var (feature, actions) in DocumentedPolicy.Read())
            {
                users.Add(new { user = UserName(feature, null), actions });
                users.AddRange(actions.Select(a => new { user = UserName(feature, a), actions = actions.Where(x => x != a).ToArray() }));
            }
            var created = await _moto.Boto3Async(new { op = "setup_iam_users", users });
            foreach (var (user, key) in created)
            {
                Keys[user] = ((string)key!["AccessKeyId"]!, (string)key["SecretAccessKey"]!);
            }
            using var http = new HttpClient();
            using var response = await http.PostAsync(new Uri(_moto.Url, "moto-api/reset-auth"), new StringContent("0", Encoding.UTF8));
            response.EnsureSuccessStatusCode();
        }

        public Task DisposeAsync() => _moto.DisposeAsync();

        /// <summary>Runs one feature through a broker signing with <paramref name="keys"/>: true when it worked, false when AWS denied it.</summary>
        public async Task<bool> ExerciseAsync(string feature, (string KeyId, string Secret) keys)
        {
            var configuration = _moto.MountConfiguration(maxRetries: 0);
            configuration["Broker:Mounts:0:AccessKeyId"] = keys.KeyId;
            configuration["Broker:Mounts:0:SecretAccessKey"] = keys.Secret;
            configuration["Broker:Mounts:0:Cache:Enabled"] = "false";
            configuration["Broker:Watch:PollInterval"] = "00:00:00.200";
            configuration["Broker:Health:ProbeCacheDuration"] = "00:00:00";
            await using var broker = await BrokerHost.StartAsync(configuration);
            var client = broker.CreateClient();
            return feature switch
            {
                "GetSecret" => await DeniedIsFalseAsync(async () => Assert.Equal("FAKE-iam", (await client.GetSecretAsync($"aws/{Folder}/a")).Data["password"])),
                "BatchGetSecrets" => await BatchAsync(client),
                "ListSecrets" => await DeniedIsFalseAsync(async () => Assert.Equal(2, (await client.ListSecretsPageAsync($"aws/{Folder}")).Secrets.Count)),
                "WatchSecrets on paths" => await WatchAsync(client, new WatchSecretsRequest { Paths = { $"aws/{Folder}/a" } }),
                "WatchSecrets on prefixes" => await WatchAsync(client, new WatchSecretsRequest { Prefixes = { $"aws/{Folder}" } }),
                "Readiness probe" => await ProbeAsync(broker),
                _ => throw new ArgumentException(feature),
            };
        }

        private static async Task<bool> DeniedIsFalseAsync(Func<Task> call)
        {
            try
            {
                await call();
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
            {
                return false;
            }
        }

        private async Task<bool> BatchAsync(SecretsBroker.Client.BrokerClient client)
        {
            var items = await client.BatchGetSecretsAsync([$"aws/{Folder}/a", $"aws/{Folder}/b"]);
            if (items.All(i => i.Error is { Code: (int)StatusCode.PermissionDenied }))
            {
                return false;
            }
            Assert.All(items, i => Assert.Equal("FAKE-iam", i.Secret.Data["password"]));
            return true;
        }

        /// <summary>Opens the watch (its baseline needs DescribeSecret, a prefix ListSecrets too), then changes the secret as the admin and waits for the event.</summary>
        private async Task<bool> WatchAsync(SecretsBroker.Client.BrokerClient client, WatchSecretsRequest request)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var call = client.Raw.WatchSecrets(request, cancellationToken: cancel.Token);
            var next = call.ResponseStream.MoveNext(cancel.Token);
            try
            {
                await call.ResponseHeadersAsync;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
            {
                return false;
            }
            if (next.IsCompleted)
            {
                // A failure before any event: denied at subscription.
                try
                {
                    await next;
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
                {
                    return false;
                }
            }
            var (keyId, secret) = Keys["admin"];
            using var http = SecretsManagerHttp.CreateClient(new AwsSecretsManagerOptions(), MotoServer.Region,
                new StaticAwsCredentialSource(new AwsCredentials(keyId, secret)), TimeProvider.System);
            var put = await new SecretsManagerClient(http, _moto.Url).PutSecretValueAsync(
                new PutSecretValueRequest { SecretId = $"{Folder}/a", SecretString = """{"password":"FAKE-iam"}""" });
            try
            {
                Assert.True(await next, "the watch ended without an event");
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
            {
                return false; // the baseline read passed but a poll was denied
            }
            Assert.Equal(put.VersionId, call.ResponseStream.Current.Version);
            return true;
        }

        private static async Task<bool> ProbeAsync(BrokerHost broker)
        {
            // The probe is up either way (AccessDenied proves the credentials); what differs is what it could do.
            Assert.Equal(ServingStatus.Serving, await HealthTests.StatusAsync(HealthTests.HealthClient(broker), "readiness"));
            var up = broker.Logs.Lines.Single(l => l.Contains("Backend of mount aws (aws-sm) is up", StringComparison.Ordinal));
            return up.Contains("AWS Secrets Manager answered ListSecrets", StringComparison.Ordinal)
                ? true
                : up.Contains("ListSecrets not permitted", StringComparison.Ordinal) ? false : throw new InvalidOperationException(up);
        }
    }
}
