using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Compression;

namespace SecretsBroker.Broker.Grpc;

/// <summary>What is wrong with a request body, as the status the caller gets.</summary>
internal sealed record BodyRefusal(StatusCode Status, string Reason);

/// <summary>
/// Reads and checks the one request message of a unary or server-streaming call before Grpc.AspNetCore does, with its
/// framing rules (Grpc.AspNetCore.Server PipeExtensions.ReadSingleMessageAsync / TryReadMessage: a compressed flag of
/// 0 or 1, a 4-byte big-endian length, exactly one message, a grpc-encoding for a compressed one, at most
/// MaxReceiveMessageSize bytes). Grpc.AspNetCore answers such bodies INTERNAL or UNKNOWN and logs them with their stack
/// (at Error for a protobuf parse failure); the broker answers INVALID_ARGUMENT with a reason instead. The message is
/// parsed here once more than a valid call needs: small next to the call itself, and it keeps the library's reader.
/// </summary>
internal static class SingleMessageBody
{
    private const int HeaderSize = 5;

    public const string NoMessage = "the call carries no request message";
    public const string Truncated = "the request message is shorter than its length prefix";
    public const string BadFlag = "the request message has an invalid compressed flag";
    public const string MoreThanOne = "the call carries more than one request message; this method takes exactly one";
    public const string NoEncoding = "the request message is marked compressed but the call has no grpc-encoding";
    public const string Undecompressable = "the request message cannot be decompressed with its grpc-encoding";

    /// <summary>
    /// Null when the body holds exactly one valid message, else why not. A valid body stays unconsumed in the request's
    /// pipe (examined, not consumed), so Grpc.AspNetCore reads the same bytes next without a copy; a refused one is consumed.
    /// </summary>
    public static async Task<BodyRefusal?> ReadAsync(HttpRequest request, MessageParser parser, string messageName,
        int maxMessageBytes, IList<ICompressionProvider> compressionProviders, CancellationToken cancellationToken)
    {
        var reader = request.BodyReader;
        // Enough to see a second header behind a message of the largest allowed size; more is refused unread.
        var limit = (long)maxMessageBytes + 2 * HeaderSize;
        ReadResult result;
        while (true)
        {
            result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled || result.Buffer.Length > limit)
            {
                break;
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
        var buffer = result.Buffer;
        BodyRefusal? refusal = null;
        try
        {
            refusal = Check(buffer, request.Headers["grpc-encoding"], parser, messageName, maxMessageBytes, compressionProviders);
            return refusal;
        }
        finally
        {
            reader.AdvanceTo(refusal is null ? buffer.Start : buffer.End, buffer.End);
        }
    }

    private static BodyRefusal? Check(ReadOnlySequence<byte> buffer, string? encoding, MessageParser parser, string messageName, int maxMessageBytes,
        IList<ICompressionProvider> compressionProviders)
    {
        if (buffer.IsEmpty)
        {
            return Invalid(NoMessage);
        }
        if (buffer.Length < HeaderSize)
        {
            return Invalid(Truncated);
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        if (header[0] > 1)
        {
            return Invalid(BadFlag);
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > maxMessageBytes)
        {
            return TooLarge(maxMessageBytes);
        }
        if (buffer.Length < HeaderSize + length)
        {
            return Invalid(Truncated);
        }
        if (buffer.Length > HeaderSize + length)
        {
            return Invalid(MoreThanOne);
        }
        var payload = buffer.Slice(HeaderSize, length);
        if (header[0] == 1)
        {
            if (string.IsNullOrEmpty(encoding) || encoding == "identity")
            {
                return Invalid(NoEncoding);
            }
            if (compressionProviders.FirstOrDefault(p => p.EncodingName == encoding) is not { } provider)
            {
                // gRPC's compression spec: a message compressed in a way the server does not support is UNIMPLEMENTED.
                // The caller's encoding name is not echoed.
                return new BodyRefusal(StatusCode.Unimplemented,
                    "unsupported grpc-encoding; supported: identity, " + string.Join(", ", compressionProviders.Select(p => p.EncodingName)));
            }
            var (decompressed, refusal) = Decompress(provider, payload, maxMessageBytes);
            if (refusal is not null)
            {
                return refusal;
            }
            payload = new ReadOnlySequence<byte>(decompressed);
        }
        try
        {
            parser.ParseFrom(payload);
            return null;
        }
        catch (InvalidProtocolBufferException)
        {
            return Invalid($"the request is not a valid {messageName}");
        }
    }

    /// <summary>The decompressed message, or why there is none: not valid for the encoding, or larger than the limit.</summary>
    private static (byte[] Message, BodyRefusal? Refusal) Decompress(ICompressionProvider provider, ReadOnlySequence<byte> payload, int maxMessageBytes)
    {
        try
        {
            using var input = new MemoryStream(payload.ToArray(), writable: false);
            using var decompression = provider.CreateDecompressionStream(input);
            using var output = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = decompression.Read(chunk)) > 0)
            {
                if (output.Length + read > maxMessageBytes)
                {
                    return ([], TooLarge(maxMessageBytes));
                }
                output.Write(chunk, 0, read);
            }
            return (output.ToArray(), null);
        }
        catch (InvalidDataException)
        {
            return ([], Invalid(Undecompressable));
        }
    }

    private static BodyRefusal Invalid(string reason) => new(StatusCode.InvalidArgument, reason);

    private static BodyRefusal TooLarge(int maxMessageBytes) =>
        new(StatusCode.ResourceExhausted, $"the request message is larger than {maxMessageBytes} bytes (Broker:MaxRequestBytes)");
}
