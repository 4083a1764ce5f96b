using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SecretsBroker.VaultEmulator;

namespace SecretsBroker.Broker.Tests.Vault;

/// <summary>The Vault emulator hosted in-process on 127.0.0.1:0 (real HTTP), with direct access to its state and fault switches.</summary>
public sealed class VaultEmulatorHost : IAsyncDisposable
{
    public const string RootToken = "FAKE-root-token";

    private readonly WebApplication _app;

    private VaultEmulatorHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public VaultState State => _app.Services.GetRequiredService<VaultState>();

    public FaultState Faults => _app.Services.GetRequiredService<FaultState>();

    public static async Task<VaultEmulatorHost> StartAsync(string seedJson, TimeProvider? time = null, (string CertFile, string KeyFile)? tls = null)
    {
        string[] args = tls is { } pem
            ? ["--urls", "https://127.0.0.1:0", "--root-token", RootToken, "--tls-cert-file", pem.CertFile, "--tls-key-file", pem.KeyFile]
            : ["--urls", "http://127.0.0.1:0", "--root-token", RootToken];
        var app = VaultEmulatorApp.Build(args, time, JsonNode.Parse(seedJson)!.AsObject());
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new VaultEmulatorHost(app, new Uri(address));
    }

    public void SetFaults(string json) => Faults.Apply(JsonNode.Parse(json)!.AsObject(), State);

    public void ResetFaults() => Faults.Reset(State);

    public int Logins(string method) => State.LoginCounts().GetValueOrDefault(method);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
