using System.Net;
using System.Net.Sockets;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// Loopback ports for the few cases where a child cannot bind port 0 and report its port. Children that
/// can (Kestrel: <c>--urls http://127.0.0.1:0</c>, moto, the Vault emulator) do so instead; see
/// <see cref="ExternalProcess.WaitForListeningAddressAsync"/>.
/// </summary>
public static class FreePort
{
    /// <summary>
    /// A port that was free a moment ago, for redis-server, which cannot listen on port 0. Another process
    /// may take it before the child binds it: the caller must start the child again on a new candidate when
    /// the bind fails (<see cref="RedisServer"/> does).
    /// </summary>
    public static int Candidate()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// A port where nothing listens and nothing else can start listening until the reservation is disposed:
    /// a socket bound to it without listening, so connections to it are refused (an unreachable endpoint).
    /// </summary>
    public static ReservedPort Reserve()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new ReservedPort(socket);
    }
}

/// <summary>A bound, not listening loopback port (see <see cref="FreePort.Reserve"/>); <see cref="Listen"/> turns it into a listener.</summary>
public sealed class ReservedPort(Socket socket) : IDisposable
{
    public int Port { get; } = ((IPEndPoint)socket.LocalEndPoint!).Port;

    public Uri Url => new($"http://127.0.0.1:{Port}/");

    /// <summary>Starts listening on the reserved port (no other process could take it meanwhile) and hands the socket over.</summary>
    public Socket Listen()
    {
        socket.Listen();
        return socket;
    }

    public void Dispose() => socket.Dispose();
}
