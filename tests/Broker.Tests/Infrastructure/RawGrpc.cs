using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Google.Protobuf;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// gRPC calls as raw HTTP/2 requests (prior knowledge, plaintext) with hand-built framing, for what a generated client
/// cannot send: misspelled method names, broken length prefixes, compressed flags, extra messages. Optionally from
/// another loopback address (127.0.0.2 ...), which the broker sees as another source.
/// </summary>
public static class RawGrpc
{
    /// <summary>One gRPC message frame: compressed flag, big-endian length, payload (gRPC over HTTP/2, "Length-Prefixed-Message").</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload, byte compressedFlag = 0, uint? declaredLength = null)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = compressedFlag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), declaredLength ?? (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(5));
        return frame;
    }

    public static byte[] Frame(IMessage message) => Frame(message.ToByteArray());

    public static HttpClient CreateClient(IPAddress? localAddress = null) => new(new SocketsHttpHandler
    {
        ConnectCallback = localAddress is null ? null : async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(localAddress, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    });

    public static async Task<Answer> CallAsync(HttpClient http, Uri address, string path, byte[] body, string? token,
        IReadOnlyDictionary<string, string>? headers = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(address, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        message.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }
        if (token is not null)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        using var response = await http.SendAsync(message);
        var responseBody = await response.Content.ReadAsByteArrayAsync();
        var messages = new List<byte[]>();
        for (var offset = 0; offset + 5 <= responseBody.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(responseBody.AsSpan(offset + 1, 4));
            messages.Add(responseBody[(offset + 5)..(offset + 5 + length)]);
            offset += 5 + length;
        }
        // A call that fails before any message may answer "trailers-only": the status then comes in the headers.
        string Header(string name) => response.TrailingHeaders.TryGetValues(name, out var trailer) ? trailer.Single()
            : response.Headers.TryGetValues(name, out var header) ? header.Single() : "";
        return new Answer(response.StatusCode, int.Parse(Header("grpc-status"), System.Globalization.CultureInfo.InvariantCulture),
            Uri.UnescapeDataString(Header("grpc-message")), messages);
    }

    public sealed record Answer(HttpStatusCode HttpStatus, int GrpcStatus, string GrpcMessage, IReadOnlyList<byte[]> Messages);
}
