using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>A network's gateway as each host's router plays it: ARP and ICMP echo answered locally, the seam for more, nothing across hosts.</summary>
public class GatewayTests : InMemoryHostsTest
{
    private static readonly NetworkOptions Gw = Blue with { Gateway = Ip("198.18.0.1") };
    private static readonly MacAddress C1 = MacAddress.FromIPv4(IPAddress.Parse("198.18.0.11"));
    private static readonly MacAddress GwMac = MacAddress.Parse("02:75:6f:00:10:01"); // the prefix, then VNI 4097 = 0x001001

    private static byte[] EchoRequest(MacAddress src, MacAddress dst, string srcIp, string dstIp, ushort id, ushort seq, int payload)
    {
        var data = Enumerable.Range(0, payload).Select(i => (byte)(i * 7)).ToArray();
        var icmpBytes = new byte[8 + payload];
        icmpBytes[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(icmpBytes.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(icmpBytes.AsSpan(6), seq);
        data.CopyTo(icmpBytes, 8);
        var icmp = new IcmpV4Packet(new PacketDotNet.Utils.ByteArraySegment(icmpBytes));
        icmp.UpdateIcmpChecksum();
        var ip = new IPv4Packet(IPAddress.Parse(srcIp), IPAddress.Parse(dstIp)) { PayloadPacket = icmp, TimeToLive = 64, Protocol = PacketDotNet.ProtocolType.Icmp };
        var eth = new EthernetPacket(Packets.Phys(src), Packets.Phys(dst), EthernetType.IPv4) { PayloadPacket = ip };
        ip.UpdateCalculatedValues();
        ip.UpdateIPChecksum();
        return eth.Bytes;
    }

    [Fact]
    public void The_gateway_MAC_is_the_documented_prefix_and_the_VNI()
    {
        Assert.Equal(GwMac, Constants.GatewayMac(4097));
        Assert.False(GwMac.IsMulticast);
        Assert.NotEqual(Constants.GatewayMac(4097), Constants.GatewayMac(4098));
    }

    [Fact]
    public void Arp_for_the_gateway_is_answered_broadcast_and_unicast_and_nothing_is_flooded()
    {
        var (r, a) = Hosts.Add(1, [2], [Gw], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")]);
        var status = r.GetStatus().Net("blue");
        Assert.Equal("198.18.0.1", status.Gateway);
        Assert.Equal(GwMac.ToString(), status.GatewayMac);
        Assert.DoesNotContain(status.Fdb, e => e.Mac == GwMac.ToString()); // never in the FDB

        foreach (var request in new[]
        {
            Packets.ArpRequest(C1, "198.18.0.11", "198.18.0.1"),
            Unicast(Packets.ArpRequest(C1, "198.18.0.11", "198.18.0.1"), GwMac), // the kernel's reachability probe
        })
        {
            a.Tap("c1").Inject(request);
            var reply = a.Tap("c1").WaitTake(Wait);
            Assert.NotNull(reply);
            Assert.Equal(42, reply.Length);
            var eth = Packets.Parse(reply);
            Assert.Equal(Packets.Phys(C1), eth.DestinationHardwareAddress);
            Assert.Equal(Packets.Phys(GwMac), eth.SourceHardwareAddress);
            var arp = eth.Extract<PacketDotNet.ArpPacket>();
            Assert.Equal(ArpOperation.Response, arp.Operation);
            Assert.Equal("198.18.0.1", arp.SenderProtocolAddress.ToString());
            Assert.Equal(Packets.Phys(GwMac), arp.SenderHardwareAddress);
            Assert.Equal("198.18.0.11", arp.TargetProtocolAddress.ToString());
            Assert.Equal(Packets.Phys(C1), arp.TargetHardwareAddress);
        }
        Assert.Null(a.Tap("c3").WaitTake(Quiet));
        Assert.Empty(Drain(a.Underlay!));
        var c = r.GetStatus().Net("blue").Counters;
        Assert.Equal(1, c.ProxyArpReplies);
        Assert.Equal(1, c.GatewayReplies);
    }

    private static byte[] Unicast(byte[] frame, MacAddress to)
    {
        to.Write(frame);
        return frame;
    }

    [Fact]
    public void Echo_to_the_gateway_is_answered_with_the_request_mirrored_and_valid_checksums()
    {
        var (r, a) = Hosts.Add(1, [2], [Gw], [Endpoint("blue", "c1", "198.18.0.11")]);
        var request = EchoRequest(C1, GwMac, "198.18.0.11", "198.18.0.1", id: 0x1234, seq: 7, payload: 56);
        a.Tap("c1").Inject(request);
        var reply = a.Tap("c1").WaitTake(Wait);
        Assert.NotNull(reply);
        Assert.Equal(request.Length, reply.Length);

        var eth = Packets.Parse(reply);
        Assert.Equal(Packets.Phys(C1), eth.DestinationHardwareAddress);
        Assert.Equal(Packets.Phys(GwMac), eth.SourceHardwareAddress);
        var ip = eth.Extract<IPv4Packet>();
        Assert.Equal("198.18.0.1", ip.SourceAddress.ToString());
        Assert.Equal("198.18.0.11", ip.DestinationAddress.ToString());
        Assert.True(ip.ValidIPChecksum);
        Assert.Equal(0, OnesComplement(reply.AsSpan(14, 20)));   // header checksum verifies
        var icmp = reply.AsSpan(34);
        Assert.Equal(0, icmp[0]);                                  // echo reply
        Assert.Equal(0, icmp[1]);
        Assert.Equal(0, OnesComplement(icmp));                     // ICMP checksum verifies
        Assert.Equal(request.AsSpan(34 + 4).ToArray(), icmp[4..].ToArray()); // id, sequence and data as sent
        Assert.Equal(1, r.GetStatus().Net("blue").Counters.GatewayReplies);
        Assert.Empty(Drain(a.Underlay!));

        // A damaged request (bad ICMP checksum) and an echo to another address behind the gateway MAC are not answered.
        var damaged = (byte[])request.Clone();
        damaged[^1] ^= 0xFF;
        a.Tap("c1").Inject(damaged);
        a.Tap("c1").Inject(EchoRequest(C1, GwMac, "198.18.0.11", "198.18.1.50", 1, 1, 8));
        Assert.Null(a.Tap("c1").WaitTake(Quiet));
        SpinWait.SpinUntil(() => r.GetStatus().Drop("blue", "gateway_unhandled") == 2, Wait);
        Assert.Equal(2, r.GetStatus().Drop("blue", "gateway_unhandled"));
    }

    private static int OnesComplement(ReadOnlySpan<byte> b)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < b.Length; i += 2) sum += (uint)(b[i] << 8 | b[i + 1]);
        if ((b.Length & 1) != 0) sum += (uint)(b[^1] << 8);
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (int)(~sum & 0xFFFF);
    }

    private sealed class EchoHandler : IGatewayHandler
    {
        public GatewayNetwork? Seen;
        public int Frames;

        // Answers a UDP datagram to the gateway's port 53 with its payload reversed; leaves everything else.
        public int OnFrame(GatewayNetwork network, ReadOnlySpan<byte> frame, Span<byte> reply)
        {
            Seen = network;
            Interlocked.Increment(ref Frames);
            if (frame.Length < 42 || frame[23] != 17 || BinaryPrimitives.ReadUInt16BigEndian(frame[36..]) != 53) return -1;
            frame.CopyTo(reply);
            frame[6..12].CopyTo(reply);          // to the sender
            network.Mac.Write(reply[6..]);       // from the gateway
            reply[42..frame.Length].Reverse();
            return frame.Length;
        }
    }

    [Fact]
    public void Other_frames_for_the_gateway_go_to_the_handler_seam_which_may_answer()
    {
        var (r, a) = Hosts.Add(1, [2], [Gw], [Endpoint("blue", "c1", "198.18.0.11")]);
        var dns = Packets.Udp4(C1, GwMac, "198.18.0.11", "198.18.0.1", 12, dstPort: 53);

        a.Tap("c1").Inject(dns); // no handler yet: dropped and counted
        SpinWait.SpinUntil(() => r.GetStatus().Drop("blue", "gateway_unhandled") == 1, Wait);
        Assert.Equal(1, r.GetStatus().Drop("blue", "gateway_unhandled"));

        var handler = new EchoHandler();
        r.GatewayHandler = handler;
        a.Tap("c1").Inject(dns);
        var reply = a.Tap("c1").WaitTake(Wait);
        Assert.NotNull(reply);
        Assert.Equal(new GatewayNetwork("blue", 4097, Ip("198.18.0.1"), GwMac, 1450), handler.Seen);
        Assert.Equal(Packets.Phys(C1), Packets.Parse(reply).DestinationHardwareAddress);
        Assert.Equal(dns.AsSpan(42).ToArray().Reverse(), reply.AsSpan(42).ToArray());
        a.Tap("c1").Inject(Packets.Udp4(C1, GwMac, "198.18.0.11", "198.18.0.1", 12, dstPort: 9)); // declined
        SpinWait.SpinUntil(() => r.GetStatus().Drop("blue", "gateway_unhandled") == 2, Wait);
        Assert.Equal(2, r.GetStatus().Drop("blue", "gateway_unhandled"));
        Assert.Equal(2, handler.Frames);
        Assert.Empty(Drain(a.Underlay!));
    }

    [Fact]
    public void Frames_from_other_hosts_to_or_from_the_gateway_MAC_are_dropped_and_it_is_never_learned_or_gossiped()
    {
        var (r, a) = Hosts.Add(1, [2], [Gw], [Endpoint("blue", "c1", "198.18.0.11")]);
        var remote = MacAddress.Parse("02:00:c6:12:00:0c");
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, EchoRequest(remote, GwMac, "198.18.0.12", "198.18.0.1", 1, 1, 8)));
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(GwMac, MacAddress.Broadcast, "198.18.0.1", "198.18.0.255")));
        Assert.False(r.SetRemoteEndpoint("blue", GwMac, Ip("198.18.0.1"), Vtep(2)));
        SpinWait.SpinUntil(() => r.GetStatus().Drop("blue", "gateway_from_remote") == 2, Wait);
        var s = r.GetStatus().Net("blue");
        Assert.Equal(2, s.Counters.Drops["gateway_from_remote"]);
        Assert.Null(a.Tap("c1").WaitTake(Quiet));
        Assert.DoesNotContain(s.Fdb, e => e.Mac == GwMac.ToString());
        Assert.Contains(s.Neighbors, n => n.Address == "198.18.0.1" && n.Mac == GwMac.ToString() && n.Source == "local");
        Assert.Empty(Drain(a.Underlay!)); // and nothing answered to the underlay

        // A local endpoint that sends from the gateway MAC is refused too.
        a.Tap("c1").Inject(Packets.Udp4(GwMac, MacAddress.Broadcast, "198.18.0.1", "198.18.0.255"));
        SpinWait.SpinUntil(() => r.GetStatus().Drop("blue", "spoofed_source") == 1, Wait);
        Assert.Equal(1, r.GetStatus().Drop("blue", "spoofed_source"));
        Assert.Empty(Drain(a.Underlay!));
    }

    [Fact]
    public void Internal_is_recorded_and_no_endpoint_gets_more_than_its_subnet()
    {
        var (r, a) = Hosts.Add(1, [2], [Gw, Red with { Vni = 4098, Gateway = Ip("198.18.0.1"), Internal = true }, Blue with { Name = "plain", Vni = 4100 }],
            [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("red", "r1", "198.18.0.11"), Endpoint("plain", "p1", "198.18.0.11")]);
        Assert.False(r.GetStatus().Net("blue").Internal);
        Assert.True(r.GetStatus().Net("red").Internal);
        Assert.True(r.Networks.Single(n => n.Name == "red").Internal);
        // Every endpoint gets its address with the subnet's prefix (its one route), gateway or not, internal or not.
        Assert.All(a.LiveRequests, q => Assert.Equal(24, q.PrefixLength));
        Assert.Equal("02:75:6f:00:10:02", r.GetStatus().Net("red").GatewayMac);
    }
}
