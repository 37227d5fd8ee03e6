using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>The interface a control plane (gossip) uses to feed the router.</summary>
public class RemoteEndpointSinkTests : InMemoryHostsTest
{
    private static List<VtepEndpoint> SentTo(InMemoryPlatform p)
    {
        Thread.Sleep(100);
        var l = new List<VtepEndpoint>();
        while (p.Underlay!.Sent.TryDequeue(out var x)) l.Add(x.To);
        return l;
    }

    [Fact]
    public void Gossip_entries_drive_unicast_proxy_arp_flooding_and_acceptance()
    {
        // No static peers at all: everything comes from the sink.
        var (r, a) = Hosts.Add(1, [], [Blue], [Endpoint("blue", "c1", "198.18.0.11")], o => o with { Learning = false });
        var c1 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11"));
        var remote = MacAddress.Parse("02:00:c6:12:00:0c");
        Assert.Single(r.LocalEndpoints);
        Assert.Equal(c1, r.LocalEndpoints[0].Mac);

        Assert.True(r.SetRemoteEndpoint("blue", remote, Ip("198.18.0.12"), Vtep(2)));
        Assert.False(r.SetRemoteEndpoint("nosuch", remote, null, Vtep(2)));
        Assert.Contains(r.GetStatus().Net("blue").Fdb, e => e.Mac == remote.ToString() && e.Source == "gossip" && e.Destination == Vtep(2).ToString());

        // ARP for the gossiped address is answered locally; unicast goes to its VTEP only.
        a.Tap("c1").Inject(Packets.ArpRequest(c1, "198.18.0.11", "198.18.0.12"));
        var reply = a.Tap("c1").WaitTake(Wait);
        Assert.NotNull(reply);
        Assert.Equal(Packets.Phys(remote), Packets.Parse(reply).Extract<PacketDotNet.ArpPacket>().SenderHardwareAddress);
        a.Tap("c1").Inject(Packets.Udp4(c1, remote, "198.18.0.11", "198.18.0.12"));
        Assert.Equal([Vtep(2)], SentTo(a));

        // Broadcast goes to the flood list, which the sink sets per network.
        a.Tap("c1").Inject(Packets.Udp4(c1, MacAddress.Broadcast, "198.18.0.11", "198.18.0.255"));
        Assert.Empty(SentTo(a)); // no flood list yet: nowhere to go
        Assert.True(r.SetFloodList("blue", [Vtep(2), Vtep(3), Vtep(1)])); // our own VTEP is ignored
        a.Tap("c1").Inject(Packets.Udp4(c1, MacAddress.Broadcast, "198.18.0.11", "198.18.0.255"));
        Assert.Equal(new[] { Vtep(2), Vtep(3) }, SentTo(a).OrderBy(v => v.Address));

        // VXLAN is accepted only from dynamic peers once set.
        var inbound = Packets.Vxlan(4097, Packets.Udp4(remote, c1, "198.18.0.12", "198.18.0.11"));
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), inbound);
        Assert.Null(a.Tap("c1").WaitTake(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(1, r.GetStatus().GlobalDrop("unknown_source"));
        r.SetDynamicPeers([Vtep(2)]);
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), inbound);
        Assert.NotNull(a.Tap("c1").WaitTake(Wait));
        r.SetDynamicPeers([]);
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), inbound);
        Assert.Null(a.Tap("c1").WaitTake(TimeSpan.FromMilliseconds(300)));

        // Removal: no more proxy answer, unicast floods (to the flood list) again.
        Assert.True(r.RemoveRemoteEndpoint("blue", remote, Ip("198.18.0.12")));
        Assert.DoesNotContain(r.GetStatus().Net("blue").Fdb, e => e.Mac == remote.ToString());
        a.Tap("c1").Inject(Packets.ArpRequest(c1, "198.18.0.11", "198.18.0.12"));
        Assert.Null(a.Tap("c1").WaitTake(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(2, SentTo(a).Count);
    }

    [Fact]
    public void A_gossip_entry_never_replaces_a_local_endpoint()
    {
        var (r, _) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var c1 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11"));
        r.SetRemoteEndpoint("blue", c1, Ip("198.18.0.11"), Vtep(2));
        var s = r.GetStatus().Net("blue");
        Assert.Contains(s.Fdb, e => e.Mac == c1.ToString() && e.Source == "local");
        Assert.Contains(s.Neighbors, n => n.Address == "198.18.0.11" && n.Source == "local");
    }
}
