using System.Text;
using SecretsBroker.Broker.Backends.Aws;

namespace SecretsBroker.Broker.Tests.Aws;

/// <summary>
/// The signer against the published AWS SigV4 test suite (aws-sig-v4-test-suite, 2015 edition):
/// credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1,
/// service "service". Each case checks the canonical request, the string to sign and the
/// Authorization header, so a failure says which stage went wrong.
/// </summary>
public sealed class SigV4SignerTests
{
    private const string Host = "example.amazonaws.com";
    private const string AmzDate = "20150830T123600Z";
    private static readonly AwsCredentials Suite = new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    private static readonly DateTimeOffset SuiteTime = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

    private const string SessionToken =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    [Fact]
    public void Get_vanilla_matches_the_published_vector()
    {
        var signature = Sign("GET", "/", [], [], "");

        Assert.Equal("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + SigV4Signer.EmptyPayloadSha256,
            signature.CanonicalRequest);
        Assert.Equal(StringToSign("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"), signature.StringToSign);
        Assert.Equal(Authorization("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"), signature.Authorization);
    }

    [Fact]
    public void Post_vanilla_matches_the_published_vector()
    {
        var signature = Sign("POST", "/", [], [], "");

        Assert.Equal("POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + SigV4Signer.EmptyPayloadSha256,
            signature.CanonicalRequest);
        Assert.Equal(StringToSign("553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"), signature.StringToSign);
        Assert.Equal(Authorization("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"), signature.Authorization);
    }

    [Fact]
    public void Post_x_www_form_urlencoded_matches_the_published_vector_including_the_body_hash()
    {
        var signature = Sign("POST", "/", [], [new("Content-Type", "application/x-www-form-urlencoded")], "Param1=value1");

        Assert.Equal(
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
            "content-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            signature.CanonicalRequest);
        Assert.Equal(StringToSign("42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"), signature.StringToSign);
        Assert.Equal(Authorization("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
            signature.Authorization);
    }

    [Fact]
    public void Get_header_value_trim_trims_values_and_collapses_inner_spaces()
    {
        var signature = Sign("GET", "/", [], [new("My-Header1", " value1"), new("My-Header2", " \"a   b   c\"")], "");

        Assert.Equal(
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n" +
            "host;my-header1;my-header2;x-amz-date\n" + SigV4Signer.EmptyPayloadSha256,
            signature.CanonicalRequest);
        Assert.Equal(StringToSign("a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"), signature.StringToSign);
        Assert.Equal(Authorization("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
            signature.Authorization);
    }

    [Fact]
    public void Get_vanilla_query_order_key_case_sorts_parameters_by_name()
    {
        var signature = Sign("GET", "/", [new("Param2", "value2"), new("Param1", "value1")], [], "");

        Assert.Equal("GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
            SigV4Signer.EmptyPayloadSha256, signature.CanonicalRequest);
        Assert.Equal(StringToSign("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"), signature.StringToSign);
        Assert.Equal(Authorization("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"), signature.Authorization);
    }

    [Fact]
    public void Get_header_key_duplicate_joins_repeated_headers_in_arrival_order()
    {
        var signature = Sign("GET", "/", [], [new("My-Header1", "value2"), new("My-Header1", "value2"), new("My-Header1", "value1")], "");

        Assert.Contains("\nmy-header1:value2,value2,value1\n", signature.CanonicalRequest, StringComparison.Ordinal);
        Assert.Equal(Authorization("host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"), signature.Authorization);
    }

    [Fact]
    public void Get_utf8_encodes_the_path_once_as_utf8()
    {
        var signature = Sign("GET", "/\u1234", [], [], "");

        Assert.StartsWith("GET\n/%E1%88%B4\n", signature.CanonicalRequest, StringComparison.Ordinal);
        Assert.Equal(Authorization("host;x-amz-date", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"), signature.Authorization);
    }

    [Fact]
    public void Post_sts_header_before_signs_the_session_token()
    {
        var credentials = new AwsCredentials(Suite.AccessKeyId, Suite.SecretAccessKey, SessionToken);
        var signature = SigV4Signer.Sign(
            new SigV4Request("POST", "/", [], [new("Host", Host), new("X-Amz-Date", AmzDate), new("X-Amz-Security-Token", SessionToken)],
                SigV4Signer.EmptyPayloadSha256),
            credentials, "us-east-1", "service", SuiteTime);

        Assert.Equal(StringToSign("c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"), signature.StringToSign);
        Assert.Equal(Authorization("host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
            signature.Authorization);
    }

    [Fact]
    public async Task The_signing_handler_signs_a_json_request_the_same_way_as_the_signer()
    {
        // Through SigV4SigningHandler: same inputs as a direct Sign call, so the headers it adds are the ones signed.
        var capture = new CapturingHandler();
        using var handler = new SigV4SigningHandler(new StaticAwsCredentialSource(Suite), "us-east-1", "service", new FixedTime(SuiteTime))
        {
            InnerHandler = capture,
        };
        using var client = new HttpClient(handler);
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://example.amazonaws.com/")
        {
            Content = new ByteArrayContent("{}"u8.ToArray()),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.ListSecrets");
        using var _ = await client.SendAsync(request);

        var expected = SigV4Signer.Sign(new SigV4Request("POST", "/", [],
            [new("content-type", "application/x-amz-json-1.1"), new("host", Host), new("x-amz-date", AmzDate), new("x-amz-target", "secretsmanager.ListSecrets")],
            SigV4Signer.Sha256Hex("{}")), Suite, "us-east-1", "service", SuiteTime);
        Assert.Equal(expected.Authorization, capture.Authorization);
        Assert.Equal(AmzDate, capture.AmzDate);
        Assert.Contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target,", capture.Authorization, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_signing_handler_sends_and_signs_the_session_token_of_temporary_credentials()
    {
        var capture = new CapturingHandler();
        var temporary = new AwsCredentials(Suite.AccessKeyId, Suite.SecretAccessKey, SessionToken);
        using var handler = new SigV4SigningHandler(new StaticAwsCredentialSource(temporary), "us-east-1", "service", new FixedTime(SuiteTime))
        {
            InnerHandler = capture,
        };
        using var client = new HttpClient(handler);
        using var _ = await client.PostAsync(new Uri("https://example.amazonaws.com/"), null);

        // Same request as the suite's post-sts-header-before, so the published signature must come out.
        Assert.Equal(SessionToken, capture.SecurityToken);
        Assert.Equal(Authorization("host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
            capture.Authorization);
    }

    [Fact]
    public void Credentials_never_print_their_keys()
    {
        var credentials = new AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token-value");
        Assert.DoesNotContain("AKIDEXAMPLE", credentials.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("EXAMPLEKEY", credentials.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("token-value", credentials.ToString(), StringComparison.Ordinal);
    }

    private static SigV4Signature Sign(string method, string path, KeyValuePair<string, string>[] query, KeyValuePair<string, string>[] extraHeaders, string body)
    {
        List<KeyValuePair<string, string>> headers = [.. extraHeaders, new("Host", Host), new("X-Amz-Date", AmzDate)];
        return SigV4Signer.Sign(new SigV4Request(method, path, query, headers, SigV4Signer.Sha256Hex(Encoding.UTF8.GetBytes(body))),
            Suite, "us-east-1", "service", SuiteTime);
    }

    private static string StringToSign(string canonicalRequestHash) =>
        $"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{canonicalRequestHash}";

    private static string Authorization(string signedHeaders, string signature) =>
        $"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signedHeaders}, Signature={signature}";

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private sealed class CapturingHandler : HttpMessageHandler
    {
        public string? Authorization { get; private set; }

        public string? AmzDate { get; private set; }

        public string? SecurityToken { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Authorization = request.Headers.GetValues("Authorization").Single();
            AmzDate = request.Headers.GetValues("X-Amz-Date").Single();
            SecurityToken = request.Headers.TryGetValues("X-Amz-Security-Token", out var tokens) ? tokens.Single() : null;
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("{}") });
        }
    }
}
