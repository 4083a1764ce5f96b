using Grpc.Core;
using Microsoft.Extensions.Options;
using SecretsBroker.Broker.Backends;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Tests.Mounts;

public sealed class MountTableTests
{
    [Theory]
    [InlineData("kv/teams/alpha/db", "kv", "teams/alpha/db")]
    [InlineData("aws/prod/ml/postgres", "aws/prod", "ml/postgres")]
    [InlineData("aws/dev/ml/postgres", "aws", "dev/ml/postgres")]
    [InlineData("aws/production/x", "aws", "production/x")]
    [InlineData("kv", "kv", "")]
    public void The_longest_prefix_matching_whole_segments_wins(string path, string mount, string name)
    {
        var table = CreateTable(("kv", "recording"), ("aws", "recording"), ("aws/prod", "recording"));
        var (mounted, resolvedName) = table.Resolve(path);
        Assert.Equal(mount, mounted.Mount.Prefix);
        Assert.Equal(name, resolvedName);
    }

    [Theory]
    [InlineData("kvx/a")]
    [InlineData("other/a")]
    [InlineData("k")]
    public void A_path_without_a_mount_is_not_found(string path)
    {
        var table = CreateTable(("kv", "recording"));
        var error = Assert.Throws<BrokerException>(() => table.Resolve(path));
        Assert.Equal(BrokerErrorKind.NotFound, error.Kind);
    }

    [Fact]
    public void Unknown_types_duplicates_and_bad_prefixes_stop_the_start_with_every_reason()
    {
        var error = Assert.Throws<OptionsValidationException>(() =>
            CreateTable(("kv", "recording"), ("kv", "recording"), ("x", "nope"), ("a//b", "recording")));
        Assert.Contains(error.Failures, f => f.Contains("'kv' is mounted twice"));
        Assert.Contains(error.Failures, f => f.Contains("Type 'nope' is not a known mount type; known types are recording"));
        Assert.Contains(error.Failures, f => f.Contains("Prefix has an empty segment"));
    }

    [Fact]
    public void An_empty_mount_table_stops_the_start()
    {
        var error = Assert.Throws<OptionsValidationException>(() => CreateTable());
        Assert.Contains(error.Failures, f => f.Contains("configure at least one mount"));
    }

    [Fact]
    public void A_backend_that_rejects_its_settings_stops_the_start_with_its_message()
    {
        var error = Assert.Throws<OptionsValidationException>(() => CreateTable(("kv", "local")));
        Assert.Contains(error.Failures, f => f.Contains("'File' is required"));
    }

    private static MountTable CreateTable(params (string Prefix, string Type)[] mounts)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < mounts.Length; i++)
        {
            settings[$"Broker:Mounts:{i}:Prefix"] = mounts[i].Prefix;
            settings[$"Broker:Mounts:{i}:Type"] = mounts[i].Type;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        ISecretBackendFactory[] factories = mounts.Any(m => m.Type == "local")
            ? [new Backends.Local.LocalBackendFactory(new TestHostEnvironment(), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)]
            : [new RecordingBackendFactory()];
        return new MountTable(configuration, factories);
    }

    private sealed class RecordingBackendFactory : ISecretBackendFactory
    {
        public string MountType => "recording";

        public ISecretBackend Create(MountDefinition mount, IConfigurationSection settings) => new RecordingBackend();
    }

    private sealed class RecordingBackend : ISecretReading, ISecretListing
    {
        public Task<SecretValue> GetAsync(string name, VersionSelector selector, CancellationToken cancellationToken) =>
            Task.FromResult(new SecretValue { Version = "1", Data = new Dictionary<string, string> { ["name"] = name } });

        public Task<SecretListingPage> ListAsync(string folder, int pageSize, string? continuation, CancellationToken cancellationToken) =>
            Task.FromResult(new SecretListingPage([], null));
    }

    private sealed class TestHostEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Development";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = Path.GetTempPath();

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }
}
