using UserOverlay.Router.Testing;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>Switching decisions of whole routers over in-memory TAP and underlay doubles.</summary>
public class SwitchingTests : InMemoryHostsTest
{
    private static readonly MacAddress C1 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11"));
    private static readonly MacAddress C2 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.12"));
    private static readonly MacAddress C3 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.13"));

    private static List<(VtepEndpoint To, byte[] Payload)> Drain(InMemoryPlatform p)
    {
        var l = new List<(VtepEndpoint, byte[])>();
        while (p.Underlay!.Sent.TryDequeue(out var x)) l.Add(x);
        return l;
    }

    [Fact]
    public async Task Arp_then_unicast_across_two_hosts_uses_the_learned_VTEP()
    {
        var (ra, a) = Hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var (rb, b) = Hosts.Add(2, [1, 3], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);

        // c1 asks for c2: unknown to A, so the request is flooded to both peers (host 3 is absent).
        a.Tap("c1").Inject(Packets.ArpRequest(C1, "198.18.0.11", "198.18.0.12"));
        var atC2 = b.Tap("c2").WaitTake(Wait);
        Assert.NotNull(atC2);
        var arp = Packets.Parse(atC2).Extract<PacketDotNet.ArpPacket>();
        Assert.Equal("198.18.0.12", arp.TargetProtocolAddress.ToString());
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 2, Wait); // host 2 may have it before the send to host 3 is recorded
        var sent = Drain(a);
        Assert.Equal(new[] { Vtep(2), Vtep(3) }, sent.Select(s => s.To).OrderBy(v => v.Address).ToArray());
        Assert.All(sent, s => Assert.Equal(4097u, Packets.VniOf(s.Payload)));

        // c2 answers: B learned c1 → host 1 from the request, so the reply goes to host 1 only.
        b.Tap("c2").Inject(Packets.ArpReply(C2, "198.18.0.12", C1, "198.18.0.11"));
        var reply = a.Tap("c1").WaitTake(Wait);
        Assert.NotNull(reply);
        Assert.Equal(PacketDotNet.ArpOperation.Response, Packets.Parse(reply).Extract<PacketDotNet.ArpPacket>().Operation);
        Assert.Equal([Vtep(1)], Drain(b).Select(s => s.To));

        // Unicast c1 → c2: A learned c2 → host 2; exactly one datagram, to host 2.
        var udp = Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 100);
        a.Tap("c1").Inject(udp);
        Assert.Equal(udp, b.Tap("c2").WaitTake(Wait));
        Assert.Equal([Vtep(2)], Drain(a).Select(s => s.To));

        var fdb = ra.GetStatus().Net("blue").Fdb;
        Assert.Contains(fdb, e => e.Mac == C2.ToString() && e.Destination == Vtep(2).ToString() && e.Source == "learned");
        Assert.Contains(fdb, e => e.Mac == C1.ToString() && e.Source == "local");
        Assert.Contains(rb.GetStatus().Net("blue").Fdb, e => e.Mac == C1.ToString() && e.Destination == Vtep(1).ToString());
    }

    [Fact]
    public void Broadcast_goes_to_every_peer_and_every_other_local_port_never_back_to_its_source()
    {
        var (ra, a) = Hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")]);
        var frame = Packets.Udp4(C1, MacAddress.Broadcast, "198.18.0.11", "198.18.0.255");
        a.Tap("c1").Inject(frame);
        Assert.Equal(frame, a.Tap("c3").WaitTake(Wait));
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 2, Wait);
        var sent = Drain(a);
        Assert.Equal(new[] { Vtep(2), Vtep(3) }, sent.Select(s => s.To).OrderBy(v => v.Address).ToArray());
        Assert.All(sent, s => Assert.Equal(frame, s.Payload[8..]));
        Assert.Null(a.Tap("c1").WaitTake(Quiet));
        var c = ra.GetStatus().Net("blue").Counters;
        Assert.Equal(1, c.FloodedFrames);
        Assert.Equal(2, c.EncapsulatedDatagrams);
    }

    [Fact]
    public void Unknown_unicast_is_flooded_known_remote_unicast_is_not()
    {
        var (_, a) = Hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "c1", "198.18.0.11")],
            o => o with { StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = C3, Vtep = Vtep(3) }] });
        a.Tap("c1").Inject(Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12"));
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 2, Wait);
        Assert.Equal(new[] { Vtep(2), Vtep(3) }, Drain(a).Select(s => s.To).OrderBy(v => v.Address).ToArray());
        a.Tap("c1").Inject(Packets.Udp4(C1, C3, "198.18.0.11", "198.18.0.13"));
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 1, Wait);
        Thread.Sleep(100);
        Assert.Equal([Vtep(3)], Drain(a).Select(s => s.To));
    }

    [Fact]
    public void Proxy_arp_answers_local_static_and_learned_addresses_without_a_flood()
    {
        var c9 = MacAddress.Parse("02:42:c6:12:00:63");
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")],
            o => o with { StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = c9, Vtep = Vtep(2), Address = Ip("198.18.0.99") }] });

        foreach (var (ip, mac) in new[] { ("198.18.0.13", C3), ("198.18.0.99", c9) })
        {
            a.Tap("c1").Inject(Packets.ArpRequest(C1, "198.18.0.11", ip));
            var reply = a.Tap("c1").WaitTake(Wait);
            Assert.NotNull(reply);
            var eth = Packets.Parse(reply);
            var arp = eth.Extract<PacketDotNet.ArpPacket>();
            Assert.Equal(PacketDotNet.ArpOperation.Response, arp.Operation);
            Assert.Equal(ip, arp.SenderProtocolAddress.ToString());
            Assert.Equal(Packets.Phys(mac), arp.SenderHardwareAddress);
            Assert.Equal("198.18.0.11", arp.TargetProtocolAddress.ToString());
            Assert.Equal(Packets.Phys(C1), eth.DestinationHardwareAddress);
        }
        Assert.Null(a.Tap("c3").WaitTake(Quiet)); // not flooded to the other port either
        Assert.Empty(Drain(a));
        Assert.Equal(2, ra.GetStatus().Net("blue").Counters.ProxyArpReplies);

        // A gratuitous ARP (sender = target) is not answered but flooded.
        a.Tap("c1").Inject(Packets.ArpRequest(C1, "198.18.0.11", "198.18.0.11"));
        Assert.NotNull(a.Tap("c3").WaitTake(Wait));
    }

    [Fact]
    public void Frames_between_local_endpoints_stay_on_the_host()
    {
        var (_, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")]);
        var f = Packets.Udp4(C1, C3, "198.18.0.11", "198.18.0.13", 1000);
        a.Tap("c1").Inject(f);
        Assert.Equal(f, a.Tap("c3").WaitTake(Wait));
        Thread.Sleep(100);
        Assert.Empty(Drain(a));
    }

    [Fact]
    public async Task Learned_entries_age_out_and_unicast_floods_again()
    {
        var (ra, a) = Hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "c1", "198.18.0.11")],
            o => o with { FdbAging = TimeSpan.FromMilliseconds(400) });
        var remote = MacAddress.Parse("02:00:00:00:99:01");
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(remote, C1, "198.18.0.50", "198.18.0.11")));
        Assert.NotNull(a.Tap("c1").WaitTake(Wait));
        Assert.Contains(ra.GetStatus().Net("blue").Fdb, e => e.Mac == remote.ToString() && e.Source == "learned" && e.Destination == Vtep(2).ToString());
        a.Tap("c1").Inject(Packets.Udp4(C1, remote, "198.18.0.11", "198.18.0.50"));
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 1, Wait);
        Thread.Sleep(50);
        Assert.Equal([Vtep(2)], Drain(a).Select(s => s.To));

        await Eventually.True(() => ra.GetStatus().Net("blue").Fdb.All(e => e.Mac != remote.ToString()), TimeSpan.FromSeconds(5), "the learned entry to age out");
        a.Tap("c1").Inject(Packets.Udp4(C1, remote, "198.18.0.11", "198.18.0.50"));
        SpinWait.SpinUntil(() => a.Underlay!.Sent.Count >= 2, Wait);
        Assert.Equal(2, Drain(a).Count);
    }

    [Fact]
    public void Hostile_datagrams_are_dropped_counted_and_forwarding_continues()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var stranger = new VtepEndpoint(Ip("192.0.2.66"), 4789);
        var good = Packets.Udp4(MacAddress.Parse("02:00:00:00:00:02"), C1, "198.18.0.12", "198.18.0.11");
        var net = Hosts.Underlay;

        net.Deliver(stranger, Vtep(1), Packets.Vxlan(4097, good));                          // unknown source
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, good, flags: 0));                 // no I flag
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, good)[..20]);                     // truncated
        net.Deliver(Vtep(2), Vtep(1), new byte[] { 1, 2, 3 });                              // garbage
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(999, good));                            // unknown VNI
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(MacAddress.Parse("02:00:00:00:00:02"), C1, "198.18.0.12", "198.18.0.11", 1500))); // oversized for MTU 1450
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(C1, C1, "198.18.0.11", "198.18.0.11")));        // spoofs a local MAC
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(MacAddress.Broadcast, C1, "198.18.0.12", "198.18.0.11"))); // multicast source
        net.Deliver(Vtep(2), Vtep(1), new byte[70_000]);                                    // larger than any buffer (and any UDP datagram)
        net.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, good));                           // and one good one

        Assert.Equal(good, a.Tap("c1").WaitTake(Wait));
        Assert.Null(a.Tap("c1").WaitTake(Quiet)); // nothing else got through
        var s = ra.GetStatus();
        Assert.Equal(1, s.GlobalDrop("unknown_source"));
        Assert.Equal(1, s.GlobalDrop("bad_vxlan_flags"));
        Assert.Equal(2, s.GlobalDrop("truncated"));
        Assert.Equal(1, s.GlobalDrop("unknown_vni"));
        Assert.Equal(1, s.GlobalDrop("oversized"));
        Assert.Equal(1, s.Drop("blue", "oversized"));
        Assert.Equal(1, s.Drop("blue", "spoofed_source"));
        Assert.Equal(1, s.Drop("blue", "bad_source_mac"));
        Assert.Equal(1, s.Net("blue").Counters.DeliveredFrames);
        Assert.Empty(Drain(a)); // nothing from the underlay went back to it
    }

    [Fact]
    public void Networks_with_the_same_subnet_never_exchange_frames()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue, Red], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("red", "r1", "198.18.0.12")]);
        var (rb, b) = Hosts.Add(2, [1], [Blue, Red], [Endpoint("blue", "c2", "198.18.0.12"), Endpoint("red", "r2", "198.18.0.11")]);

        var bcast = Packets.ArpRequest(C1, "198.18.0.11", "198.18.0.12");
        a.Tap("c1").Inject(bcast);
        Assert.Equal(bcast, b.Tap("c2").WaitTake(Wait));
        Assert.Null(a.Tap("r1").WaitTake(Quiet));
        Assert.Null(b.Tap("r2").WaitTake(Quiet));
        Assert.All(Drain(a), s => Assert.Equal(4097u, Packets.VniOf(s.Payload)));

        // A red frame addressed to blue's MAC stays in red: flooded to red ports only.
        var redToBlueMac = Packets.Udp4(C2, C1, "198.18.0.12", "198.18.0.11");
        a.Tap("r1").Inject(redToBlueMac);
        Assert.Equal(redToBlueMac, b.Tap("r2").WaitTake(Wait));
        Assert.Null(b.Tap("c2").WaitTake(Quiet));
        Assert.Null(a.Tap("c1").WaitTake(Quiet));
        Assert.All(Drain(a), s => Assert.Equal(4098u, Packets.VniOf(s.Payload)));
        Assert.Equal(0, ra.GetStatus().Net("red").Counters.ProxyArpReplies);
    }

    [Fact]
    public void A_failing_endpoint_write_is_counted()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        a.Tap("c1").AcceptWrites = false;
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4097, Packets.Udp4(C2, C1, "198.18.0.12", "198.18.0.11")));
        SpinWait.SpinUntil(() => ra.GetStatus().Drop("blue", "endpoint_write_failed") == 1, Wait);
        Assert.Equal(1, ra.GetStatus().Drop("blue", "endpoint_write_failed"));
    }
}
