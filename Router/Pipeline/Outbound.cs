using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using UserOverlay.Crypto;
using UserOverlay.Router.Capture;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Pipeline;

// Outbound flow (endpoint → underlay), run to completion on one pipeline worker:
//
//  1. The queue's worker waits on epoll over the socket and every local port's TAP
//     (level-triggered) and, per wake, drains each ready TAP into the free buffers of its
//     batch, frame i at offset Headroom.
//  2. ProcessTapFrame first undoes the TAP's offloads: a partial checksum is completed; a TCP
//     super-frame (TSO, up to 64 KB) is written as it is to a local offload-capable port, or else
//     cut into MSS-sized segments (TcpSegmenter) that each go on as a plain frame.
//     Plain unicast of a super-frame to one remote VTEP takes a shortcut: the segments are laid out
//     as VXLAN datagrams back to back and sent as one UDP GSO send.
//     ProcessFrame switches each frame inside its network — nothing here ever crosses VNIs:
//     a. check length and source MAC; learn source MAC → port (a local FDB entry);
//     b. an ARP request for an address in the neighbour table is answered by proxy, in place of a flood;
//     c. unicast to a known local MAC goes to that port's TAP (same-host delivery) through the worker's
//        TapWriteQueue, the one route to a TAP (with io_uring, written with the round's other frames);
//     d. unicast to a known remote MAC gets a VXLAN header written into its headroom, in place,
//        and is queued for that VTEP; a learned entry notes that it awaits an answer (FdbEntry.Sent:
//        a throttled stamp; only a frame received from the MAC refreshes the entry);
//     e. broadcast, multicast and unknown unicast go to every other local port and are queued
//        once per VTEP of the network's flood list — all copies share the one buffer.
//  3. On an encrypted network, step d/e instead writes UDP + VXLAN headers into the headroom and
//     seals the datagram in place with the VTEP's ESP SA (ESP header and IV in front, trailer and
//     ICV behind); each flooded copy but the last is first copied to a scratch buffer, since each
//     peer has its own key. No SA: the frame is dropped and counted — never sent in plaintext.
//  Capture: a frame read from a TAP is offered to the network's captures (CaptureTap) when any run, before it is
//     switched: ProcessFrame for plain frames and segments, the shortcuts below for a super-frame that leaves whole.
//  4. Flush writes the frames queued for TAPs and sends every queued datagram with one sendmmsg per
//     socket (VXLAN, ESP), when the batch is used up and at the end of each wake; only then are the
//     buffers reused.
//
// Not thread-safe: one instance per worker. Nothing here allocates.

/// <summary>The endpoint → underlay half of the switch, for one pipeline worker.</summary>
internal sealed class Outbound
{
    /// <summary>Copies of flooded frames on an encrypted network (one per extra peer) before a flush is forced.</summary>
    private const int ScratchBuffers = 32;
    /// <summary>Segments of TCP super-frames held before a flush is forced (a 64 KB super-frame makes up to ~45).</summary>
    private const int SegmentBuffers = 128;
    /// <summary>UDP GSO sends (each up to 64 KB of VXLAN datagrams) held before a flush is forced.</summary>
    private const int GsoArenas = 8;
    /// <summary>Most datagrams in one UDP GSO send (the kernel's UDP_MAX_SEGMENTS is at least 64).</summary>
    private const int MaxGsoSegments = 64;
    /// <summary>Largest UDP payload of one send (IPv4: 65535 − 20 − 8).</summary>
    private const int MaxUdpPayload = 65507;

    private readonly ForwardingState _state;
    private readonly IUnderlay _underlay;
    private readonly IUnderlay? _espUnderlay;
    private readonly int _worker;
    private readonly UnderlayDatagram[] _sends;
    private int _sendCount;
    private readonly UnderlayDatagram[] _espSends;
    private int _espCount;
    private readonly PacketBuffer[] _scratch;
    private int _scratchUsed;
    private readonly PacketBuffer[] _segments;
    private int _segmentsUsed;
    private readonly PacketBuffer[] _arenas;
    private int _arenasUsed;
    private readonly byte[] _arpReply = new byte[64];
    private readonly TapWriteQueue _writes;
    private readonly Gateway _gateway;

    /// <summary>
    /// The half of worker <paramref name="worker"/>: it sends on <paramref name="underlay"/> (and <paramref name="espUnderlay"/>
    /// for encrypted networks) and writes same-host frames through <paramref name="writes"/>, the worker's TAP writes
    /// (default: a queue of its own without a ring, which writes each frame at once).
    /// </summary>
    public Outbound(ForwardingState state, IUnderlay underlay, int worker, IUnderlay? espUnderlay = null, int maxQueued = Constants.MaxSendBatch,
        TapWriteQueue? writes = null)
    {
        _state = state;
        _writes = writes ?? new TapWriteQueue();
        _gateway = new Gateway(state, worker, _writes);
        _underlay = underlay;
        _espUnderlay = espUnderlay;
        _worker = worker;
        _sends = new UnderlayDatagram[maxQueued];
        _espSends = espUnderlay is null ? [] : new UnderlayDatagram[maxQueued];
        _scratch = new PacketBuffer[espUnderlay is null ? 0 : ScratchBuffers];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new PacketBuffer();
        _segments = new PacketBuffer[SegmentBuffers];
        for (int i = 0; i < _segments.Length; i++) _segments[i] = new PacketBuffer();
        _arenas = new PacketBuffer[underlay.SupportsSegmentation || espUnderlay is { SupportsSegmentation: true } ? GsoArenas : 0];
        for (int i = 0; i < _arenas.Length; i++) _arenas[i] = new PacketBuffer(Constants.GsoBufferSize);
    }

    /// <summary>
    /// Handles one frame read from <paramref name="port"/>'s TAP with its offload metadata (step 2):
    /// completes a partial checksum, passes a TCP super-frame to a local offload-capable port as it
    /// is, or segments it. The buffer must stay untouched until <see cref="Flush"/>.
    /// </summary>
    public void ProcessTapFrame(LocalPort port, PacketBuffer buf, int offset, int length, in OffloadInfo info, long now)
    {
        if (info.Gso == GsoKind.None)
        {
            if (info.NeedsChecksum && !TcpSegmenter.CompleteChecksum(buf.Span.Slice(offset, length), info.CsumStart, info.CsumOffset))
            {
                port.Network.Counters[_worker].Drops[(int)DropReason.BadOffload]++;
                return;
            }
            ProcessFrame(port, buf, offset, length, now);
            return;
        }
        NetworkState net = port.Network;
        TrafficCounters c = net.Counters[_worker];
        ReadOnlySpan<byte> frame = buf.Span.Slice(offset, length);
        if (info.GsoSize == 0 || !TcpSegmenter.TryParse(frame, info.Gso, out var layout)
            || layout.HeaderLength + info.GsoSize > net.MaxFrameLength)
        {
            c.Drops[(int)DropReason.BadOffload]++;
            return;
        }
        int segments = TcpSegmenter.SegmentCount(length, layout, info.GsoSize);
        ulong src = EthernetFrame.Source(frame), dst = EthernetFrame.Destination(frame);
        if (!EthernetFrame.IsMulticast(dst) && src == port.Mac && net.Encrypted && _espUnderlay is { SupportsSegmentation: true }
            && net.Fdb.TryGet(dst, out FdbEntry espRemote) && espRemote.Port is null)
        {
            // Encrypted unicast over ESP-in-UDP: the sealed segments are all the same size but the last, so they
            // too leave as one UDP GSO send (transport mode's raw socket has no GSO: its segments go one by one).
            if (net.Captures is { } captures) CaptureTap.FromEndpoint(captures, port, frame, _worker);
            espRemote.Sent(now);
            SendSegmentedEsp(net, frame, layout, info.GsoSize, segments, espRemote.Remote, c);
            c.TxFrames += segments;
            c.TxBytes += length;
            return;
        }
        if (!EthernetFrame.IsMulticast(dst) && src == port.Mac && !net.Encrypted && _underlay.SupportsSegmentation
            && net.Fdb.TryGet(dst, out FdbEntry remote) && remote.Port is null)
        {
            // Plain unicast to one VTEP: the segments leave as one UDP GSO send (the kernel cuts it, or hands it whole to a local peer).
            if (net.Captures is { } captures) CaptureTap.FromEndpoint(captures, port, frame, _worker);
            remote.Sent(now);
            SendSegmented(net, frame, layout, info.GsoSize, segments, remote.Remote, c);
            c.TxFrames += segments;
            c.TxBytes += length;
            return;
        }
        if (!EthernetFrame.IsMulticast(dst) && src == port.Mac && net.Fdb.TryGet(dst, out FdbEntry e)
            && e.Port is { } target && target != port && target.Tap.SupportsOffload)
        {
            // Same-host delivery between offload-capable ports: the super-frame goes as it is (like a bridge between virtio ports).
            if (net.Captures is { } captures) CaptureTap.FromEndpoint(captures, port, frame, _worker);
            c.TxFrames += segments;
            c.TxBytes += length;
            c.DeliveredFrames += segments; // moved to EndpointWriteFailed if the TAP refuses it
            _writes.DeliverCounted(target, frame, info, offload: true, segments, c);
            return;
        }
        for (int i = 0; i < segments; i++)
        {
            if (_segmentsUsed == _segments.Length) Flush(); // sends what references the segment buffers; then they are free again
            PacketBuffer seg = _segments[_segmentsUsed++];
            int len = TcpSegmenter.WriteSegment(frame, layout, info.GsoSize, i, seg.Span[Constants.Headroom..]);
            ProcessFrame(port, seg, Constants.Headroom, len, now);
        }
    }

    /// <summary>Datagrams queued and not yet flushed.</summary>
    public int Queued => _sendCount + _espCount;

    /// <summary>
    /// Switches one frame read from <paramref name="port"/>. The frame is <c>buf.Span[offset..(offset+length)]</c>;
    /// <paramref name="offset"/> must leave at least <see cref="Constants.VxlanHeaderLength"/> bytes of headroom.
    /// The buffer must stay untouched until <see cref="Flush"/>.
    /// </summary>
    public void ProcessFrame(LocalPort port, PacketBuffer buf, int offset, int length, long now)
    {
        NetworkState net = port.Network;
        if (net.Captures is { } captures) CaptureTap.FromEndpoint(captures, port, buf.Span.Slice(offset, length), _worker);
        TrafficCounters c = net.Counters[_worker];
        c.TxFrames++;
        c.TxBytes += length;
        if (length < Constants.EthernetHeaderLength) { c.Drops[(int)DropReason.Truncated]++; return; }
        if (length > net.MaxFrameLength) { c.Drops[(int)DropReason.Oversized]++; return; }

        ReadOnlySpan<byte> frame = buf.Span.Slice(offset, length);
        ulong src = EthernetFrame.Source(frame);
        ulong dst = EthernetFrame.Destination(frame);
        if (src == 0 || EthernetFrame.IsMulticast(src)) { c.Drops[(int)DropReason.BadSourceMac]++; return; }
        if (src != port.Mac)
        {
            if (src == net.GatewayMac) { c.Drops[(int)DropReason.SpoofedSource]++; return; } // the gateway is the router's
            LearnLocal(net, port, src, now, c);
        }

        if (EthernetFrame.IsMulticast(dst))
        {
            if (dst == MacAddress.Broadcast.Value && EthernetFrame.EtherType(frame) == EthernetFrame.EtherTypeArp
                && TryProxyArp(port, frame, c))
                return;
            Flood(port, buf, offset, length, c);
            return;
        }
        if (dst == net.GatewayMac && dst != 0) { _gateway.Handle(port, frame); return; } // never in the FDB, never flooded

        if (net.Fdb.TryGet(dst, out FdbEntry entry))
        {
            if (entry.Port is { } target)
            {
                if (target == port) { c.Drops[(int)DropReason.Hairpin]++; return; }
                _writes.Deliver(target, frame, c);
            }
            else
            {
                entry.Sent(now); // a learned entry now waits for an answer; sending never refreshes LastSeen
                SendRemote(net, buf, offset, length, entry.Remote, inPlace: true, c);
            }
            return;
        }
        Flood(port, buf, offset, length, c);
    }

    /// <summary>
    /// Cuts a TCP super-frame into VXLAN datagrams laid out back to back in an arena buffer — each
    /// [VXLAN 8 | Ethernet | IP | TCP | MSS bytes], all the same size but the last — and queues them as
    /// UDP GSO sends (UDP_SEGMENT): one skb through the sender's stack instead of forty-five.
    /// </summary>
    private void SendSegmented(NetworkState net, ReadOnlySpan<byte> frame, in TcpSegmenter.Layout layout, int mss, int segments, VtepEndpoint to, TrafficCounters c)
    {
        int segmentSize = VxlanHeader.Length + layout.HeaderLength + mss;
        int perSend = Math.Min(MaxGsoSegments, MaxUdpPayload / segmentSize);
        for (int first = 0; first < segments; first += perSend)
        {
            int count = Math.Min(perSend, segments - first);
            if (_arenasUsed == _arenas.Length) Flush();
            PacketBuffer arena = _arenas[_arenasUsed++];
            Span<byte> a = arena.Span;
            int start = Constants.Headroom, pos = start;
            for (int k = first; k < first + count; k++)
            {
                VxlanHeader.Write(a[pos..], net.Vni);
                pos += VxlanHeader.Length;
                pos += TcpSegmenter.WriteSegment(frame, layout, mss, k, a[pos..]);
            }
            Queue(_sends, ref _sendCount, arena, start, pos - start, to, count > 1 ? segmentSize : 0);
            c.EncapsulatedDatagrams += count;
        }
    }

    /// <summary>
    /// Like <see cref="SendSegmented"/> for an encrypted network over ESP-in-UDP: each segment becomes
    /// [ESP 16 | UDP 8 | VXLAN 8 | segment | trailer + ICV], sealed in place right after the previous one;
    /// equal payloads seal to equal lengths, so the run is one UDP GSO send.
    /// </summary>
    private void SendSegmentedEsp(NetworkState net, ReadOnlySpan<byte> frame, in TcpSegmenter.Layout layout, int mss, int segments, VtepEndpoint to, TrafficCounters c)
    {
        if (!net.EspPeers.TryGet(to.Address, out EspPeer peer)) { c.Drops[(int)DropReason.EspNoSa] += segments; return; }
        int inner = VxlanHeader.Length + Constants.UdpHeaderLength;
        int sealedSize = Esp.SealedLength(inner + layout.HeaderLength + mss);
        int perSend = Math.Min(MaxGsoSegments, MaxUdpPayload / sealedSize);
        var dest = new VtepEndpoint(to.Address, _state.EspPort);
        for (int first = 0; first < segments; first += perSend)
        {
            int count = Math.Min(perSend, segments - first);
            if (_arenasUsed == _arenas.Length) Flush();
            PacketBuffer arena = _arenas[_arenasUsed++];
            Span<byte> a = arena.Span;
            int start = Constants.Headroom, pos = start, sent = 0;
            for (int k = first; k < first + count; k++)
            {
                int udpAt = pos + Esp.HeaderLength;
                int frameLength = TcpSegmenter.WriteSegment(frame, layout, mss, k, a[(udpAt + inner)..]);
                int udpLength = inner + frameLength;
                VxlanHeader.Write(a[(udpAt + Constants.UdpHeaderLength)..], net.Vni);
                BinaryPrimitives.WriteUInt16BigEndian(a[udpAt..], _state.DataPort);
                BinaryPrimitives.WriteUInt16BigEndian(a[(udpAt + 2)..], to.Port);
                BinaryPrimitives.WriteUInt16BigEndian(a[(udpAt + 4)..], (ushort)udpLength);
                BinaryPrimitives.WriteUInt16BigEndian(a[(udpAt + 6)..], 0);
                var status = peer.Seal(a, udpAt, udpLength, Esp.NextHeaderUdp, out int espLength);
                if (status != EspSealStatus.Ok)
                {
                    c.Drops[(int)(status == EspSealStatus.NoSa ? DropReason.EspNoSa : DropReason.EspNotSent)] += first + count - k;
                    break;
                }
                pos += espLength;
                sent++;
            }
            if (sent == 0) return;
            Queue(_espSends, ref _espCount, arena, start, pos - start, dest, sent > 1 ? sealedSize : 0);
            c.EncapsulatedDatagrams += sent;
            if (sent < count) return;
        }
    }

    /// <summary>
    /// Writes the frames queued for the TAPs and sends every queued datagram (one sendmmsg per socket where possible);
    /// afterwards the buffers may be reused.
    /// </summary>
    public void Flush()
    {
        _writes.Flush();
        if (_state.UnderlayCaptures is { } captures) CaptureSent(captures);
        if (_sendCount > 0)
        {
            int failed = _underlay.Send(_sends.AsSpan(0, _sendCount));
            if (failed > 0) _state.Global[_worker].Drops[(int)DropReason.SendFailed] += failed;
            for (int i = 0; i < _sendCount; i++) _sends[i].Buffer = null!; // drop references: buffers go back to their owner
            _sendCount = 0;
        }
        if (_espCount > 0)
        {
            int failed = _espUnderlay!.Send(_espSends.AsSpan(0, _espCount));
            if (failed > 0) _state.Global[_worker].Drops[(int)DropReason.SendFailed] += failed;
            for (int i = 0; i < _espCount; i++) _espSends[i].Buffer = null!;
            _espCount = 0;
        }
        _scratchUsed = 0;
        _segmentsUsed = 0;
        _arenasUsed = 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CaptureSent(CaptureSession[] captures)
    {
        CaptureTap.Sent(captures, _sends.AsSpan(0, _sendCount), _state.UnderlayAddress, _state.DataPort, udp: true, _worker);
        CaptureTap.Sent(captures, _espSends.AsSpan(0, _espCount), _state.UnderlayAddress, _state.EspPort, udp: _state.EspPort != 0, _worker);
    }

    /// <summary>
    /// Queues one frame for one VTEP: VXLAN in place on a plain network; on an encrypted one, sealed with the
    /// VTEP's SA — in place when <paramref name="inPlace"/>, else in a scratch copy (the buffer is still needed).
    /// </summary>
    private void SendRemote(NetworkState net, PacketBuffer buf, int offset, int length, VtepEndpoint to, bool inPlace, TrafficCounters c)
    {
        if (!net.Encrypted)
        {
            VxlanHeader.Write(buf.Span[(offset - VxlanHeader.Length)..], net.Vni);
            Queue(_sends, ref _sendCount, buf, offset - VxlanHeader.Length, length + VxlanHeader.Length, to);
            c.EncapsulatedDatagrams++;
            return;
        }
        if (!net.EspPeers.TryGet(to.Address, out EspPeer peer)) { c.Drops[(int)DropReason.EspNoSa]++; return; }
        if (!inPlace)
        {
            if (_scratchUsed == _scratch.Length) Flush(); // the caller's buffer is not queued yet: flushing is safe
            var copy = _scratch[_scratchUsed++];
            buf.Span.Slice(offset, length).CopyTo(copy.Span[Constants.Headroom..]);
            buf = copy;
            offset = Constants.Headroom;
        }
        // [ESP 16 | UDP 8 | VXLAN 8 | frame | trailer ≤ 21]: the headroom holds the headers, the tailroom the trailer.
        Span<byte> b = buf.Span;
        int vxlanAt = offset - VxlanHeader.Length;
        int udpAt = vxlanAt - Constants.UdpHeaderLength;
        VxlanHeader.Write(b[vxlanAt..], net.Vni);
        int udpLength = length + VxlanHeader.Length + Constants.UdpHeaderLength;
        BinaryPrimitives.WriteUInt16BigEndian(b[udpAt..], _state.DataPort);
        BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 2)..], to.Port);
        BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 4)..], (ushort)udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 6)..], 0); // IPv4 UDP checksum optional (RFC 768); the ICV protects the datagram
        var status = peer.Seal(b, udpAt, udpLength, Esp.NextHeaderUdp, out int espLength);
        if (status != EspSealStatus.Ok)
        {
            c.Drops[(int)(status == EspSealStatus.NoSa ? DropReason.EspNoSa : DropReason.EspNotSent)]++;
            return;
        }
        Queue(_espSends, ref _espCount, buf, Esp.PacketStart(udpAt), espLength, new VtepEndpoint(to.Address, _state.EspPort));
        c.EncapsulatedDatagrams++;
    }

    private void Flood(LocalPort from, PacketBuffer buf, int offset, int length, TrafficCounters c)
    {
        NetworkState net = from.Network;
        ReadOnlySpan<byte> frame = buf.Span.Slice(offset, length);
        PortList.View ports = net.Ports.Current;
        LocalPort?[] items = ports.Items;
        VtepEndpoint[] flood = net.FloodList;
        bool any = false;
        for (int i = 0; i < ports.Count; i++)
        {
            LocalPort? p = items[i];
            if (p is null || p == from) continue; // null: a port being detached
            _writes.Deliver(p, frame, c);
            any = true;
        }
        // Sealing in place (an encrypted network's last copy) rewrites the frame: what was queued for the local ports
        // is written first.
        if (any && net.Encrypted && flood.Length > 0) _writes.Flush();
        for (int i = 0; i < flood.Length; i++)
        {
            SendRemote(net, buf, offset, length, flood[i], inPlace: i == flood.Length - 1, c); // sealing in place must come last
            any = true;
        }
        if (any) c.FloodedFrames++;
        else c.Drops[(int)DropReason.NoDestination]++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Queue(UnderlayDatagram[] queue, ref int count, PacketBuffer buf, int offset, int length, VtepEndpoint to, int segmentSize = 0)
    {
        if (count == queue.Length) Flush(); // the buffers stay valid: flushing only sends them
        ref UnderlayDatagram d = ref queue[count++];
        d.SegmentSize = segmentSize;
        d.Buffer = buf;
        d.Offset = offset;
        d.Length = length;
        d.Peer = to;
    }

    private bool TryProxyArp(LocalPort port, ReadOnlySpan<byte> frame, TrafficCounters c)
    {
        if (!ArpPacket.TryParse(frame[Constants.EthernetHeaderLength..], out var arp) || arp.Operation != ArpPacket.OpRequest)
            return false;
        uint target = arp.TargetIp;
        if (target == arp.SenderIp) return false; // gratuitous ARP / address probe: let it through
        if (!port.Network.Neighbors.TryGet(target, out NeighborEntry n) || n.Mac == arp.SenderMac)
            return false;
        int len = ArpPacket.WriteReply(_arpReply, n.Mac, target, arp.SenderMac, arp.SenderIp);
        if (_writes.WriteNow(port, _arpReply.AsSpan(0, len))) c.ProxyArpReplies++; // the reply buffer is reused: written at once
        else c.Drops[(int)DropReason.EndpointWriteFailed]++;
        return true;
    }

    private void LearnLocal(NetworkState net, LocalPort port, ulong mac, long now, TrafficCounters c)
    {
        if (net.Fdb.TryGet(mac, out FdbEntry e))
        {
            if (e.Port == port) { if (e.Ages) Volatile.Write(ref e.LastSeen, now); return; }
            if (e.Source is EntrySource.Static or EntrySource.Local) return; // configured entries win
        }
        if (!_state.Learning) return;
        Learner.Learn(net, new FdbEntry(mac, EntrySource.Learned, port, default, now), c);
    }
}
