using Google.Protobuf;
using SecretsBroker.Audit.Contracts;
using SecretsBroker.Audit.Service.Ingestion;
using SecretsBroker.Audit.Tests.Infrastructure;
using SecretsBroker.Audit.V1;
using StackExchange.Redis;

namespace SecretsBroker.Audit.Tests.Ingestion;

/// <summary>What the decoder hands the store: the broker's authenticated bytes when it changed nothing, its own serialization when it did.</summary>
public sealed class StreamEntryDecoderTests
{
    private readonly StreamEntryDecoder _decoder = new(TestEvents.Key, new AuditEventAuthenticator([TestEvents.MacKey]));

    [Fact]
    public void An_event_it_does_not_change_is_stored_as_the_exact_bytes_the_broker_authenticated()
    {
        var auditEvent = TestEvents.Make("alice", "kv/teams/alpha/db");
        // Valid protobuf that a parse-and-serialize round trip would not reproduce: the id written last.
        var sent = IdLast(auditEvent);
        Assert.NotEqual(auditEvent.ToByteArray(), sent);

        var decoded = Assert.Single(_decoder.Decode(new StreamEntry("1-0", TestEvents.Fields(sent))));

        Assert.Equal(auditEvent, decoded.Event!.Event);
        Assert.Equal(sent, decoded.Event.Record);
    }

    [Fact]
    public void An_event_whose_path_it_seals_is_stored_as_its_own_serialization_without_the_path()
    {
        var auditEvent = TestEvents.Make("alice", "kv/teams/alpha/db");
        auditEvent.Path = "kv/teams/alpha/db"; // a broker that did not seal it
        var sent = auditEvent.ToByteArray();

        var decoded = Assert.Single(_decoder.Decode(new StreamEntry("1-0", TestEvents.Fields(sent))));

        Assert.True(decoded.SealedHere);
        Assert.NotEqual(sent, decoded.Event!.Record);
        Assert.Equal("", AuditEvent.Parser.ParseFrom(decoded.Event.Record).Path);
        Assert.Equal(decoded.Event.Event.ToByteArray(), decoded.Event.Record);
    }

    /// <summary>The event's fields, each encoded as usual, with the first (the id, field 1) moved to the end.</summary>
    private static byte[] IdLast(AuditEvent auditEvent)
    {
        var bytes = auditEvent.ToByteArray();
        var fields = new List<byte[]>();
        var input = new CodedInputStream(bytes);
        var start = (int)input.Position;
        while (input.ReadTag() != 0)
        {
            input.SkipLastField();
            fields.Add(bytes[start..(int)input.Position]);
            start = (int)input.Position;
        }
        return [.. fields.Skip(1).Append(fields[0]).SelectMany(field => field)];
    }
}
