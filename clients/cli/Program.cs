using SecretsBroker.Cli;

return await BrokerCtl.BuildRootCommand().Parse(args).InvokeAsync().ConfigureAwait(false);
