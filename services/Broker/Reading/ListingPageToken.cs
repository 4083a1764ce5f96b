using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using SecretsBroker.Broker.Core;

namespace SecretsBroker.Broker.Reading;

/// <summary>
/// Opaque ListSecrets page tokens: a backend cursor bound to the listed prefix, so a token cannot be
/// replayed against another prefix. Format: base64url( xxHash64(prefix) | UTF-8 cursor ).
/// </summary>
public static class ListingPageToken
{
    private const int BindingLength = sizeof(ulong);

    public static string Encode(string prefix, string continuation)
    {
        var cursor = Encoding.UTF8.GetBytes(continuation);
        var bytes = new byte[BindingLength + cursor.Length];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, Binding(prefix));
        cursor.CopyTo(bytes.AsSpan(BindingLength));
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Returns the backend cursor inside <paramref name="token"/>; INVALID_ARGUMENT when it is malformed or for another prefix.</summary>
    public static string Decode(string prefix, string token)
    {
        byte[] bytes;
        try
        {
            var base64 = token.Replace('-', '+').Replace('_', '/');
            bytes = Convert.FromBase64String(base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '='));
        }
        catch (FormatException)
        {
            bytes = [];
        }
        if (bytes.Length <= BindingLength)
        {
            BrokerException.ThrowInvalidArgument("page_token is malformed; pass next_page_token from a previous response unchanged");
        }
        if (BinaryPrimitives.ReadUInt64BigEndian(bytes) != Binding(prefix))
        {
            BrokerException.ThrowInvalidArgument("page_token belongs to a listing of another prefix");
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, BindingLength, bytes.Length - BindingLength);
        }
        catch (DecoderFallbackException)
        {
            BrokerException.ThrowInvalidArgument("page_token is malformed; pass next_page_token from a previous response unchanged");
            return null;
        }
    }

    private static ulong Binding(string prefix) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(prefix));
}
