using BenchmarkDotNet.Running;
using SecretsBroker.Benchmarks.Micro;

BenchmarkSwitcher.FromAssembly(typeof(ShortInProcessConfig).Assembly).Run(args, ShortInProcessConfig.Create());
