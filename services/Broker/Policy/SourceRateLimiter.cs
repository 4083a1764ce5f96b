using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Grpc.AspNetCore.Server;
using Microsoft.Extensions.Options;

namespace SecretsBroker.Broker.Policy;

/// <summary>
/// Token buckets per source address (<c>Broker:RateLimits:Source</c>), for ASP.NET Core's rate limiting middleware, which
/// runs before authentication: a flood of bad credentials from one address costs one bucket, not a token validation and an
/// audit event per call. IPv4 addresses count one by one, IPv6 addresses by prefix. Partitions are value keys (no string
/// per call), and the partitioned limiter drops a source's bucket once it has been full for ten seconds, so memory follows
/// the sources active in the last seconds, not every source ever seen. gRPC health checks are not limited: a flood from a
/// node's address must not fail the kubelet's probes.
/// </summary>
public sealed class SourceRateLimiter : IDisposable
{
    private const string HealthService = "grpc.health.v1.Health";

    private long _rejections;

    public SourceRateLimiter(IOptions<RateLimitOptions> options)
    {
        var all = options.Value;
        var source = all.Source;
        var enabled = all.Enabled && source.Enabled;
        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = source.TokenLimit,
            TokensPerPeriod = source.TokensPerPeriod,
            ReplenishmentPeriod = source.ReplenishmentPeriod,
            QueueLimit = 0,
            AutoReplenishment = true,
        };
        ReplenishmentPeriod = source.ReplenishmentPeriod;
        // One factory for every partition, not a new delegate per call.
        Func<(bool, UInt128), TokenBucketRateLimiterOptions> bucketFor = _ => bucket;
        Limiter = PartitionedRateLimiter.Create<HttpContext, (bool Limited, UInt128 Source)>(context =>
            enabled && context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.ServiceName != HealthService
                ? RateLimitPartition.GetTokenBucketLimiter((true, PartitionKey(context.Connection.RemoteIpAddress, source.Ipv6PrefixLength)), bucketFor)
                : RateLimitPartition.GetNoLimiter((false, UInt128.Zero)));
    }

    /// <summary>The limiter ASP.NET Core's middleware asks (RateLimiterOptions.GlobalLimiter).</summary>
    public PartitionedRateLimiter<HttpContext> Limiter { get; }

    /// <summary>The wait to suggest when a lease carries no retry-after.</summary>
    public TimeSpan ReplenishmentPeriod { get; }

    /// <summary>Calls refused since start.</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

    public void CountRejection() => Interlocked.Increment(ref _rejections);

    /// <summary>An IPv4 address (or an IPv4-mapped IPv6 one) as its IPv4-mapped value; an IPv6 address cut to its prefix.</summary>
    public static UInt128 PartitionKey(IPAddress? address, int ipv6PrefixLength)
    {
        if (address is null)
        {
            return UInt128.Zero;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            bytes.Clear();
            bytes[10] = 0xFF;
            bytes[11] = 0xFF;
            address.TryWriteBytes(bytes[12..], out _);
            return BinaryPrimitives.ReadUInt128BigEndian(bytes);
        }
        address.TryWriteBytes(bytes, out _);
        var mask = ipv6PrefixLength >= 128 ? UInt128.MaxValue : ~(UInt128.MaxValue >> ipv6PrefixLength);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes) & mask;
    }

    public void Dispose() => Limiter.Dispose();
}
