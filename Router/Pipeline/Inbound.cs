using UserOverlay.Crypto;
using UserOverlay.Router.Capture;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Pipeline;

// Inbound flow (underlay → endpoint), run to completion on one pipeline worker:
//
//  1. When epoll reports the socket readable, the queue's worker receives a batch of datagrams
//     with one recvmmsg, each written at Headroom − 8 so the VXLAN header lands in the headroom
//     and the inner frame at Headroom.
//  2. ProcessDatagram accepts only what it must:
//     a. the source address is a peer VTEP (any source port: the kernel sends from a flow hash);
//     b. the datagram holds a VXLAN header with the I flag and a whole Ethernet header;
//     c. the VNI is one of this host's networks and the frame fits that network's MTU;
//     d. the source MAC is unicast and is not one of this host's own endpoints;
//     e. the network is not encrypted: plain VXLAN for an encrypted VNI is always dropped.
//     ESP takes its own entry (ProcessEsp): the SA is looked up by SPI, the ICV verified and the
//     anti-replay window checked before anything is decrypted in place; the VXLAN datagram inside
//     must carry a VNI of the network whose key opened it.
//     Anything else is dropped and counted by reason; the worker carries on.
//     A datagram that passes (a/c/e, or ESP that opens) stamps the peer as heard (PeerState.Heard).
//  3. Learn inner source MAC → the peer's VTEP, and ARP sender IP → MAC (for proxy ARP); a frame from a
//     MAC already learned behind that VTEP refreshes its entry (FdbEntry.Seen). Nothing else does.
//  4. Deliver: to the port that owns the destination MAC, or to every port of the network for
//     broadcast, multicast and unknown unicast. Never back to the underlay. Consecutive TCP
//     segments of one flow for an offload-capable port are coalesced (Coalescer) and written
//     as one super-frame when the receive round ends. Frames go through the worker's
//     TapWriteQueue: with io_uring the round's writes leave together, in order, when it ends
//     (FlushCoalesced), while the frames are still in the round's receive buffers.
//
// Not thread-safe: one instance per worker. Nothing here allocates.

/// <summary>The underlay → endpoint half of the switch, for one pipeline worker.</summary>
internal sealed class Inbound(ForwardingState state, int worker, Coalescer? coalescer = null, TapWriteQueue? writes = null)
{
    private readonly TapWriteQueue _writes = writes ?? new TapWriteQueue(); // without a ring: each frame written at once

    /// <summary>
    /// Writes the super-frames coalesced during this receive round and every frame queued for the TAPs. Call at the end
    /// of every round, before the round's buffers are received into again.
    /// </summary>
    public void FlushCoalesced()
    {
        coalescer?.Flush();
        _writes.Flush();
    }

    /// <summary>Handles one received datagram (VXLAN header + inner frame).</summary>
    public void ProcessDatagram(ref UnderlayDatagram d, long now)
    {
        TrafficCounters g = state.Global[worker];
        if (d.Truncated) { g.Drops[(int)DropReason.Oversized]++; return; }
        if (!state.Peers.TryGet(d.Peer.Address, out PeerState peer)) { g.Drops[(int)DropReason.UnknownSource]++; return; }

        ReadOnlySpan<byte> datagram = d.Buffer.Span.Slice(d.Offset, d.Length);
        switch (VxlanHeader.TryDecode(datagram, out uint vni))
        {
            case VxlanHeader.DecodeStatus.Truncated: g.Drops[(int)DropReason.Truncated]++; return;
            case VxlanHeader.DecodeStatus.MissingIFlag: g.Drops[(int)DropReason.BadVxlanFlags]++; return;
        }
        if (!state.Networks.TryGet(vni, out NetworkState net)) { g.Drops[(int)DropReason.UnknownVni]++; return; }
        if (net.Encrypted) { net.Counters[worker].Drops[(int)DropReason.PlaintextOnEncrypted]++; return; }
        peer.Accepted(worker, now); // the peer is alive: its learned entries stay (see ForwardingState.Sweep)

        ReadOnlySpan<byte> frame = datagram[VxlanHeader.Length..];
        DeliverFrame(net, frame, peer.Endpoint, now);
    }

    /// <summary>Handles one received ESP packet (SPI onward; the IPv4 or UDP header already stripped).</summary>
    public void ProcessEsp(ref UnderlayDatagram d, long now)
    {
        TrafficCounters g = state.Global[worker];
        if (d.Truncated) { g.Drops[(int)DropReason.Oversized]++; return; }
        if (!state.Peers.TryGet(d.Peer.Address, out PeerState peer)) { g.Drops[(int)DropReason.UnknownSource]++; return; }
        EspSecurityDatabase? esp = state.Esp;
        if (esp is null) { g.Drops[(int)DropReason.EspUnknownSpi]++; return; }

        Span<byte> packet = d.Buffer.Span.Slice(d.Offset, d.Length);
        EspOpenStatus status = esp.Open(packet, out int offset, out int length, out byte next, out InboundSa? sa);
        if (status != EspOpenStatus.Ok) { g.Drops[(int)EspDrop(status)]++; return; }
        peer.Accepted(worker, now); // authentic: the peer is alive, even when it sent only a dummy packet
        if (next == Esp.NextHeaderNone) return; // a dummy packet (RFC 4303 §2.6): authentic, carries nothing
        if (next != Esp.NextHeaderUdp || length < Constants.UdpHeaderLength + VxlanHeader.Length + Constants.EthernetHeaderLength)
        { g.Drops[(int)DropReason.EspNotVxlan]++; return; }

        ReadOnlySpan<byte> datagram = packet.Slice(offset + Constants.UdpHeaderLength, length - Constants.UdpHeaderLength);
        if (VxlanHeader.TryDecode(datagram, out uint vni) != VxlanHeader.DecodeStatus.Ok) { g.Drops[(int)DropReason.EspNotVxlan]++; return; }
        if (!state.Networks.TryGet(vni, out NetworkState net)) { g.Drops[(int)DropReason.UnknownVni]++; return; }
        // A network's key opens only that network's traffic: an SA of another key never injects into this VNI.
        if (!net.Encrypted || !string.Equals(sa!.KeyId, net.Options.Name, StringComparison.Ordinal))
        { g.Drops[(int)DropReason.EspWrongNetwork]++; return; }

        DeliverFrame(net, datagram[VxlanHeader.Length..], peer.Endpoint, now);
    }

    private static DropReason EspDrop(EspOpenStatus s) => s switch
    {
        EspOpenStatus.Truncated => DropReason.EspTruncated,
        EspOpenStatus.Malformed => DropReason.EspMalformed,
        EspOpenStatus.UnknownSpi => DropReason.EspUnknownSpi,
        EspOpenStatus.Replayed => DropReason.EspReplayed,
        EspOpenStatus.TooOld => DropReason.EspTooOld,
        EspOpenStatus.AuthenticationFailed => DropReason.EspAuthenticationFailed,
        EspOpenStatus.BadPadding => DropReason.EspBadPadding,
        _ => DropReason.EspMalformed,
    };

    /// <summary>Steps 2c–4 for an inner frame of <paramref name="net"/> that arrived from <paramref name="from"/>.</summary>
    public void DeliverFrame(NetworkState net, ReadOnlySpan<byte> frame, VtepEndpoint from, long now)
    {
        if (net.Captures is { } captures) CaptureTap.FromUnderlay(captures, frame, worker);
        TrafficCounters c = net.Counters[worker];
        c.RxFrames++;
        c.RxBytes += frame.Length;
        if (frame.Length > net.MaxFrameLength) { c.Drops[(int)DropReason.Oversized]++; return; }

        ulong src = EthernetFrame.Source(frame);
        ulong dst = EthernetFrame.Destination(frame);
        if (src == 0 || EthernetFrame.IsMulticast(src)) { c.Drops[(int)DropReason.BadSourceMac]++; return; }
        // Each host answers for its own gateway: nothing from the underlay is for it or from it (and it is never learned).
        if (net.GatewayMac != 0 && (dst == net.GatewayMac || src == net.GatewayMac)) { c.Drops[(int)DropReason.GatewayFromRemote]++; return; }

        if (net.Fdb.TryGet(src, out FdbEntry known))
        {
            if (known.Port is not null) { c.Drops[(int)DropReason.SpoofedSource]++; return; }
            if (known.Source == EntrySource.Learned)
            {
                if (known.Remote == from) known.Seen(now); // only what is received from the MAC refreshes its entry
                else if (state.Learning) Learner.Learn(net, new FdbEntry(src, EntrySource.Learned, null, from, now), c); // the MAC moved
            }
        }
        else if (state.Learning)
        {
            Learner.Learn(net, new FdbEntry(src, EntrySource.Learned, null, from, now), c);
        }

        if (state.Learning && EthernetFrame.EtherType(frame) == EthernetFrame.EtherTypeArp
            && ArpPacket.TryParse(frame[Constants.EthernetHeaderLength..], out var arp)
            && arp.SenderMac == src && arp.SenderIp != 0 && net.Options.Subnet.Contains(arp.SenderIp))
            Learner.LearnNeighbor(net, arp.SenderIp, src, now, c);

        if (!EthernetFrame.IsMulticast(dst) && net.Fdb.TryGet(dst, out FdbEntry target))
        {
            if (target.Port is { } port)
            {
                if (coalescer is not null && port.Tap.SupportsOffload && coalescer.Offer(port, frame, c)) c.DeliveredFrames++;
                else _writes.Deliver(port, frame, c);
            }
            else c.Drops[(int)DropReason.NotLocal]++;
            return;
        }

        PortList.View ports = net.Ports.Current;
        LocalPort?[] items = ports.Items;
        bool any = false;
        for (int i = 0; i < ports.Count; i++)
        {
            if (items[i] is not { } p) continue; // a port being detached
            _writes.Deliver(p, frame, c);
            any = true;
        }
        if (any) c.FloodedFrames++;
        else c.Drops[(int)DropReason.NoDestination]++;
    }
}
