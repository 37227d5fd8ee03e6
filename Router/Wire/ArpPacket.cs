using System.Buffers.Binary;

namespace UserOverlay.Router.Wire;

/// <summary>
/// ARP for IPv4 over Ethernet (RFC 826), as the 28 bytes behind an Ethernet header. Offsets are
/// relative to the ARP payload. <see cref="TryParse"/> checks length and the fixed fields once.
/// </summary>
internal readonly ref struct ArpPacket
{
    public const ushort OpRequest = 1, OpReply = 2;
    private const int HTypeOffset = 0, PTypeOffset = 2, HLenOffset = 4, PLenOffset = 5, OpOffset = 6,
        ShaOffset = 8, SpaOffset = 14, ThaOffset = 18, TpaOffset = 24;

    private readonly ReadOnlySpan<byte> _b;
    private ArpPacket(ReadOnlySpan<byte> b) => _b = b;

    /// <summary>Parses the ARP payload of an Ethernet frame whose EtherType is ARP.</summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, out ArpPacket arp)
    {
        arp = default;
        if (payload.Length < Constants.ArpIpv4Length) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(payload[HTypeOffset..]) != 1
            || BinaryPrimitives.ReadUInt16BigEndian(payload[PTypeOffset..]) != EthernetFrame.EtherTypeIPv4
            || payload[HLenOffset] != 6 || payload[PLenOffset] != 4)
            return false;
        arp = new ArpPacket(payload);
        return true;
    }

    public ushort Operation => BinaryPrimitives.ReadUInt16BigEndian(_b[OpOffset..]);
    public ulong SenderMac => EthernetFrame.ReadMac(_b[ShaOffset..]);
    public uint SenderIp => BinaryPrimitives.ReadUInt32BigEndian(_b[SpaOffset..]);
    public ulong TargetMac => EthernetFrame.ReadMac(_b[ThaOffset..]);
    public uint TargetIp => BinaryPrimitives.ReadUInt32BigEndian(_b[TpaOffset..]);

    /// <summary>
    /// Writes a complete Ethernet+ARP reply into <paramref name="frame"/> (≥ 42 bytes): "<paramref name="ip"/>
    /// is at <paramref name="mac"/>", addressed to the requester. Returns the frame length (42).
    /// </summary>
    public static int WriteReply(Span<byte> frame, ulong mac, uint ip, ulong requesterMac, uint requesterIp)
    {
        EthernetFrame.WriteMac(frame, requesterMac);
        EthernetFrame.WriteMac(frame[EthernetFrame.SourceOffset..], mac);
        BinaryPrimitives.WriteUInt16BigEndian(frame[EthernetFrame.EtherTypeOffset..], EthernetFrame.EtherTypeArp);
        Span<byte> a = frame[Constants.EthernetHeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(a[HTypeOffset..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[PTypeOffset..], EthernetFrame.EtherTypeIPv4);
        a[HLenOffset] = 6;
        a[PLenOffset] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[OpOffset..], OpReply);
        EthernetFrame.WriteMac(a[ShaOffset..], mac);
        BinaryPrimitives.WriteUInt32BigEndian(a[SpaOffset..], ip);
        EthernetFrame.WriteMac(a[ThaOffset..], requesterMac);
        BinaryPrimitives.WriteUInt32BigEndian(a[TpaOffset..], requesterIp);
        return Constants.EthernetHeaderLength + Constants.ArpIpv4Length;
    }
}
