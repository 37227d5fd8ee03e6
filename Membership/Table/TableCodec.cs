// The endpoint table's messages, carried as memberlist user messages (UDP gossip, TCP push/pull).
// Our own format (a NetworkDB-like table, not NetworkDB's protobuf wire):
//   user message  = 0xD7 | msgpack array of events
//   push/pull     = 0xD7 | msgpack map {"A": [attachment events], "E": [endpoint events]}
//   attachment    = {"L": ltime, "N": network, "O": node, "X": left?}
//   endpoint      = {"D": deleted?, "I": ip raw (absent if none), "L": ltime, "M": mac, "N": network, "O": owner,
//                    "S": [DNS names] (absent if none; older readers skip it), "V": vtep raw}
// The magic byte keeps the table's messages apart from other users of the same memberlist (serf's
// user messages start with a type byte 0..9).

using System.Net;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

internal static class TableCodec
{
    public const byte Magic = 0xD7;

    /// <summary>Most DNS names an endpoint record may carry (a record with more is refused as invalid).</summary>
    public const int MaxNames = 64;

    public static void WriteAttachment(MsgPackWriter w, NetworkAttachment a)
    {
        w.WriteMapHeader(4);
        w.WriteKey("L"); w.WriteUInt(a.LamportTime);
        w.WriteKey("N"); w.WriteString(a.NetworkId);
        w.WriteKey("O"); w.WriteString(a.Node);
        w.WriteKey("X"); w.WriteBool(a.Left);
    }

    public static void WriteEndpoint(MsgPackWriter w, EndpointRecord e)
    {
        bool names = e.Names is { Count: > 0 };
        w.WriteMapHeader((e.Ip is null ? 6 : 7) + (names ? 1 : 0));
        w.WriteKey("D"); w.WriteBool(e.Deleted);
        if (e.Ip is not null) { w.WriteKey("I"); w.WriteRaw(Memberlist.AddressBytes(e.Ip)); }
        w.WriteKey("L"); w.WriteUInt(e.LamportTime);
        w.WriteKey("M"); w.WriteUInt(e.Mac);
        w.WriteKey("N"); w.WriteString(e.NetworkId);
        w.WriteKey("O"); w.WriteString(e.OwnerNode);
        if (names)
        {
            w.WriteKey("S");
            w.WriteArrayHeader(e.Names!.Count);
            foreach (string n in e.Names!) w.WriteString(n);
        }
        w.WriteKey("V"); w.WriteRaw(Memberlist.AddressBytes(e.Vtep));
    }

    /// <summary>One event, tagged: 'A' attachment or 'E' endpoint, as a 2-element array [tag, map].</summary>
    public static byte[] EncodeEvent(TableEvent ev)
    {
        var w = new MsgPackWriter(96);
        WriteTagged(w, ev);
        return w.ToArray();
    }

    private static void WriteTagged(MsgPackWriter w, TableEvent ev)
    {
        w.WriteArrayHeader(2);
        if (ev.Attachment is { } a) { w.WriteString("A"); WriteAttachment(w, a); }
        else if (ev.Endpoint is { } e) { w.WriteString("E"); WriteEndpoint(w, e); }
        else throw new ArgumentException("unknown table event", nameof(ev));
    }

    /// <summary>A user message carrying already-encoded events (each from <see cref="EncodeEvent"/>).</summary>
    public static byte[] EncodeBatch(IReadOnlyList<byte[]> encodedEvents)
    {
        var w = new MsgPackWriter(16 + encodedEvents.Sum(e => e.Length));
        w.WriteByte(Magic);
        w.WriteArrayHeader(encodedEvents.Count);
        foreach (var e in encodedEvents) w.WriteRawBytes(e);
        return w.ToArray();
    }

    /// <summary>Bytes a batch adds around its events.</summary>
    public const int BatchOverhead = 1 + 5;

    public static byte[] EncodeState(IReadOnlyList<NetworkAttachment> attachments, IReadOnlyList<EndpointRecord> endpoints)
    {
        var w = new MsgPackWriter(64 + attachments.Count * 40 + endpoints.Count * 80);
        w.WriteByte(Magic);
        w.WriteMapHeader(2);
        w.WriteKey("A");
        w.WriteArrayHeader(attachments.Count);
        foreach (var a in attachments) WriteAttachment(w, a);
        w.WriteKey("E");
        w.WriteArrayHeader(endpoints.Count);
        foreach (var e in endpoints) WriteEndpoint(w, e);
        return w.ToArray();
    }

    public static NetworkAttachment ReadAttachment(ref MsgPackReader r)
    {
        ulong lt = 0; string net = "", node = ""; bool left = false;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "L": lt = r.ReadUInt64(); break;
                case "N": net = r.ReadString(); break;
                case "O": node = r.ReadString(); break;
                case "X": left = r.ReadBool(); break;
                default: r.Skip(); break;
            }
        }
        if (net.Length == 0 || node.Length == 0) throw new MsgPackException("table: attachment without network or node");
        return new NetworkAttachment(node, net, lt, left);
    }

    public static EndpointRecord ReadEndpoint(ref MsgPackReader r)
    {
        ulong lt = 0, mac = 0; string net = "", owner = ""; bool deleted = false; byte[]? ip = null, vtep = null;
        List<string>? names = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "D": deleted = r.ReadBool(); break;
                case "I": ip = r.ReadBytes(); break;
                case "L": lt = r.ReadUInt64(); break;
                case "M": mac = r.ReadUInt64(); break;
                case "N": net = r.ReadString(); break;
                case "O": owner = r.ReadString(); break;
                case "S":
                    int count = r.ReadArrayHeader();
                    if (count > MaxNames) throw new MsgPackException("table: too many names on an endpoint");
                    names = new List<string>(count);
                    for (int j = 0; j < count; j++)
                    {
                        string name = r.ReadString();
                        if (name.Length is 0 or > 253) throw new MsgPackException("table: a name that is no DNS name");
                        names.Add(name);
                    }
                    break;
                case "V": vtep = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        if (net.Length == 0 || owner.Length == 0 || vtep is not { Length: 4 or 16 } || mac > 0xFFFF_FFFF_FFFF || (ip is not null && ip.Length is not (4 or 16)))
            throw new MsgPackException("table: invalid endpoint record");
        return new EndpointRecord(net, mac, ip is null ? null : new IPAddress(ip), new IPAddress(vtep), owner, lt, deleted, names);
    }

    /// <summary>Decodes a gossip batch (after the magic byte) into events, in order; events of an unknown tag are skipped.</summary>
    public static List<TableEvent> DecodeBatch(ReadOnlySpan<byte> body)
    {
        var r = new MsgPackReader(body);
        int n = r.ReadArrayHeader();
        var list = new List<TableEvent>(n);
        for (int i = 0; i < n; i++)
        {
            if (r.ReadArrayHeader() != 2) throw new MsgPackException("table: bad event");
            string tag = r.ReadString();
            if (tag == "A") list.Add(ReadAttachment(ref r));
            else if (tag == "E") list.Add(ReadEndpoint(ref r));
            else r.Skip();
        }
        return list;
    }

    public static (List<NetworkAttachment>, List<EndpointRecord>) DecodeState(ReadOnlySpan<byte> body)
    {
        var r = new MsgPackReader(body);
        var atts = new List<NetworkAttachment>();
        var eps = new List<EndpointRecord>();
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "A":
                    int na = r.ReadArrayHeader();
                    for (int j = 0; j < na; j++) atts.Add(ReadAttachment(ref r));
                    break;
                case "E":
                    int ne = r.ReadArrayHeader();
                    for (int j = 0; j < ne; j++) eps.Add(ReadEndpoint(ref r));
                    break;
                default: r.Skip(); break;
            }
        }
        return (atts, eps);
    }
}
