using SecretsBroker.VaultEmulator;

var app = VaultEmulatorApp.Build(args);
await app.RunAsync();
