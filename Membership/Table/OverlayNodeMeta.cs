using System.Net;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

/// <summary>
/// What a peer needs to send us overlay traffic, carried in our memberlist node meta: the VTEP
/// address and the VXLAN data port. Encoding: <c>'U' 'O' 0x01</c> then a msgpack map
/// <c>{"dp": port, "vtep": raw IP}</c> (28 bytes for IPv4; meta allows 512).
/// </summary>
/// <param name="VtepAddress">Underlay address VXLAN datagrams for this node go to.</param>
/// <param name="DataPort">UDP port of the VXLAN data path (4789 by default).</param>
public sealed record OverlayNodeMeta(IPAddress VtepAddress, int DataPort)
{
    private static ReadOnlySpan<byte> Magic => "UO\u0001"u8;

    /// <summary>Encodes into <paramref name="destination"/>; returns the length.</summary>
    public int WriteTo(Span<byte> destination)
    {
        var w = new MsgPackWriter(64);
        w.WriteRawBytes(Magic);
        w.WriteMapHeader(2);
        w.WriteKey("dp"); w.WriteUInt((ulong)DataPort);
        w.WriteKey("vtep"); w.WriteRaw(Memberlist.AddressBytes(VtepAddress));
        w.WrittenSpan.CopyTo(destination);
        return w.Length;
    }

    /// <summary>Encodes to a new array.</summary>
    public byte[] ToBytes()
    {
        Span<byte> b = stackalloc byte[64];
        return b[..WriteTo(b)].ToArray();
    }

    /// <summary>Decodes meta written by <see cref="WriteTo"/>; false for anything else (e.g. a serf node's tags).</summary>
    public static bool TryParse(ReadOnlySpan<byte> meta, out OverlayNodeMeta? value)
    {
        value = null;
        if (!meta.StartsWith(Magic)) return false;
        try
        {
            var r = new MsgPackReader(meta[Magic.Length..]);
            int n = r.ReadMapHeader();
            int port = 0;
            byte[]? vtep = null;
            for (int i = 0; i < n; i++)
            {
                switch (r.ReadString())
                {
                    case "dp": port = r.ReadUInt16(); break;
                    case "vtep": vtep = r.ReadBytes(); break;
                    default: r.Skip(); break;
                }
            }
            if (vtep is not { Length: 4 or 16 }) return false;
            value = new OverlayNodeMeta(new IPAddress(vtep), port);
            return true;
        }
        catch (MsgPackException)
        {
            return false;
        }
    }
}
