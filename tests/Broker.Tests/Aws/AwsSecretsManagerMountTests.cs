using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SecretsBroker.Broker.Backends.Aws;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The aws-sm mount end to end: secrets created in moto's Secrets Manager (with boto3 or the project's
/// client), read through the real broker over gRPC.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsSecretsManagerMountTests(MotoServer moto) : IClassFixture<MotoServer>
{
    private readonly string _run = "t" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task A_json_secret_string_is_served_as_its_fields_with_non_strings_as_json_text()
    {
        var name = $"{_run}/prod/db";
        var created = await moto.Boto3Async(new { op = "create", name, @string = """{"username":"svc","password":"p@ss w0rd","port":5432,"tls":true,"opts":{"a":[1,2]}}""" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());
        var client = broker.CreateClient();

        var secret = await client.GetSecretAsync($"aws/{name}");

        Assert.Equal("svc", secret.Data["username"]);
        Assert.Equal("p@ss w0rd", secret.Data["password"]);
        Assert.Equal("5432", secret.Data["port"]);
        Assert.Equal("true", secret.Data["tls"]);
        Assert.Equal("""{"a":[1,2]}""", secret.Data["opts"]);
        Assert.Equal(5, secret.Data.Count);
        Assert.Equal((string)created["VersionId"]!, secret.Version);
        Assert.Contains("AWSCURRENT", secret.Stages);
        Assert.True(secret.BinaryData.IsEmpty);
        Assert.Equal("aws-sm", secret.Serving.BackendType);
        broker.Logs.AssertNoneContain(["p@ss w0rd", name]);
    }

    [Fact]
    public async Task A_plain_secret_string_is_served_as_the_single_field_value()
    {
        var name = $"{_run}/plain";
        await moto.Boto3Async(new { op = "create", name, @string = "just a token, not json {" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());

        var secret = await broker.CreateClient().GetSecretAsync($"aws/{name}");

        Assert.Equal("just a token, not json {", Assert.Single(secret.Data, p => p.Key == "value").Value);
        Assert.Single(secret.Data);
    }

    [Fact]
    public async Task A_binary_secret_is_served_as_the_same_bytes()
    {
        var name = $"{_run}/cert.der";
        var bytes = new byte[300];
        Random.Shared.NextBytes(bytes);
        bytes[0] = 0;
        bytes[1] = 0xFF;
        await moto.Boto3Async(new { op = "create", name, binary_b64 = Convert.ToBase64String(bytes) });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());

        var secret = await broker.CreateClient().GetSecretAsync($"aws/{name}");

        Assert.Equal(bytes, secret.BinaryData.ToByteArray());
        Assert.Empty(secret.Data);
    }

    [Fact]
    public async Task After_put_secret_value_AWSCURRENT_serves_the_new_value_and_AWSPREVIOUS_the_old_one()
    {
        var name = $"{_run}/rotating";
        var first = await moto.Boto3Async(new { op = "create", name, @string = """{"password":"old-one"}""" });
        var second = await moto.Boto3Async(new { op = "put", name, @string = """{"password":"new-one"}""" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());
        var client = broker.CreateClient();
        var path = $"aws/{name}";

        var latest = await client.GetSecretAsync(path);
        var current = await client.GetSecretAtStageAsync(path, "AWSCURRENT");
        var previous = await client.GetSecretAtStageAsync(path, "AWSPREVIOUS");
        var byVersion = await client.GetSecretAsync(path, (string)first["VersionId"]!);

        Assert.Equal("new-one", latest.Data["password"]);
        Assert.Equal((string)second["VersionId"]!, latest.Version);
        Assert.Equal(latest.Version, current.Version);
        Assert.Contains("AWSCURRENT", current.Stages);
        Assert.Equal("old-one", previous.Data["password"]);
        Assert.Equal((string)first["VersionId"]!, previous.Version);
        Assert.Contains("AWSPREVIOUS", previous.Stages);
        Assert.Equal("old-one", byVersion.Data["password"]);
        Assert.Equal(["AWSPREVIOUS"], byVersion.Stages);
    }

    [Fact]
    public async Task A_missing_secret_or_version_is_NOT_FOUND_and_the_message_names_neither()
    {
        var name = $"{_run}/exists";
        await moto.Boto3Async(new { op = "create", name, @string = "x" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());
        var client = broker.CreateClient();

        var missing = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"aws/{_run}/no-such-secret"));
        var missingVersion = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"aws/{name}", "0123456789abcdef0123456789abcdef"));
        var missingStage = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAtStageAsync($"aws/{name}", "NO-SUCH-STAGE"));
        var badVersion = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync($"aws/{name}", "7"));

        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Equal(StatusCode.NotFound, missingVersion.StatusCode);
        Assert.Equal(StatusCode.NotFound, missingStage.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, badVersion.StatusCode);
        foreach (var error in (RpcException[])[missing, missingVersion, missingStage, badVersion])
        {
            Assert.DoesNotContain(_run, error.Status.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("0123456789abcdef", error.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_batch_with_a_missing_id_returns_every_other_secret_and_a_NOT_FOUND_item_in_request_order()
    {
        var names = Enumerable.Range(0, 23).Select(i => $"{_run}/batch/s{i:D2}").ToArray();
        await moto.Boto3Async(new { op = "create_many", names, @string = """{"k":"v"}""" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());
        List<string> paths = [.. names.Take(10).Select(n => $"aws/{n}"), $"aws/{_run}/batch/missing", .. names.Skip(10).Select(n => $"aws/{n}")];

        var results = await broker.CreateClient().BatchGetSecretsAsync(paths);

        Assert.Equal(paths, results.Select(r => r.Path));
        for (var i = 0; i < results.Count; i++)
        {
            if (i == 10)
            {
                Assert.Equal((int)StatusCode.NotFound, results[i].Error.Code);
                Assert.DoesNotContain(_run, results[i].Error.Message, StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal("v", results[i].Secret.Data["k"]);
            }
        }
    }

    [Fact]
    public async Task Batch_reads_use_BatchGetSecretValue_in_chunks_of_at_most_twenty_ids()
    {
        var names = Enumerable.Range(0, 45).Select(i => $"{_run}/chunks/s{i:D2}").ToArray();
        await moto.Boto3Async(new { op = "create_many", names, @string = "same" });
        var recorder = new RecordingHandler(new SocketsHttpHandler());
        var options = new AwsSecretsManagerOptions { MaxRetries = 0 };
        using var http = SecretsManagerHttp.CreateClient(options, MotoServer.Region,
            new StaticAwsCredentialSource(new AwsCredentials(MotoServer.AccessKeyId, MotoServer.SecretAccessKey)), TimeProvider.System, primaryHandler: recorder);
        var backend = new AwsSecretsManagerBackend(new SecretsManagerClient(http, moto.Url), "aws", NullLogger<AwsSecretsManagerBackend>.Instance);

        var results = await backend.GetManyAsync([.. names, $"{_run}/chunks/missing"], CancellationToken.None);

        Assert.All(results.Take(45), r => Assert.Equal("same", r.Value!.Data!["value"]));
        Assert.Equal(BrokerErrorKind.NotFound, results[45].Error!.Kind);
        Assert.Equal(["secretsmanager.BatchGetSecretValue", "secretsmanager.BatchGetSecretValue", "secretsmanager.BatchGetSecretValue"], recorder.Targets);
        Assert.All(recorder.Bodies, body => Assert.True(CountIds(body) <= SecretsManagerClient.MaxBatchIds));
        Assert.Equal(46, recorder.Bodies.Sum(CountIds));
    }

    [Fact]
    public async Task Listing_a_folder_pages_through_every_secret_beneath_it_and_nothing_else()
    {
        var folder = $"{_run}/team";
        var inside = Enumerable.Range(0, 7).Select(i => $"{folder}/app{i}/key").ToArray();
        // Same string prefix but another folder, and a name equal to the folder: neither is beneath it.
        string[] outside = [$"{folder}-other/key", folder];
        await moto.Boto3Async(new { op = "create_many", names = inside.Concat(outside).ToArray(), @string = "v" });
        await using var broker = await BrokerHost.StartAsync(moto.MountConfiguration());
        var client = broker.CreateClient();

        var pages = new List<SecretsBroker.V1.ListSecretsResponse>();
        var token = "";
        do
        {
            var page = await client.ListSecretsPageAsync($"aws/{folder}", pageSize: 3, pageToken: token);
            pages.Add(page);
            token = page.NextPageToken;
        }
        while (token.Length > 0 && pages.Count < 10);

        var listed = pages.SelectMany(p => p.Secrets).Select(s => s.Path).ToList();
        Assert.True(pages.Count >= 3, $"expected at least 3 pages, got {pages.Count}");
        Assert.All(pages, p => Assert.True(p.Secrets.Count <= 3));
        Assert.Equal(inside.Select(n => $"aws/{n}").Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.All(pages.SelectMany(p => p.Secrets), s => Assert.False(string.IsNullOrEmpty(s.LatestVersion)));
    }

    [Fact]
    public async Task A_secret_written_with_the_project_client_reads_back_byte_for_byte_with_boto3()
    {
        var client = ProjectClient(out var http);
        using var _ = http;
        var text = "päss-wörd ✓ \"quoted\" \\ \u0001 end";
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var textName = $"{_run}/cross/text";
        var binaryName = $"{_run}/cross/binary";

        var textWrite = await client.CreateSecretAsync(new CreateSecretRequest { Name = textName, SecretString = text });
        await client.CreateSecretAsync(new CreateSecretRequest { Name = binaryName, SecretBinary = bytes });
        var readText = await moto.Boto3Async(new { op = "get", name = textName });
        var readBinary = await moto.Boto3Async(new { op = "get", name = binaryName });

        Assert.Equal(Encoding.UTF8.GetBytes(text), Convert.FromBase64String((string)readText["SecretStringB64"]!));
        Assert.Equal(textWrite.VersionId, (string)readText["VersionId"]!);
        Assert.Equal(bytes, Convert.FromBase64String((string)readBinary["SecretBinaryB64"]!));
    }

    [Fact]
    public async Task A_secret_written_with_boto3_reads_back_byte_for_byte_with_the_project_client()
    {
        var client = ProjectClient(out var http);
        using var _ = http;
        var text = "ünïcödé 🔑 {not json";
        var bytes = new byte[1024];
        Random.Shared.NextBytes(bytes);
        var textName = $"{_run}/cross2/text";
        var binaryName = $"{_run}/cross2/binary";
        await moto.Boto3Async(new { op = "create", name = textName, @string = text });
        await moto.Boto3Async(new { op = "create", name = binaryName, binary_b64 = Convert.ToBase64String(bytes) });

        var readText = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = textName });
        var readBinary = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = binaryName });

        Assert.Equal(Encoding.UTF8.GetBytes(text), Encoding.UTF8.GetBytes(readText.SecretString!));
        Assert.Null(readText.SecretBinary);
        Assert.Equal(bytes, readBinary.SecretBinary);
        Assert.Null(readBinary.SecretString);
    }

    [Fact]
    public async Task The_project_client_covers_put_describe_list_and_rotate()
    {
        var client = ProjectClient(out var http);
        using var _ = http;
        var name = $"{_run}/ops/secret";
        var v1 = await client.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = "one" });
        var v2 = await client.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = "two" });

        var described = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = name });
        Assert.Contains("AWSCURRENT", described.VersionIdsToStages![v2.VersionId!]);
        Assert.Contains("AWSPREVIOUS", described.VersionIdsToStages![v1.VersionId!]);
        var fromBoto3 = await moto.Boto3Async(new { op = "describe", name });
        Assert.Contains("AWSCURRENT", fromBoto3["VersionIdsToStages"]![v2.VersionId!]!.AsArray().Select(n => (string)n!));

        var listed = await client.ListSecretsAsync(new ListSecretsRequest
        {
            Filters = [new SecretsManagerFilter { Key = "name", Values = [$"{_run}/ops/"] }],
            MaxResults = 10,
        });
        Assert.Equal(name, Assert.Single(listed.SecretList!).Name);

        var rotated = await client.RotateSecretAsync(new RotateSecretRequest { SecretId = name, RotateImmediately = false });
        Assert.False(string.IsNullOrEmpty(rotated.VersionId));
        var afterRotate = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = name });
        // Without a rotation Lambda, moto promotes the new version at once (AWS itself requires a Lambda ARN).
        Assert.NotEqual(v2.VersionId, rotated.VersionId);
        Assert.Contains("AWSCURRENT", afterRotate.VersionIdsToStages![rotated.VersionId!]);

        var duplicate = await Assert.ThrowsAsync<SecretsManagerException>(() => client.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = "x" }));
        Assert.Equal("ResourceExistsException", duplicate.ErrorCode);
        Assert.DoesNotContain(name, duplicate.Message, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<SecretsManagerException>(() => client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = $"{_run}/nope" }));
        Assert.Equal("ResourceNotFoundException", missing.ErrorCode);
    }

    [Fact]
    public async Task A_mount_with_a_named_profile_gets_its_credentials_through_the_AWS_SDK()
    {
        var name = $"{_run}/profile/secret";
        await moto.Boto3Async(new { op = "create", name, @string = "via-profile" });
        using var directory = new TestDirectory();
        var credentialsFile = directory.WriteFile("credentials", "[broker-test]\naws_access_key_id = AKIDPROFILETEST\naws_secret_access_key = profile-secret-key\n");
        var configuration = moto.MountConfiguration();
        configuration.Remove("Broker:Mounts:0:AccessKeyId");
        configuration.Remove("Broker:Mounts:0:SecretAccessKey");
        configuration["Broker:Mounts:0:Profile"] = "broker-test";
        configuration["Broker:Mounts:0:ProfilesLocation"] = credentialsFile;
        await using var broker = await BrokerHost.StartAsync(configuration);

        var secret = await broker.CreateClient().GetSecretAsync($"aws/{name}");

        Assert.Equal("via-profile", secret.Data["value"]);
        Assert.Contains(broker.Logs.Lines, l => l.Contains("credentials from profile", StringComparison.Ordinal));
        broker.Logs.AssertNoneContain(["profile-secret-key", "AKIDPROFILETEST"]);
    }

    [Fact]
    public async Task An_invalid_mount_stops_the_broker_at_start_with_a_message_naming_the_setting_but_not_the_key()
    {
        var configuration = moto.MountConfiguration();
        configuration["Broker:Mounts:0:ServiceUrl"] = "not a url";
        configuration["Broker:Mounts:0:SecretAccessKey"] = "";
        configuration["Broker:Mounts:0:AccessKeyId"] = "AKIDSHOULDNOTAPPEAR";
        configuration["Broker:Mounts:0:MaxRetries"] = "99";

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => BrokerHost.StartAsync(configuration));

        Assert.Contains("ServiceUrl", error.Message, StringComparison.Ordinal);
        Assert.Contains("SecretAccessKey", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxRetries", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AKIDSHOULDNOTAPPEAR", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_UNAVAILABLE_after_the_retries()
    {
        using var closed = FreePort.Reserve();
        var configuration = moto.MountConfiguration(maxRetries: 2);
        configuration["Broker:Mounts:0:ServiceUrl"] = closed.Url.ToString();
        await using var broker = await BrokerHost.StartAsync(configuration);
        int Retries() => broker.Logs.Lines.Count(l => l.Contains("aws-sm mount aws: retry", StringComparison.Ordinal));
        // The start-up count of visible secrets (ListSecrets) fails first, with its own retries.
        await Eventually.WaitUntilAsync(() => broker.Logs.Lines.Any(l => l.Contains("could not count the secrets visible", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the start-up ListSecrets to give up");
        var before = Retries();

        var error = await Assert.ThrowsAsync<RpcException>(() => broker.CreateClient().GetSecretAsync($"aws/{_run}/anything"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(2, Retries() - before);
        Assert.DoesNotContain(_run, string.Join('\n', broker.Logs.Lines), StringComparison.Ordinal);
    }

    private SecretsManagerClient ProjectClient(out HttpClient http)
    {
        http = SecretsManagerHttp.CreateClient(new AwsSecretsManagerOptions { MaxRetries = 1 }, MotoServer.Region,
            new StaticAwsCredentialSource(new AwsCredentials(MotoServer.AccessKeyId, MotoServer.SecretAccessKey)), TimeProvider.System);
        return new SecretsManagerClient(http, moto.Url);
    }

    private static int CountIds(string body) =>
        System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("SecretIdList").GetArrayLength();

    private sealed class RecordingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        public List<string> Targets { get; } = [];

        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Targets)
            {
                Targets.Add(request.Headers.GetValues("X-Amz-Target").Single());
            }
            var body = await request.Content!.ReadAsStringAsync(cancellationToken);
            lock (Bodies)
            {
                Bodies.Add(body);
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
