using System.Buffers.Binary;

namespace UserOverlay.Dns;

// Ethernet/IPv4/UDP/TCP as the DNS responder reads and writes them: untagged IPv4 frames without options, which is
// what a workload's stack sends to its gateway. Hand-written (a few fixed offsets) because the gateway handler's
// filter runs on the pipeline for every frame to the gateway MAC and must not allocate; the DNS message itself is the
// library's (see DnsAnswerer).

/// <summary>Offsets, checks and builders of the frames the responder takes and sends. Stateless; no allocation.</summary>
internal static class DnsFrames
{
    public const int EthernetHeader = 14, Ipv4Header = 20, UdpHeader = 8, TcpHeader = 20;
    public const int UdpPayloadOffset = EthernetHeader + Ipv4Header + UdpHeader;
    public const byte ProtoTcp = 6, ProtoUdp = 17;
    public const ushort DnsPort = 53;
    private const ushort EtherTypeIPv4 = 0x0800;

    /// <summary>
    /// The filter the handler runs on the pipeline: an IPv4 frame to <paramref name="gateway"/>, UDP or TCP to port 53.
    /// Returns the protocol (<see cref="ProtoUdp"/>, <see cref="ProtoTcp"/>) or 0. Checks only what it reads.
    /// </summary>
    public static byte Classify(ReadOnlySpan<byte> frame, uint gateway)
    {
        if (frame.Length < EthernetHeader + Ipv4Header + UdpHeader) return 0;
        if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != EtherTypeIPv4) return 0;
        var ip = frame[EthernetHeader..];
        if ((ip[0] >> 4) != 4) return 0;
        int ihl = (ip[0] & 0xF) * 4;
        if (ihl < Ipv4Header || ip.Length < ihl + UdpHeader) return 0;
        if (BinaryPrimitives.ReadUInt32BigEndian(ip[16..]) != gateway) return 0;
        byte proto = ip[9];
        if (proto is not (ProtoUdp or ProtoTcp)) return 0;
        if (BinaryPrimitives.ReadUInt16BigEndian(ip[(ihl + 2)..]) != DnsPort) return 0;
        return proto;
    }

    /// <summary>A datagram to the gateway, checked: the client's MAC, address and port, and the DNS payload (borrowed from the frame).</summary>
    public readonly ref struct Datagram(ulong clientMac, uint clientIp, ushort clientPort, ReadOnlySpan<byte> payload)
    {
        public readonly ulong ClientMac = clientMac;
        public readonly uint ClientIp = clientIp;
        public readonly ushort ClientPort = clientPort;
        public readonly ReadOnlySpan<byte> Payload = payload;
    }

    /// <summary>Parses a UDP frame <see cref="Classify"/> accepted. Fails with the drop reason.</summary>
    public static bool TryParseUdp(ReadOnlySpan<byte> frame, out Datagram datagram, out DnsDropReason why)
    {
        datagram = default;
        why = DnsDropReason.MalformedPacket;
        var ip = frame[EthernetHeader..];
        if (ip[0] != 0x45) return false; // options: no stack puts them on a query
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total < Ipv4Header + UdpHeader || total > ip.Length) return false;
        if ((BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0) { why = DnsDropReason.Fragment; return false; }
        if (Fold(Sum(ip[..Ipv4Header])) != 0xFFFF) return false;
        var udp = ip[Ipv4Header..total];
        int udpLength = BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
        if (udpLength < UdpHeader || udpLength > udp.Length) return false;
        // The UDP checksum is not verified: a TAP with offload hands over frames whose checksum the stack left partial.
        ulong mac = ReadMac(frame[6..]);
        datagram = new Datagram(mac, BinaryPrimitives.ReadUInt32BigEndian(ip[12..]), BinaryPrimitives.ReadUInt16BigEndian(udp), udp[UdpHeader..udpLength]);
        return true;
    }

    /// <summary>
    /// Writes a UDP answer from the gateway to the client into <paramref name="frame"/>; the DNS message must already be
    /// at <see cref="UdpPayloadOffset"/>, <paramref name="payloadLength"/> bytes. Returns the frame's length.
    /// </summary>
    public static int WriteUdpReply(Span<byte> frame, ulong gatewayMac, uint gateway, ulong clientMac, uint clientIp, ushort clientPort, int payloadLength)
    {
        WriteEthernet(frame, clientMac, gatewayMac);
        int udpLength = UdpHeader + payloadLength;
        var ip = frame[EthernetHeader..];
        WriteIpv4(ip, gateway, clientIp, ProtoUdp, Ipv4Header + udpLength);
        var udp = ip.Slice(Ipv4Header, udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp, DnsPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], clientPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], 0);
        ushort sum = (ushort)~Fold(Sum(udp, PseudoHeader(gateway, clientIp, ProtoUdp, udpLength)));
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], sum == 0 ? (ushort)0xFFFF : sum);
        return EthernetHeader + Ipv4Header + udpLength;
    }

    /// <summary>
    /// Writes the reset (RFC 9293 §3.10.7.1) that answers a TCP segment <paramref name="segment"/> to the gateway's port
    /// 53: queries over TCP are refused at once rather than left to time out. Returns 0 for a segment that gets none (a
    /// reset itself, or one that does not parse).
    /// </summary>
    public static int WriteTcpReset(ReadOnlySpan<byte> segment, Span<byte> frame, ulong gatewayMac, uint gateway)
    {
        var ip = segment[EthernetHeader..];
        int ihl = (ip[0] & 0xF) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total > ip.Length || total < ihl + TcpHeader) return 0;
        var tcp = ip[ihl..total];
        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < TcpHeader || dataOffset > tcp.Length) return 0;
        byte flags = tcp[13];
        if ((flags & 0x04) != 0) return 0; // RST: never answered
        uint clientIp = BinaryPrimitives.ReadUInt32BigEndian(ip[12..]);
        ushort clientPort = BinaryPrimitives.ReadUInt16BigEndian(tcp);
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), ack = BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]);
        int segLength = tcp.Length - dataOffset + ((flags & 0x02) != 0 ? 1 : 0) + ((flags & 0x01) != 0 ? 1 : 0);

        WriteEthernet(frame, ReadMac(segment[6..]), gatewayMac);
        var rip = frame[EthernetHeader..];
        WriteIpv4(rip, gateway, clientIp, ProtoTcp, Ipv4Header + TcpHeader);
        var r = rip.Slice(Ipv4Header, TcpHeader);
        r.Clear();
        BinaryPrimitives.WriteUInt16BigEndian(r, DnsPort);
        BinaryPrimitives.WriteUInt16BigEndian(r[2..], clientPort);
        if ((flags & 0x10) != 0) // ACK set: <SEQ=SEG.ACK><CTL=RST>
        {
            BinaryPrimitives.WriteUInt32BigEndian(r[4..], ack);
            r[13] = 0x04;
        }
        else // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        {
            BinaryPrimitives.WriteUInt32BigEndian(r[8..], seq + (uint)segLength);
            r[13] = 0x14;
        }
        r[12] = (TcpHeader / 4) << 4;
        BinaryPrimitives.WriteUInt16BigEndian(r[16..], (ushort)~Fold(Sum(r, PseudoHeader(gateway, clientIp, ProtoTcp, TcpHeader))));
        return EthernetHeader + Ipv4Header + TcpHeader;
    }

    /// <summary>
    /// Writes a TCP segment from the gateway's port 53 to the client: <paramref name="optionBytes"/> 4 with an MSS option
    /// of <paramref name="mss"/>, else 0. Returns the frame's length.
    /// </summary>
    public static int WriteTcpSegment(Span<byte> frame, ulong gatewayMac, uint gateway, ulong clientMac, uint clientIp, ushort clientPort,
        uint seq, uint ack, byte flags, ushort window, ushort mss, int optionBytes, ReadOnlySpan<byte> payload)
    {
        WriteEthernet(frame, clientMac, gatewayMac);
        int tcpLength = TcpHeader + optionBytes + payload.Length;
        var ip = frame[EthernetHeader..];
        WriteIpv4(ip, gateway, clientIp, ProtoTcp, Ipv4Header + tcpLength);
        var t = ip.Slice(Ipv4Header, tcpLength);
        t[..(TcpHeader + optionBytes)].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(t, DnsPort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], clientPort);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = (byte)((TcpHeader + optionBytes) / 4 << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], window);
        if (optionBytes == 4)
        {
            t[20] = 2;
            t[21] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(t[22..], mss);
        }
        payload.CopyTo(t[(TcpHeader + optionBytes)..]);
        BinaryPrimitives.WriteUInt16BigEndian(t[16..], (ushort)~Fold(Sum(t, PseudoHeader(gateway, clientIp, ProtoTcp, tcpLength))));
        return EthernetHeader + Ipv4Header + tcpLength;
    }

    private static void WriteEthernet(Span<byte> frame, ulong dst, ulong src)
    {
        WriteMac(frame, dst);
        WriteMac(frame[6..], src);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypeIPv4);
    }

    private static void WriteIpv4(Span<byte> ip, uint src, uint dst, byte proto, int total)
    {
        ip[0] = 0x45;
        ip[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)total);
        BinaryPrimitives.WriteUInt32BigEndian(ip[4..], 0x0000_4000); // id 0, DF
        ip[8] = 64;
        ip[9] = proto;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], src);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], dst);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~Fold(Sum(ip[..Ipv4Header])));
    }

    public static ulong ReadMac(ReadOnlySpan<byte> b) =>
        (ulong)BinaryPrimitives.ReadUInt16BigEndian(b) << 32 | BinaryPrimitives.ReadUInt32BigEndian(b[2..]);

    private static void WriteMac(Span<byte> b, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(b[2..], (uint)mac);
    }

    public static ulong PseudoHeader(uint src, uint dst, byte proto, int length) =>
        (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + (ulong)length;

    /// <summary>The one's-complement sum of 16-bit big-endian words (RFC 1071), not folded.</summary>
    public static ulong Sum(ReadOnlySpan<byte> data, ulong initial = 0)
    {
        ulong sum = initial;
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) sum += (ulong)data[i] << 8;
        return sum;
    }

    public static ushort Fold(ulong sum)
    {
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }
}
