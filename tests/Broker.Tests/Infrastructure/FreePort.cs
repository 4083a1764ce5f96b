using System.Net;
using System.Net.Sockets;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>Loopback ports for external processes that cannot be told to listen on port 0.</summary>
public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until something accepts TCP connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static Task WaitUntilListeningAsync(int port, TimeSpan? timeout = null) => Eventually.WaitUntilAsync(async () =>
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }, timeout ?? TimeSpan.FromSeconds(60), $"port {port} to accept connections");
}
