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
    public void Names_travel_with_the_record_and_a_record_without_them_has_none()
    {
        var named = WithIp with { Names = ["web", "www.blue"] };
        byte[] msg = TableCodec.EncodeBatch([TableCodec.EncodeEvent(named), TableCodec.EncodeEvent(WithIp)]);
        var events = TableCodec.DecodeBatch(msg.AsSpan(1));
        Assert.Equal(["web", "www.blue"], events[0].Endpoint!.Names!);
        Assert.True(EndpointRecord.SameNames(named, events[0].Endpoint!));
        Assert.Null(events[1].Endpoint!.Names);
        Assert.False(EndpointRecord.SameNames(named, events[1].Endpoint!));
        var (_, state) = TableCodec.DecodeState(TableCodec.EncodeState([], [named]).AsSpan(1));
        Assert.Equal(["web", "www.blue"], state.Single().Names!);
    }

    [Fact]
    public void A_record_with_too_many_or_empty_names_is_refused()
    {
        var many = WithIp with { Names = [.. Enumerable.Range(0, TableCodec.MaxNames + 1).Select(i => $"n{i}")] };
        Assert.Throws<MsgPackException>(() => TableCodec.DecodeBatch(TableCodec.EncodeBatch([TableCodec.EncodeEvent(many)]).AsSpan(1)));
        var empty = WithIp with { Names = [""] };
        Assert.Throws<MsgPackException>(() => TableCodec.DecodeBatch(TableCodec.EncodeBatch([TableCodec.EncodeEvent(empty)]).AsSpan(1)));
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
