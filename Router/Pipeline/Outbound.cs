using System.Runtime.CompilerServices;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Pipeline;

// Outbound flow (endpoint → underlay), run to completion on one pipeline worker:
//
//  1. The queue's worker waits on epoll over the socket and every local port's TAP
//     (level-triggered) and, per wake, drains each ready TAP into the free buffers of its
//     batch, frame i at offset Headroom.
//  2. ProcessFrame switches each frame inside its network — nothing here ever crosses VNIs:
//     a. check length and source MAC; learn source MAC → port (a local FDB entry);
//     b. an ARP request for an address in the neighbour table is answered by proxy, in place of a flood;
//     c. unicast to a known local MAC is written to that port's TAP (same-host delivery);
//     d. unicast to a known remote MAC gets a VXLAN header written into its headroom, in place,
//        and is queued for that VTEP;
//     e. broadcast, multicast and unknown unicast go to every other local port and are queued
//        once per VTEP of the network's flood list — all copies share the one buffer.
//  3. Flush sends every queued datagram with one sendmmsg, when the batch is used up and at the
//     end of each wake; only then are the buffers reused.
//
// Not thread-safe: one instance per worker. Nothing here allocates.

/// <summary>The endpoint → underlay half of the switch, for one pipeline worker.</summary>
internal sealed class Outbound
{
    private readonly ForwardingState _state;
    private readonly IUnderlay _underlay;
    private readonly int _worker;
    private readonly UnderlayDatagram[] _sends;
    private int _sendCount;
    private readonly byte[] _scratch = new byte[64];

    public Outbound(ForwardingState state, IUnderlay underlay, int worker, int maxQueued = Constants.MaxSendBatch)
    {
        _state = state;
        _underlay = underlay;
        _worker = worker;
        _sends = new UnderlayDatagram[maxQueued];
    }

    /// <summary>Datagrams queued and not yet flushed.</summary>
    public int Queued => _sendCount;

    /// <summary>
    /// Switches one frame read from <paramref name="port"/>. The frame is <c>buf.Span[offset..(offset+length)]</c>;
    /// <paramref name="offset"/> must leave at least <see cref="Constants.VxlanHeaderLength"/> bytes of headroom.
    /// The buffer must stay untouched until <see cref="Flush"/>.
    /// </summary>
    public void ProcessFrame(LocalPort port, PacketBuffer buf, int offset, int length, long now)
    {
        NetworkState net = port.Network;
        TrafficCounters c = net.Counters[_worker];
        c.TxFrames++;
        c.TxBytes += length;
        if (length < Constants.EthernetHeaderLength) { c.Drops[(int)DropReason.Truncated]++; return; }
        if (length > net.MaxFrameLength) { c.Drops[(int)DropReason.Oversized]++; return; }

        ReadOnlySpan<byte> frame = buf.Span.Slice(offset, length);
        ulong src = EthernetFrame.Source(frame);
        ulong dst = EthernetFrame.Destination(frame);
        if (src == 0 || EthernetFrame.IsMulticast(src)) { c.Drops[(int)DropReason.BadSourceMac]++; return; }
        if (src != port.Mac) LearnLocal(net, port, src, now, c);

        if (EthernetFrame.IsMulticast(dst))
        {
            if (dst == MacAddress.Broadcast.Value && EthernetFrame.EtherType(frame) == EthernetFrame.EtherTypeArp
                && TryProxyArp(port, frame, c))
                return;
            Flood(port, buf, offset, length, c);
            return;
        }

        if (net.Fdb.TryGet(dst, out FdbEntry entry))
        {
            if (entry.Port is { } target)
            {
                if (target == port) { c.Drops[(int)DropReason.Hairpin]++; return; }
                Deliver(target, frame, c);
            }
            else
            {
                VxlanHeader.Write(buf.Span[(offset - VxlanHeader.Length)..], net.Vni);
                Queue(buf, offset - VxlanHeader.Length, length + VxlanHeader.Length, entry.Remote);
                c.EncapsulatedDatagrams++;
            }
            return;
        }
        Flood(port, buf, offset, length, c);
    }

    /// <summary>Sends every queued datagram (one sendmmsg where possible); afterwards the buffers may be reused.</summary>
    public void Flush()
    {
        if (_sendCount == 0) return;
        int failed = _underlay.Send(_sends.AsSpan(0, _sendCount));
        if (failed > 0) _state.Global[_worker].Drops[(int)DropReason.SendFailed] += failed;
        for (int i = 0; i < _sendCount; i++) _sends[i].Buffer = null!; // drop references: buffers go back to their owner
        _sendCount = 0;
    }

    private void Flood(LocalPort from, PacketBuffer buf, int offset, int length, TrafficCounters c)
    {
        NetworkState net = from.Network;
        ReadOnlySpan<byte> frame = buf.Span.Slice(offset, length);
        LocalPort[] ports = net.Ports;
        VtepEndpoint[] flood = net.FloodList;
        bool any = false;
        for (int i = 0; i < ports.Length; i++)
        {
            if (ports[i] == from) continue;
            Deliver(ports[i], frame, c);
            any = true;
        }
        if (flood.Length > 0)
        {
            VxlanHeader.Write(buf.Span[(offset - VxlanHeader.Length)..], net.Vni);
            for (int i = 0; i < flood.Length; i++)
                Queue(buf, offset - VxlanHeader.Length, length + VxlanHeader.Length, flood[i]);
            c.EncapsulatedDatagrams += flood.Length;
            any = true;
        }
        if (any) c.FloodedFrames++;
        else c.Drops[(int)DropReason.NoDestination]++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Queue(PacketBuffer buf, int offset, int length, VtepEndpoint to)
    {
        if (_sendCount == _sends.Length) Flush(); // the buffers stay valid: flushing only sends them
        ref UnderlayDatagram d = ref _sends[_sendCount++];
        d.Buffer = buf;
        d.Offset = offset;
        d.Length = length;
        d.Peer = to;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deliver(LocalPort to, ReadOnlySpan<byte> frame, TrafficCounters c)
    {
        if (to.Tap.Write(frame)) c.DeliveredFrames++;
        else c.Drops[(int)DropReason.EndpointWriteFailed]++;
    }

    private bool TryProxyArp(LocalPort port, ReadOnlySpan<byte> frame, TrafficCounters c)
    {
        if (!ArpPacket.TryParse(frame[Constants.EthernetHeaderLength..], out var arp) || arp.Operation != ArpPacket.OpRequest)
            return false;
        uint target = arp.TargetIp;
        if (target == arp.SenderIp) return false; // gratuitous ARP / address probe: let it through
        if (!port.Network.Neighbors.TryGet(target, out NeighborEntry n) || n.Mac == arp.SenderMac)
            return false;
        int len = ArpPacket.WriteReply(_scratch, n.Mac, target, arp.SenderMac, arp.SenderIp);
        if (port.Tap.Write(_scratch.AsSpan(0, len))) c.ProxyArpReplies++;
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

/// <summary>Adds learned FDB entries within the per-network bound. Off the common path (only on a new or moved MAC).</summary>
internal static class Learner
{
    public static void Learn(NetworkState net, FdbEntry entry, TrafficCounters c)
    {
        if (Volatile.Read(ref net.LearnedCount) >= Constants.MaxLearnedEntriesPerNetwork)
        {
            c.Drops[(int)DropReason.LearningTableFull]++;
            return;
        }
        bool added = false;
        net.Fdb.Update(b =>
        {
            bool existed = b.TryGet(entry.Mac, out var old);
            if (existed && old.Source is EntrySource.Static or EntrySource.Local or EntrySource.Gossip) return; // never override configuration or gossip
            b.Set(entry.Mac, entry);
            added = !existed;
        });
        if (added) Interlocked.Increment(ref net.LearnedCount);
    }

    public static void LearnNeighbor(NetworkState net, uint ip, ulong mac, long now, TrafficCounters c)
    {
        if (net.Neighbors.TryGet(ip, out var n))
        {
            if (n.Mac == mac) { if (n.Source == EntrySource.Learned) Volatile.Write(ref n.LastSeen, now); return; }
            if (n.Source != EntrySource.Learned) return;
        }
        if (net.Neighbors.Count >= Constants.MaxLearnedEntriesPerNetwork) { c.Drops[(int)DropReason.LearningTableFull]++; return; }
        net.Neighbors.SetUnless(ip, new NeighborEntry(ip, mac, EntrySource.Learned, now), old => old.Source != EntrySource.Learned);
    }
}
