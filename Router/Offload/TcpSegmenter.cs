using System.Buffers.Binary;

namespace UserOverlay.Router.Offload;

/// <summary>
/// Cuts a TCP super-frame read from an offload-capable TAP (TSO: one Ethernet + IP + TCP header and
/// up to 64 KB of payload) into wire-sized frames, as the kernel's tcp_gso_segment does: each
/// segment gets a copy of the headers with its own IP total length (payload length for IPv6), IPv4
/// identification (+1 per segment) and header checksum, TCP sequence number, TCP checksum computed
/// in full; FIN and PSH only on the last segment, CWR only on the first. Also completes a partial
/// checksum (virtio NEEDS_CSUM) of a plain frame. Stateless, allocation-free, thread-safe.
/// </summary>
internal static class TcpSegmenter
{
    private const byte TcpFin = 0x01, TcpPsh = 0x08, TcpCwr = 0x80;

    /// <summary>Outcome of <see cref="TryParse"/>.</summary>
    public readonly record struct Layout(int EthLength, int IpLength, int TcpLength, bool IsIPv6)
    {
        public int HeaderLength => EthLength + IpLength + TcpLength;
    }

    /// <summary>Locates the headers of a TCP super-frame; false when it is not one we can segment.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, GsoKind gso, out Layout layout)
    {
        layout = default;
        int eth = Constants.EthernetHeaderLength;
        if (frame.Length < eth + 20) return false;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (type == 0x8100) { eth += 4; type = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]); }
        int ipLen;
        if (gso == GsoKind.TcpV4)
        {
            if (type != 0x0800 || frame.Length < eth + 20 || (frame[eth] >> 4) != 4) return false;
            ipLen = (frame[eth] & 0x0F) * 4;
            if (ipLen < 20 || frame[eth + 9] != 6) return false;
        }
        else if (gso == GsoKind.TcpV6)
        {
            if (type != 0x86DD || frame.Length < eth + 40 || (frame[eth] >> 4) != 6 || frame[eth + 6] != 6) return false; // no extension headers
            ipLen = 40;
        }
        else return false;
        if (frame.Length < eth + ipLen + 20) return false;
        int tcpLen = (frame[eth + ipLen + 12] >> 4) * 4;
        if (tcpLen < 20 || frame.Length < eth + ipLen + tcpLen) return false;
        layout = new Layout(eth, ipLen, tcpLen, gso == GsoKind.TcpV6);
        return true;
    }

    /// <summary>Number of segments a super-frame becomes.</summary>
    public static int SegmentCount(int frameLength, in Layout l, int mss) =>
        mss <= 0 ? 0 : Math.Max(1, (frameLength - l.HeaderLength + mss - 1) / mss);

    /// <summary>
    /// Writes segment <paramref name="index"/> of <paramref name="superFrame"/> into <paramref name="destination"/>
    /// and returns its length. The destination must hold headers + <paramref name="mss"/> bytes.
    /// </summary>
    public static int WriteSegment(ReadOnlySpan<byte> superFrame, in Layout l, int mss, int index, Span<byte> destination)
    {
        int hdr = l.HeaderLength;
        int payloadTotal = superFrame.Length - hdr;
        int start = index * mss;
        int chunk = Math.Min(mss, payloadTotal - start);
        bool last = start + chunk >= payloadTotal;
        superFrame[..hdr].CopyTo(destination);
        superFrame.Slice(hdr + start, chunk).CopyTo(destination[hdr..]);
        Span<byte> ip = destination[l.EthLength..];
        Span<byte> tcp = destination[(l.EthLength + l.IpLength)..];
        int l4Length = l.TcpLength + chunk;

        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq + (uint)start);
        byte flags = tcp[13];
        if (!last) flags &= unchecked((byte)~(TcpFin | TcpPsh));
        if (index > 0) flags &= unchecked((byte)~TcpCwr);
        tcp[13] = flags;

        if (!l.IsIPv6)
        {
            ushort id = BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(id + index));
        }
        ulong pseudo = SetIpLength(ip, l, l4Length);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], 0);
        ushort csum = Checksum.Complement(Checksum.Sum(tcp[..l4Length], pseudo));
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], csum);
        return hdr + chunk;
    }

    /// <summary>
    /// Sets the IP header's length for an L4 segment of <paramref name="l4Length"/> bytes (IPv4 total length and
    /// header checksum, or IPv6 payload length) and returns the pseudo-header sum for <paramref name="protocol"/>
    /// (TCP unless said).
    /// </summary>
    public static ulong SetIpLength(Span<byte> ip, in Layout l, int l4Length, byte protocol = 6)
    {
        if (l.IsIPv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)l4Length);
            return Checksum.PseudoHeaderV6(ip.Slice(8, 16), ip.Slice(24, 16), protocol, l4Length);
        }
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(l.IpLength + l4Length));
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Complement(Checksum.Sum(ip[..l.IpLength])));
        return Checksum.PseudoHeaderV4(ip.Slice(12, 4), ip.Slice(16, 4), protocol, l4Length);
    }

    /// <summary>
    /// Completes a partial L4 checksum in place (virtio NEEDS_CSUM: the field holds the pseudo-header sum;
    /// the checksum covers <paramref name="csumStart"/> to the end). False when the offsets do not fit the frame.
    /// </summary>
    public static bool CompleteChecksum(Span<byte> frame, int csumStart, int csumOffset)
    {
        if (csumStart < Constants.EthernetHeaderLength || csumStart + csumOffset + 2 > frame.Length) return false;
        ushort c = Checksum.Complement(Checksum.Sum(frame[csumStart..]));
        if (c == 0 && csumOffset == 6) c = 0xFFFF; // UDP: a computed 0 is sent as all ones (RFC 768)
        BinaryPrimitives.WriteUInt16BigEndian(frame[(csumStart + csumOffset)..], c);
        return true;
    }
}
