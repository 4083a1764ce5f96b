using Grpc.Core;
using SecretsBroker.V1;

namespace SecretsBroker.Benchmarks.Baseline;

/// <summary>The broker's response messages for the benchmark, read once at start (<c>Baseline:GetSecretResponse</c>, <c>Baseline:BatchResponse</c>).</summary>
internal sealed record FixedAnswers(GetSecretResponse GetSecret, BatchGetSecretsResponse Batch)
{
    public static FixedAnswers Load(IConfiguration configuration) => new(
        GetSecretResponse.Parser.ParseFrom(File.ReadAllBytes(Required(configuration, "Baseline:GetSecretResponse"))),
        BatchGetSecretsResponse.Parser.ParseFrom(File.ReadAllBytes(Required(configuration, "Baseline:BatchResponse"))));

    private static string Required(IConfiguration configuration, string key) =>
        configuration[key] ?? throw new InvalidOperationException($"{key} must name a file with a serialized response");
}

/// <summary>Answers every call with the same message: the cost of gRPC on Kestrel and nothing else.</summary>
internal sealed class FixedAnswerService(FixedAnswers answers) : V1.SecretsBroker.SecretsBrokerBase
{
    public override Task<GetSecretResponse> GetSecret(GetSecretRequest request, ServerCallContext context) => Task.FromResult(answers.GetSecret);

    public override Task<BatchGetSecretsResponse> BatchGetSecrets(BatchGetSecretsRequest request, ServerCallContext context) => Task.FromResult(answers.Batch);
}
