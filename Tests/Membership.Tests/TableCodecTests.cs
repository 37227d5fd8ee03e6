using System.Net;
using UserOverlay.Membership.Table;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Tests;

/// <summary>The endpoint table's gossip batches: typed events in, the same typed events out.</summary>
public class TableCodecTests
{
    private static readonly NetworkAttachment Attachment = new("node-a", "net1", 7, Left: false);
    private static readonly EndpointRecord WithIp = new("net1", 0x02_42_c0_00_02_0a, IPAddress.Parse("198.18.0.10"), IPAddress.Parse("192.0.2.1"), "node-a", 8);
    private static readonly EndpointRecord Tombstone = new("net1", 0x02_42_c0_00_02_0b, null, IPAddress.Parse("2001:db8::1"), "node-b", 9, Deleted: true);

    [Fact]
    public void Batch_RoundTripsAttachmentsAndRecords_InOrder()
    {
        byte[] msg = TableCodec.EncodeBatch([TableCodec.EncodeEvent(WithIp), TableCodec.EncodeEvent(Attachment), TableCodec.EncodeEvent(Tombstone)]);

        Assert.Equal(TableCodec.Magic, msg[0]);
        var events = TableCodec.DecodeBatch(msg.AsSpan(1));
        Assert.Equal(3, events.Count);
        Assert.Equal(WithIp, events[0].Endpoint);
        Assert.Null(events[0].Attachment);
        Assert.Equal(Attachment, events[1].Attachment);
        Assert.Null(events[1].Endpoint);
        Assert.Equal(Tombstone, events[2].Endpoint);
        Assert.Null(events[2].Attachment);
    }

    [Fact]
    public void Batch_SkipsEventsOfUnknownTag()
    {
        var w = new MsgPackWriter();
        w.WriteArrayHeader(2);
        w.WriteString("Z"); // a tag from a newer version
        w.WriteMapHeader(1);
        w.WriteKey("Q"); w.WriteUInt(1);
        byte[] unknown = w.ToArray();

        byte[] msg = TableCodec.EncodeBatch([unknown, TableCodec.EncodeEvent(Attachment)]);

        var ev = Assert.Single(TableCodec.DecodeBatch(msg.AsSpan(1)));
        Assert.Equal(Attachment, ev.Attachment);
    }

    [Fact]
    public void EmptyEvent_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => TableCodec.EncodeEvent(default));
    }
}
