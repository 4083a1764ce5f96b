using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.V1;
using SecretsBroker.V1;
using StackExchange.Redis;

namespace SecretsBroker.Benchmarks.Harness;

internal static class Commands
{
    public static int Usage()
    {
        Console.Error.WriteLine("""
            usage:
              requests DIR MOUNT COUNT                         write h2load bodies: get.grpc, miss.grpc, batch.grpc (MOUNT/s000 .. COUNT paths)
              verify URL TOKEN REQUEST.grpc SOURCE RESPONSE    one real gRPC call of the request; fails unless OK and every secret came from SOURCE (L1, L2, BACKEND); saves the response
              audit REDIS STREAM AFTER_ID                      counts stream entries after AFTER_ID: prints 'last_id allowed not_allowed'
              jwt DIR ISSUER AUDIENCE [COUNT]                  writes jwks.json (a new RSA key) and jwt.txt: a Kubernetes service-account token (RS256, 2 h) signed with it;
                                                               with COUNT, also jwts.txt: COUNT tokens of distinct service accounts (trainer-00000 ...)
              warm URL TOKEN MOUNT COUNT                       reads MOUNT/s000 .. COUNT once (BatchGetSecrets of 100), so all are cached
              warm-callers URL TOKENS MOUNT                    one GetSecret of MOUNT/s000 per token (a line of TOKENS), so each JWT is validated once
              load URL SECONDS CONNECTIONS CONCURRENCY MOUNT COUNT TOKENS   GetSecret of a uniformly random path and token (a line of TOKENS) per call; prints 'ok failed seconds'
            """);
        return 2;
    }

    /// <summary>
    /// A signing key and one service-account token for the JWT scenario: what a cluster's OIDC issuer and a
    /// projected token volume would give the broker and a workload. The key exists only in this run.
    /// </summary>
    public static int WriteJwt(string directory, string issuer, string audience, int count = 0)
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var parameters = key.ExportParameters(includePrivateParameters: false);
        const string keyId = "bench-key-1";
        var jwks = new Dictionary<string, object>
        {
            ["keys"] = new[]
            {
                new Dictionary<string, string>
                {
                    ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = keyId,
                    ["n"] = Base64Url(parameters.Modulus!), ["e"] = Base64Url(parameters.Exponent!),
                },
            },
        };
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "jwks.json"), System.Text.Json.JsonSerializer.Serialize(jwks));
        File.WriteAllText(Path.Combine(directory, "jwt.txt"), Sign(key, keyId, issuer, audience, "trainer"));
        if (count > 0)
        {
            File.WriteAllLines(Path.Combine(directory, "jwts.txt"),
                Enumerable.Range(0, count).Select(i => Sign(key, keyId, issuer, audience, string.Create(CultureInfo.InvariantCulture, $"trainer-{i:D5}"))));
        }
        return 0;
    }

    private static string Sign(System.Security.Cryptography.RSA key, string keyId, string issuer, string audience, string account)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new Dictionary<string, string> { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = keyId };
        var payload = new Dictionary<string, object>
        {
            ["iss"] = issuer, ["aud"] = audience, ["sub"] = "system:serviceaccount:bench:" + account,
            ["iat"] = now, ["nbf"] = now, ["exp"] = now + 7200,
            ["kubernetes.io"] = new Dictionary<string, object>
            {
                ["namespace"] = "bench",
                ["serviceaccount"] = new Dictionary<string, string> { ["name"] = account, ["uid"] = "00000000-0000-4000-8000-000000000001" },
            },
        };
        var signingInput = Base64Url(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(payload));
        var signature = key.SignData(System.Text.Encoding.ASCII.GetBytes(signingInput), System.Security.Cryptography.HashAlgorithmName.SHA256,
            System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>h2load sends a file as the body: the gRPC frame is 1 byte flag (0: uncompressed), 4 bytes big-endian length, the message.</summary>
    public static int WriteRequests(string directory, string mount, int count)
    {
        Directory.CreateDirectory(directory);
        var first = $"{mount}/s000";
        WriteFramed(Path.Combine(directory, "get.grpc"), new GetSecretRequest { Path = first });
        WriteFramed(Path.Combine(directory, "miss.grpc"), new GetSecretRequest { Path = first, BypassCache = true });
        var batch = new BatchGetSecretsRequest();
        batch.Paths.Add(Enumerable.Range(0, count).Select(i => $"{mount}/s{i:000}"));
        WriteFramed(Path.Combine(directory, "batch.grpc"), batch);
        return 0;
    }

    public static async Task<int> VerifyAsync(Uri address, string token, string requestFile, string expectedSource, string responseFile)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new V1.SecretsBroker.SecretsBrokerClient(channel);
        var headers = new Metadata { { "authorization", "Bearer " + token } };
        var expected = expectedSource.ToUpperInvariant() switch
        {
            "L1" => ValueSource.L1,
            "L2" => ValueSource.L2,
            "BACKEND" => ValueSource.Backend,
            _ => throw new ArgumentException("SOURCE must be L1, L2 or BACKEND", nameof(expectedSource)),
        };
        var body = ReadFramed(requestFile);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        IMessage response;
        List<ServingMetadata> serving;
        try
        {
            if (Path.GetFileName(requestFile).StartsWith("batch", StringComparison.Ordinal))
            {
                var batch = await client.BatchGetSecretsAsync(BatchGetSecretsRequest.Parser.ParseFrom(body), headers, deadline);
                var failed = batch.Results.Where(r => r.ResultCase != BatchGetSecretsResult.ResultOneofCase.Secret).ToList();
                if (failed.Count > 0)
                {
                    Console.Error.WriteLine($"FAIL {requestFile}: {failed.Count} items failed, first: {failed[0].Error.Code} {failed[0].Error.Message}");
                    return 1;
                }
                response = batch;
                serving = [.. batch.Results.Select(r => r.Secret.Serving)];
            }
            else
            {
                var single = await client.GetSecretAsync(GetSecretRequest.Parser.ParseFrom(body), headers, deadline);
                response = single;
                serving = [single.Secret.Serving];
            }
        }
        catch (RpcException ex)
        {
            Console.Error.WriteLine($"FAIL {requestFile}: grpc-status {ex.StatusCode} {ex.Status.Detail}");
            return 1;
        }
        var wrong = serving.Where(s => s.Source != expected).ToList();
        if (wrong.Count > 0)
        {
            Console.Error.WriteLine($"FAIL {requestFile}: {wrong.Count} of {serving.Count} secrets came from {wrong[0].Source}, expected {expected}");
            return 1;
        }
        await File.WriteAllBytesAsync(responseFile, response.ToByteArray());
        Console.WriteLine($"ok {Path.GetFileName(requestFile)}: grpc-status OK, {serving.Count} secret(s) from {expected}, response {response.CalculateSize()} bytes");
        return 0;
    }

    /// <summary>Reads every stream entry after <paramref name="afterId"/> and splits them by decision, so failed calls h2load counted as 200 show up.</summary>
    public static async Task<int> CountAuditAsync(string configuration, string stream, string afterId)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(configuration);
        var database = redis.GetDatabase();
        long allowed = 0, other = 0;
        var last = afterId;
        while (true)
        {
            var entries = await database.StreamRangeAsync(stream, minId: "(" + last, count: 5000);
            if (entries.Length == 0)
            {
                break;
            }
            foreach (var field in entries.SelectMany(entry => entry.Values).Where(field => field.Name == AuditStream.EventField))
            {
                var auditEvent = AuditEvent.Parser.ParseFrom((byte[])field.Value!);
                if (auditEvent.Decision == Decision.Allow && auditEvent.GrpcStatus == 0)
                {
                    allowed++;
                }
                else
                {
                    other++;
                }
            }
            last = entries[^1].Id!;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{last} {allowed} {other}"));
        return 0;
    }

    private static void WriteFramed(string file, IMessage message)
    {
        var payload = message.ToByteArray();
        var framed = new byte[5 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(framed.AsSpan(1), payload.Length);
        payload.CopyTo(framed, 5);
        File.WriteAllBytes(file, framed);
    }

    private static byte[] ReadFramed(string file)
    {
        var framed = File.ReadAllBytes(file);
        var length = BinaryPrimitives.ReadInt32BigEndian(framed.AsSpan(1));
        return framed[5..(5 + length)];
    }
}
