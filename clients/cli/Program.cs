using SecretsBroker.Cli;

return await BrokerCtl.InvokeAsync(args).ConfigureAwait(false);
