using System.Globalization;
using System.Text.RegularExpressions;
using SecretsBroker.Broker.Observability;
using SecretsBroker.Broker.Tests.Infrastructure;

namespace SecretsBroker.Broker.Tests.Observability;

/// <summary>One sample of the Prometheus text format: metric name, labels and value.</summary>
public sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(string label, string value) => Labels.TryGetValue(label, out var actual) && actual == value;
}

/// <summary>The test host's management port: scrapes /metrics and reads HTTP health.</summary>
public static partial class ManagementPort
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public static Uri ManagementAddress(this BrokerHost host) =>
        host.Services.GetRequiredService<ManagementServer>().Addresses.Single();

    public static async Task<string> ScrapeAsync(this BrokerHost host)
    {
        using var response = await Http.GetAsync(new Uri(host.ManagementAddress(), "/metrics"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET /metrics answered {(int)response.StatusCode}: {text}");
        return text;
    }

    public static async Task<(int Status, string Body)> GetAsync(this BrokerHost host, string path)
    {
        using var response = await Http.GetAsync(new Uri(host.ManagementAddress(), path));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Parses the Prometheus text exposition format (comments skipped).</summary>
    public static IReadOnlyList<MetricSample> Parse(string text)
    {
        var samples = new List<MetricSample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a Prometheus sample line: {line}");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
            {
                labels[label.Groups["name"].Value] = Regex.Unescape(label.Groups["value"].Value);
            }
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, CultureInfo.InvariantCulture),
            };
            samples.Add(new MetricSample(match.Groups["name"].Value, labels, value));
        }
        return samples;
    }

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include every pair in <paramref name="labels"/>.</summary>
    public static double Sum(this IEnumerable<MetricSample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Has(l.Label, l.Value))).Sum(s => s.Value);

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})?\s+(?<value>\S+)(\s+\d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""(?<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(\\.|[^"\\])*)",?""")]
    private static partial Regex LabelPair();
}
