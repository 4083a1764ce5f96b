using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SecretsBroker.Benchmarks.Micro;

/// <summary>
/// ShortRun (3 warm-ups, 3 iterations) in process, with allocations: the whole suite fits in a few
/// minutes on the 2-core machine and needs no generated project build.
/// </summary>
public sealed class ShortInProcessConfig : ManualConfig
{
    public ShortInProcessConfig()
    {
        AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
        AddDiagnoser(MemoryDiagnoser.Default);
        Options |= ConfigOptions.DisableLogFile;
    }
}
