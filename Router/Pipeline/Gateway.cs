using System.Buffers.Binary;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Pipeline;

// The gateway of a network (NetworkOptions.Gateway), as each host's router plays it for its own local endpoints:
//
//  1. ARP: a broadcast "who has <gateway>?" is answered by proxy ARP like any neighbour (the router puts a local
//     neighbour entry gateway → gateway MAC in the table when the network is added). A unicast ARP request to the
//     gateway MAC (the kernel's reachability probe) arrives here and gets the same answer.
//  2. ICMP echo to the gateway address is answered: the request with MACs and addresses swapped, type 0, both
//     checksums recomputed. Fragments, options-bearing or damaged packets (bad checksums) are not answered.
//  3. Anything else goes to the IGatewayHandler (the seam for a DNS responder); without one, or when it declines,
//     the frame is dropped and counted (gateway_unhandled).
//
// The gateway MAC is never in the FDB, never flooded and never learned: Outbound takes frames for it before the FDB
// lookup, Inbound drops any from the underlay. Not thread-safe: one instance per Outbound (per worker). No allocation.

/// <summary>Answers what a local endpoint sends to its network's gateway MAC (see the flow above).</summary>
internal sealed class Gateway(ForwardingState state, int worker, TapWriteQueue writes)
{
    private const int IcmpEchoReply = 0, IcmpEchoRequest = 8;
    private const byte ProtoIcmp = 1;
    private readonly byte[] _reply = new byte[Constants.MaxFrameLength];

    /// <summary>Handles a frame from <paramref name="port"/> addressed to its network's gateway MAC; the frame is borrowed for the call.</summary>
    public void Handle(LocalPort port, ReadOnlySpan<byte> frame)
    {
        NetworkState net = port.Network;
        TrafficCounters c = net.Counters[worker];
        int length = EthernetFrame.EtherType(frame) switch
        {
            EthernetFrame.EtherTypeArp => AnswerArp(net, frame),
            EthernetFrame.EtherTypeIPv4 => AnswerEcho(net, frame),
            _ => -1,
        };
        if (length < 0 && state.GatewayHandler is { } handler)
            length = handler.OnFrame(net.GatewayInfo!, frame, _reply.AsSpan(0, Math.Min(_reply.Length, net.MaxFrameLength)));
        if (length < 0) { c.Drops[(int)DropReason.GatewayUnhandled]++; return; }
        if (length == 0) return;
        if (writes.WriteNow(port, _reply.AsSpan(0, length))) c.GatewayReplies++; // the reply buffer is reused: written at once
        else c.Drops[(int)DropReason.EndpointWriteFailed]++;
    }

    private int AnswerArp(NetworkState net, ReadOnlySpan<byte> frame)
    {
        if (!ArpPacket.TryParse(frame[Constants.EthernetHeaderLength..], out var arp) || arp.Operation != ArpPacket.OpRequest
            || arp.TargetIp != net.Gateway)
            return -1;
        return ArpPacket.WriteReply(_reply, net.GatewayMac, net.Gateway, arp.SenderMac, arp.SenderIp);
    }

    private int AnswerEcho(NetworkState net, ReadOnlySpan<byte> frame)
    {
        ReadOnlySpan<byte> ip = frame[Constants.EthernetHeaderLength..];
        if (ip.Length < Constants.Ipv4HeaderLength || ip[0] != 0x45) return -1; // IPv4 without options
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total < Constants.Ipv4HeaderLength + 8 || total > ip.Length) return -1;
        if ((BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0) return -1; // a fragment (MF or an offset)
        if (ip[9] != ProtoIcmp || BinaryPrimitives.ReadUInt32BigEndian(ip[16..]) != net.Gateway) return -1;
        ReadOnlySpan<byte> icmp = ip[Constants.Ipv4HeaderLength..total];
        if (icmp[0] != IcmpEchoRequest || icmp[1] != 0) return -1;
        if (Checksum.Fold(Checksum.Sum(ip[..Constants.Ipv4HeaderLength])) != 0xFFFF || Checksum.Fold(Checksum.Sum(icmp)) != 0xFFFF)
            return -1; // damaged: a host would not answer it either

        Span<byte> r = _reply;
        EthernetFrame.WriteMac(r, EthernetFrame.Source(frame));
        EthernetFrame.WriteMac(r[EthernetFrame.SourceOffset..], net.GatewayMac);
        BinaryPrimitives.WriteUInt16BigEndian(r[EthernetFrame.EtherTypeOffset..], EthernetFrame.EtherTypeIPv4);
        Span<byte> rip = r[Constants.EthernetHeaderLength..];
        ip[..total].CopyTo(rip);
        rip[8] = 64; // TTL
        ip[12..16].CopyTo(rip[16..]); // destination: the requester
        BinaryPrimitives.WriteUInt32BigEndian(rip[12..], net.Gateway);
        BinaryPrimitives.WriteUInt16BigEndian(rip[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(rip[10..], Checksum.Complement(Checksum.Sum(rip[..Constants.Ipv4HeaderLength])));
        Span<byte> ricmp = rip[Constants.Ipv4HeaderLength..total];
        ricmp[0] = IcmpEchoReply;
        BinaryPrimitives.WriteUInt16BigEndian(ricmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ricmp[2..], Checksum.Complement(Checksum.Sum(ricmp)));
        return Constants.EthernetHeaderLength + total;
    }
}
