using Google.Protobuf.WellKnownTypes;
using Google.Protobuf;
using SecretsBroker.Broker.Caching;
using SecretsBroker.Broker.Core;
using SecretsBroker.Broker.Reading;
using SecretsBroker.Broker.Writing;
using SecretsBroker.V1;

namespace SecretsBroker.Broker.Grpc;

/// <summary>Maps the read path's results to the v1 protobuf messages.</summary>
internal static class ProtoMapping
{
    public static SecretPut ToPut(this PutSecretRequest request) =>
        new(request.Path, request.Data, request.BinaryData.ToByteArray(), request.HasExpectedVersion ? request.ExpectedVersion : null);

    public static PutSecretResponse ToProto(this WrittenSecret written)
    {
        var response = new PutSecretResponse { Path = written.Path, Version = written.Version };
        if (written.CreatedAt is { } created)
        {
            response.CreatedTime = Timestamp.FromDateTimeOffset(created);
        }
        return response;
    }

    public static Secret ToProto(this ServedSecret served)
    {
        var value = served.Value;
        var secret = new Secret
        {
            Path = served.Path,
            Version = value.Version,
            Serving = new ServingMetadata
            {
                Mount = served.Mount.Prefix,
                BackendType = served.Mount.Type,
                Source = served.Source switch
                {
                    ServingSource.L1 => ValueSource.L1,
                    ServingSource.L2 => ValueSource.L2,
                    _ => ValueSource.Backend,
                },
                Age = Duration.FromTimeSpan(served.Age),
                Stale = served.Stale,
            },
        };
        if (value.CreatedAt is { } created)
        {
            secret.CreatedTime = Timestamp.FromDateTimeOffset(created);
        }
        if (value.Data is not null)
        {
            foreach (var (key, field) in value.Data)
            {
                secret.Data[key] = field;
            }
        }
        if (value.Binary is not null)
        {
            secret.BinaryData = ByteString.CopyFrom(value.Binary);
        }
        secret.Stages.Add(value.Stages);
        return secret;
    }

    public static BatchGetSecretsResult ToProto(this BatchItem item) => item.Secret is { } secret
        ? new BatchGetSecretsResult { Path = item.Path, Secret = secret.ToProto() }
        : new BatchGetSecretsResult { Path = item.Path, Error = new ItemError { Code = (int)ErrorStatus.ToStatusCode(item.Error!.Kind), Message = item.Error.Message } };

    public static SecretListing ToProto(this SecretListingEntry entry)
    {
        var listing = new SecretListing { Path = entry.Name, LatestVersion = entry.LatestVersion ?? "" };
        if (entry.UpdatedAt is { } updated)
        {
            listing.UpdatedTime = Timestamp.FromDateTimeOffset(updated);
        }
        return listing;
    }

    /// <summary>The request's version selection and freshness, resolved by the read path inside its audited operation.</summary>
    public static GetSecretSelection ToSelection(this GetSecretRequest request) => new(request);

    public static VersionSelector ToSelector(this GetSecretRequest request) => request.SelectorCase switch
    {
        GetSecretRequest.SelectorOneofCase.Version when request.Version.Length > 0 => new VersionSelector(Version: request.Version),
        GetSecretRequest.SelectorOneofCase.Stage when request.Stage.Length > 0 => new VersionSelector(Stage: request.Stage),
        GetSecretRequest.SelectorOneofCase.None => VersionSelector.Latest,
        _ => throw new BrokerException(BrokerErrorKind.InvalidArgument, "version and stage, when set, must not be empty"),
    };

    public static ReadFreshness ToFreshness(this GetSecretRequest request)
    {
        TimeSpan? maxAge = null;
        if (request.MaxAge is { } duration)
        {
            if (duration.Seconds < 0 || duration.Nanos < 0 || duration.Nanos >= Duration.NanosecondsPerSecond)
            {
                throw new BrokerException(BrokerErrorKind.InvalidArgument, "max_age must be a non-negative duration");
            }
            // The wire format holds any int64, Duration's range ends at MaxSeconds (about 10,000 years); ToTimeSpan throws beyond it.
            if (duration.Seconds > Duration.MaxSeconds)
            {
                throw new BrokerException(BrokerErrorKind.InvalidArgument, $"max_age must be a non-negative duration of at most {Duration.MaxSeconds} seconds");
            }
            if (duration.Seconds > 0 || duration.Nanos > 0)
            {
                maxAge = duration.ToTimeSpan();
            }
        }
        return maxAge is null && !request.BypassCache ? ReadFreshness.Default : new ReadFreshness(maxAge, request.BypassCache);
    }
}

/// <summary>A GetSecretRequest's selection, converted only when the read path resolves it.</summary>
internal readonly struct GetSecretSelection(GetSecretRequest request) : IReadSelection
{
    public (VersionSelector Selector, ReadFreshness Freshness) Resolve() => (request.ToSelector(), request.ToFreshness());
}
