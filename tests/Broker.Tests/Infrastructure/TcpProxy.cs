using System.Net;
using System.Net.Sockets;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy standing in for a load balancer: it forwards each connection to <see cref="Target"/>,
/// which can be switched to another replica, and <see cref="DropAll"/> cuts every open connection. It can also
/// open a port reserved earlier (<see cref="FreePort.Reserve"/>), so an address that refused connections starts to answer.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accepting;

    /// <summary>A proxy on a new loopback port, or on <paramref name="reserved"/> (which it then owns).</summary>
    public TcpProxy(Uri target, ReservedPort? reserved = null)
    {
        Target = target;
        if (reserved is null)
        {
            _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
        }
        else
        {
            _listener = reserved.Listen();
        }
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}");
        _accepting = AcceptAsync();
    }

    public Uri Address { get; }

    public Uri Target { get; set; }

    public void DropAll()
    {
        lock (_open)
        {
            foreach (var client in _open)
            {
                // A connection that ended by itself is disposed already (its socket is null then).
                client.Client?.Close(0);
                client.Dispose();
            }
            _open.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = new TcpClient { Client = await _listener.AcceptAsync(_stop.Token) };
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = ForwardAsync(inbound);
        }
    }

    private async Task ForwardAsync(TcpClient inbound)
    {
        var outbound = new TcpClient();
        lock (_open)
        {
            _open.Add(inbound);
            _open.Add(outbound);
        }
        try
        {
            await outbound.ConnectAsync(Target.Host, Target.Port, _stop.Token);
            var a = inbound.GetStream();
            var b = outbound.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // Dropped.
        }
        finally
        {
            lock (_open)
            {
                _open.Remove(inbound);
                _open.Remove(outbound);
            }
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        DropAll();
        await _accepting;
        _stop.Dispose();
    }
}
