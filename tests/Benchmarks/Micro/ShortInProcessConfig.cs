using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// The default config (console logger, columns, markdown exporters) with one job: ShortRun (3 warm-ups,
/// 3 iterations) in process, with allocations, so the whole suite fits in a few minutes on the 2-core
/// machine and needs no generated project build.
/// </summary>
public static class ShortInProcessConfig
{
    public static IConfig Create() => DefaultConfig.Instance
        .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
        .AddDiagnoser(MemoryDiagnoser.Default)
        .WithOptions(ConfigOptions.DisableLogFile);
}
