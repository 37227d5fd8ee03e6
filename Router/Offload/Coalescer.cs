using System.Buffers.Binary;
using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router.Offload;

/// <summary>
/// Receive-side coalescing towards offload-capable TAPs (what the kernel's GRO does for a NIC):
/// consecutive TCP segments of one flow, arriving in one receive round for one local port, are
/// merged into a single super-frame written with one syscall and a virtio-net GSO header, so the
/// endpoint's stack handles one 64 KB packet (and sends one ACK) instead of forty-five. Likewise
/// UDP datagrams of one flow towards a TAP that takes UDP super-frames
/// (<see cref="ITapDevice.SupportsUdpSegmentation"/>): one write, which the kernel cuts back into the
/// same datagrams, instead of one write per datagram — what makes small-packet UDP cheap.
/// <para>
/// A segment joins a pending super-frame when it continues it exactly: same port and addresses,
/// next sequence number, same ACK number, window, TTL/TOS (hop limit/traffic class), TCP options
/// (timestamps) and DF bit; only ACK and PSH flags; a payload no longer than the first segment's.
/// A shorter segment or PSH closes the super-frame (as Linux GRO flushes on PSH). A segment whose
/// checksum does not verify is never merged (checked only when a second frame joins: a frame written alone
/// is left to the endpoint to check). Anything else
/// for that port first flushes the port's pending super-frames, so a flow never reorders.
/// The caller flushes at the end of every receive round, so nothing waits longer than one batch.
/// </para>
/// <para>
/// A UDP datagram joins when it has the same addresses, ports, TOS/TTL/DF (traffic class, flow label, hop
/// limit) and a payload no longer than the first one's; a shorter one closes the super-frame. Its UDP
/// checksum is verified first (a corrupted datagram is written alone, for the endpoint to drop), because
/// the super-frame's checksum is partial and the endpoint's stack trusts it.
/// </para>
/// Not thread-safe: one instance per pipeline worker. Allocation-free after construction.
/// </summary>
internal sealed class Coalescer
{
    /// <summary>Super-frames being built at once (distinct flows per receive round).</summary>
    public const int MaxPending = 8;
    /// <summary>Most segments merged into one super-frame (Linux GRO's limit).</summary>
    public const int MaxSegments = 64;

    private const byte TcpFin = 0x01, TcpSyn = 0x02, TcpRst = 0x04, TcpPsh = 0x08, TcpAck = 0x10, TcpUrg = 0x20, TcpEce = 0x40, TcpCwr = 0x80;

    private const byte ProtoTcp = 6, ProtoUdp = 17;

    private sealed class Pending(PacketBuffer buffer)
    {
        public readonly PacketBuffer Buffer = buffer;
        public LocalPort? Port;
        public bool Udp;
        public bool Verified;   // the held frame's checksum was checked (only done once a second one joins)
        public int Length;      // bytes of the super-frame at Constants.Headroom
        public TcpSegmenter.Layout Layout;
        public int Mss;         // payload of the first segment
        public int Segments;
        public uint NextSeq;
        public bool Closed;     // a short segment or PSH ended it
        public int Sequence;    // age, to evict the oldest
    }

    private readonly Pending[] _pending;
    private readonly int _worker;
    private int _age;
    private readonly ITapFrameSink _writes;

    /// <summary>
    /// Holds <see cref="MaxPending"/> buffers from <paramref name="rentLarge"/> and hands what it builds to
    /// <paramref name="writes"/> (the worker's TAP writes: super-frames then leave in order with the round's other frames).
    /// </summary>
    public Coalescer(Func<PacketBuffer> rentLarge, int worker, ITapFrameSink writes)
    {
        _worker = worker;
        _writes = writes;
        _pending = new Pending[MaxPending];
        for (int i = 0; i < MaxPending; i++) _pending[i] = new Pending(rentLarge());
    }

    /// <summary>Buffers held (to return them to their pool).</summary>
    public IEnumerable<PacketBuffer> Buffers => _pending.Select(p => p.Buffer);

    /// <summary>
    /// Offers a frame for <paramref name="port"/>. True: it is held (and will be written by <see cref="Flush"/>).
    /// False: the caller writes it itself — the port's pending super-frames have been flushed first.
    /// </summary>
    public bool Offer(LocalPort port, ReadOnlySpan<byte> frame, TrafficCounters c)
    {
        bool udp;
        TcpSegmenter.Layout layout;
        if (!Eligible(frame, out layout))
        {
            if (!port.Tap.SupportsUdpSegmentation || !EligibleUdp(frame, out layout))
            {
                FlushPort(port, c);
                return false;
            }
            udp = true;
        }
        else udp = false;
        int payload = frame.Length - layout.HeaderLength;
        for (int i = 0; i < _pending.Length; i++)
        {
            var p = _pending[i];
            if (p.Port != port || p.Udp != udp || !SameFlow(p, frame, layout)) continue;
            if (p.Closed || p.Segments >= MaxSegments)
            {
                // The flow's super-frame is complete: write it now, so this frame, which starts the next one, cannot
                // be written before it (the end-of-round flush goes by slot, not by age).
                FlushOne(p, c);
                break;
            }
            if (udp)
            {
                int total = p.Length - p.Layout.EthLength + payload;
                if (payload > p.Mss || !ContinuesUdp(p, frame, layout) || total > 65535)
                {
                    FlushOne(p, c); // what we have goes first; this datagram starts the next super-frame
                    break;
                }
                if (!BothVerify(p, frame, layout, c, out bool restartUdp))
                {
                    if (restartUdp) break;
                    return false;
                }
                frame[layout.HeaderLength..].CopyTo(p.Buffer.Span[(Constants.Headroom + p.Length)..]);
                p.Length += payload;
                p.Segments++;
                if (payload < p.Mss) p.Closed = true;
                return true;
            }
            uint seq = BinaryPrimitives.ReadUInt32BigEndian(frame[(layout.EthLength + layout.IpLength + 4)..]);
            int ipTotal = p.Length - p.Layout.EthLength + payload; // IPv4 total length, or IPv6 payload + 40
            if (seq != p.NextSeq || payload > p.Mss || !Continues(p, frame, layout) || ipTotal > 65535)
            {
                // Same flow but not the continuation: write what we have first, then this one alone (order kept).
                FlushOne(p, c);
                return false;
            }
            if (!BothVerify(p, frame, layout, c, out bool restart))
            {
                if (restart) break;
                return false;
            }
            frame[layout.HeaderLength..].CopyTo(p.Buffer.Span[(Constants.Headroom + p.Length)..]);
            p.Length += payload;
            p.NextSeq += (uint)payload;
            p.Segments++;
            byte flags = frame[layout.EthLength + layout.IpLength + 13];
            if ((flags & TcpPsh) != 0)
            {
                p.Buffer.Span[Constants.Headroom + p.Layout.EthLength + p.Layout.IpLength + 13] |= TcpPsh;
                p.Closed = true;
            }
            if (payload < p.Mss) p.Closed = true;
            return true;
        }
        // A new flow: take a free slot, or write out the oldest.
        Pending? slot = null;
        foreach (var p in _pending) if (p.Port is null) { slot = p; break; }
        if (slot is null)
        {
            slot = _pending[0];
            foreach (var p in _pending) if (p.Sequence < slot.Sequence) slot = p;
            FlushOne(slot, c);
        }
        frame.CopyTo(slot.Buffer.Span[Constants.Headroom..]);
        slot.Port = port;
        slot.Udp = udp;
        slot.Verified = false;
        slot.Length = frame.Length;
        slot.Layout = layout;
        slot.Mss = payload;
        slot.Segments = 1;
        slot.NextSeq = udp ? 0 : BinaryPrimitives.ReadUInt32BigEndian(frame[(layout.EthLength + layout.IpLength + 4)..]) + (uint)payload;
        slot.Closed = !udp && (frame[layout.EthLength + layout.IpLength + 13] & TcpPsh) != 0;
        slot.Sequence = ++_age;
        return true;
    }

    /// <summary>True when super-frames are pending.</summary>
    public bool HasPending
    {
        get
        {
            foreach (var p in _pending) if (p.Port is not null) return true;
            return false;
        }
    }

    /// <summary>
    /// Writes every pending super-frame — handed to the sink, which the caller flushes before the
    /// next <see cref="Offer"/> (the slots' buffers are free again once it has).
    /// </summary>
    public void Flush()
    {
        foreach (var p in _pending)
            if (p.Port is { } port) Queue(p, port.Network.Counters[_worker]);
    }

    /// <summary>
    /// Writes <paramref name="port"/>'s pending super-frames now (their slots are free at once). With none pending there
    /// is nothing to write: the caller's frame queues behind whatever the round queued, in order.
    /// </summary>
    private void FlushPort(LocalPort port, TrafficCounters c)
    {
        bool queued = false;
        foreach (var p in _pending)
            if (p.Port == port) { Queue(p, c); queued = true; }
        if (queued) _writes.Flush();
    }

    /// <summary>Writes one super-frame now (mid-round: its slot is reused at once), after whatever the round queued before it.</summary>
    private void FlushOne(Pending p, TrafficCounters c)
    {
        Queue(p, c);
        _writes.Flush();
    }

    private void Queue(Pending p, TrafficCounters c)
    {
        var port = p.Port!;
        Span<byte> f = p.Buffer.Span.Slice(Constants.Headroom, p.Length);
        if (p.Segments == 1)
        {
            _writes.DeliverCounted(port, f, default, offload: false, 1, c); // exactly as received: its checksum is the sender's
        }
        else
        {
            var l = p.Layout;
            Span<byte> l4 = f[(l.EthLength + l.IpLength)..];
            int csumOffset = p.Udp ? 6 : 16;
            ulong pseudo = TcpSegmenter.SetIpLength(f[l.EthLength..], l, l4.Length, p.Udp ? ProtoUdp : ProtoTcp);
            if (p.Udp) BinaryPrimitives.WriteUInt16BigEndian(l4[4..], (ushort)l4.Length); // UDP length: the whole, as a GSO send leaves it
            // Partial checksum (virtio NEEDS_CSUM): the field holds the folded pseudo-header sum over the whole, as the
            // kernel's TSO and UDP GSO paths leave it; segmentation swaps in each segment's length.
            BinaryPrimitives.WriteUInt16BigEndian(l4[csumOffset..], Checksum.Fold(pseudo));
            var info = new OffloadInfo
            {
                Gso = p.Udp ? GsoKind.UdpL4 : l.IsIPv6 ? GsoKind.TcpV6 : GsoKind.TcpV4,
                NeedsChecksum = true,
                GsoSize = (ushort)p.Mss,
                HeaderLength = (ushort)l.HeaderLength,
                CsumStart = (ushort)(l.EthLength + l.IpLength),
                CsumOffset = (ushort)csumOffset,
            };
            _writes.DeliverCounted(port, f, info, offload: true, p.Segments, c);
        }
        p.Port = null;
        p.Segments = 0;
        p.Closed = false;
    }

    /// <summary>TCP over IPv4 (no options, not fragmented) or IPv6 (no extension headers) with payload and only ACK/PSH set.</summary>
    private static bool Eligible(ReadOnlySpan<byte> f, out TcpSegmenter.Layout layout)
    {
        layout = default;
        if (f.Length < Constants.EthernetHeaderLength + 40) return false;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
        GsoKind kind;
        if (type == 0x0800)
        {
            if (f[14] != 0x45 || f[14 + 9] != 6) return false;                       // IPv4, IHL 5, TCP
            if ((BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 6)..]) & 0x3FFF) != 0) return false; // MF or fragment offset
            if (BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 2)..]) != f.Length - 14) return false; // no Ethernet padding or truncation
            kind = GsoKind.TcpV4;
        }
        else if (type == 0x86DD)
        {
            if (f.Length < 14 + 60 || (f[14] >> 4) != 6 || f[14 + 6] != 6) return false;
            if (BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 4)..]) != f.Length - 14 - 40) return false;
            kind = GsoKind.TcpV6;
        }
        else return false;
        if (!TcpSegmenter.TryParse(f, kind, out layout)) return false;
        byte flags = f[layout.EthLength + layout.IpLength + 13];
        if ((flags & (TcpFin | TcpSyn | TcpRst | TcpUrg | TcpEce | TcpCwr)) != 0 || (flags & TcpAck) == 0) return false;
        return f.Length > layout.HeaderLength;
    }

    /// <summary>
    /// The frame's TCP or UDP checksum verifies (a UDP/IPv4 datagram without one passes). Checked before a frame
    /// is merged, as the kernel's GRO does: the super-frame's checksum is partial and the endpoint's stack trusts
    /// it, so a corrupted segment must go alone, for the endpoint to drop. A frame written alone is not checked
    /// here: the endpoint checks it.
    /// </summary>
    private static bool ChecksumOk(ReadOnlySpan<byte> f, in TcpSegmenter.Layout l, bool udp)
    {
        ReadOnlySpan<byte> l4 = f[(l.EthLength + l.IpLength)..];
        if (udp && !l.IsIPv6 && BinaryPrimitives.ReadUInt16BigEndian(l4[6..]) == 0) return true;
        byte proto = udp ? ProtoUdp : ProtoTcp;
        ulong pseudo = l.IsIPv6
            ? Checksum.PseudoHeaderV6(f.Slice(l.EthLength + 8, 16), f.Slice(l.EthLength + 24, 16), proto, l4.Length)
            : Checksum.PseudoHeaderV4(f.Slice(l.EthLength + 12, 4), f.Slice(l.EthLength + 16, 4), proto, l4.Length);
        return Checksum.Complement(Checksum.Sum(l4, pseudo)) == 0;
    }

    /// <summary>
    /// Before <paramref name="frame"/> joins <paramref name="p"/>: both checksums verify. A bad new frame: the
    /// super-frame so far is written and the caller writes the frame alone (false, <paramref name="restart"/>
    /// false). A bad held first frame: it is written alone and the new frame starts afresh (false, restart true).
    /// </summary>
    private bool BothVerify(Pending p, ReadOnlySpan<byte> frame, in TcpSegmenter.Layout layout, TrafficCounters c, out bool restart)
    {
        restart = false;
        if (!ChecksumOk(frame, layout, p.Udp))
        {
            FlushOne(p, c);
            return false;
        }
        if (!p.Verified && !ChecksumOk(p.Buffer.Span.Slice(Constants.Headroom, p.Length), p.Layout, p.Udp))
        {
            FlushOne(p, c);
            restart = true;
            return false;
        }
        p.Verified = true;
        return true;
    }

    /// <summary>
    /// UDP over IPv4 (no options, not fragmented) or IPv6 (no extension headers), lengths consistent, with a
    /// payload, and a checksum over IPv6 (its value is checked only if the datagram is merged).
    /// </summary>
    private static bool EligibleUdp(ReadOnlySpan<byte> f, out TcpSegmenter.Layout layout)
    {
        layout = default;
        if (f.Length < Constants.EthernetHeaderLength + 20 + 8) return false;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
        int udpAt;
        if (type == 0x0800)
        {
            if (f[14] != 0x45 || f[14 + 9] != ProtoUdp) return false;
            if ((BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 6)..]) & 0x3FFF) != 0) return false;
            if (BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 2)..]) != f.Length - 14) return false;
            udpAt = 14 + 20;
            layout = new TcpSegmenter.Layout(14, 20, 8, false);
        }
        else if (type == 0x86DD)
        {
            if (f.Length < 14 + 40 + 8 || (f[14] >> 4) != 6 || f[14 + 6] != ProtoUdp) return false;
            if (BinaryPrimitives.ReadUInt16BigEndian(f[(14 + 4)..]) != f.Length - 14 - 40) return false;
            udpAt = 14 + 40;
            layout = new TcpSegmenter.Layout(14, 40, 8, true);
        }
        else return false;
        ReadOnlySpan<byte> udp = f[udpAt..];
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[4..]) != udp.Length || udp.Length <= 8) return false;
        return !layout.IsIPv6 || BinaryPrimitives.ReadUInt16BigEndian(udp[6..]) != 0; // IPv6 requires a checksum
    }

    /// <summary>The IP fields that must not change within a UDP super-frame.</summary>
    private static bool ContinuesUdp(Pending p, ReadOnlySpan<byte> f, in TcpSegmenter.Layout l)
    {
        ReadOnlySpan<byte> pf = p.Buffer.Span.Slice(Constants.Headroom, p.Length);
        int ip = l.EthLength;
        if (l.IsIPv6) return f.Slice(ip, 4).SequenceEqual(pf.Slice(ip, 4)) && f[ip + 7] == pf[ip + 7];
        return f[ip + 1] == pf[ip + 1] && f[ip + 8] == pf[ip + 8] && (f[ip + 6] & 0x40) == (pf[ip + 6] & 0x40);
    }

    /// <summary>Same addresses and ports, and the pending frame's layout.</summary>
    private static bool SameFlow(Pending p, ReadOnlySpan<byte> f, in TcpSegmenter.Layout l)
    {
        if (l != p.Layout) return false;
        ReadOnlySpan<byte> pf = p.Buffer.Span.Slice(Constants.Headroom, p.Length);
        int ip = l.EthLength, tcp = l.EthLength + l.IpLength;
        if (l.IsIPv6) { if (!f.Slice(ip + 8, 32).SequenceEqual(pf.Slice(ip + 8, 32))) return false; }
        else if (!f.Slice(ip + 12, 8).SequenceEqual(pf.Slice(ip + 12, 8))) return false;
        return f.Slice(tcp, 4).SequenceEqual(pf.Slice(tcp, 4));
    }

    /// <summary>The fields that must not change within a super-frame.</summary>
    private static bool Continues(Pending p, ReadOnlySpan<byte> f, in TcpSegmenter.Layout l)
    {
        ReadOnlySpan<byte> pf = p.Buffer.Span.Slice(Constants.Headroom, p.Length);
        int ip = l.EthLength, tcp = l.EthLength + l.IpLength;
        if (l.IsIPv6)
        {
            if (!f.Slice(ip, 4).SequenceEqual(pf.Slice(ip, 4)) || f[ip + 7] != pf[ip + 7]) return false; // class, flow label, hop limit
        }
        else if (f[ip + 1] != pf[ip + 1] || f[ip + 8] != pf[ip + 8] || (f[ip + 6] & 0x40) != (pf[ip + 6] & 0x40)) return false; // TOS, TTL, DF
        return f.Slice(tcp + 8, 4).SequenceEqual(pf.Slice(tcp + 8, 4))          // ACK number
            && f.Slice(tcp + 14, 2).SequenceEqual(pf.Slice(tcp + 14, 2))        // window
            && f.Slice(tcp + 20, l.TcpLength - 20).SequenceEqual(pf.Slice(tcp + 20, l.TcpLength - 20)); // options
    }
}
