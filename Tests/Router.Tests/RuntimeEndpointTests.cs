using System.Net;
using UserOverlay.Crypto;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>Networks and endpoints added and removed while routers run, over the in-memory doubles (real pipeline threads).</summary>
public class RuntimeEndpointTests : InMemoryHostsTest
{
    private static readonly NetworkOptions Green = new() { Name = "green", Vni = 4099, Subnet = new Ipv4Prefix(Ip("198.18.1.0"), 24) };
    private static MacAddress MacOf(string ip) => MacAddress.FromIPv4(IPAddress.Parse(ip));

    [Fact]
    public void A_network_and_endpoints_added_at_run_time_forward_on_the_host_and_across_hosts()
    {
        var (ra, a) = Hosts.Add(1, [2], [], []);
        var (rb, b) = Hosts.Add(2, [1], [Green], [Endpoint("green", "g2", "198.18.1.12")]);
        Assert.Empty(ra.Networks);
        Assert.Empty(ra.Endpoints);

        ra.AddNetwork(Green);
        Assert.Equal([Green], ra.Networks);
        var info = ra.AttachEndpoint(Endpoint("green", "g1", "198.18.1.11"));
        Assert.Equal(new LocalEndpointInfo("green", 4099, MacOf("198.18.1.11"), Ip("198.18.1.11"), 24), info);
        ra.AttachEndpoint(Endpoint("green", "g3", "198.18.1.13"));
        Assert.Equal(["g1", "g3"], ra.Endpoints.Select(e => e.Netns));
        Assert.Equal(2, ra.LocalEndpoints.Count);
        var req = a.Requests.First(r => r.Netns == "g1");
        Assert.Equal((MacOf("198.18.1.11"), 1450, Ip("198.18.1.11"), 24), (req.Mac, req.Mtu, req.Address, req.PrefixLength));

        // Same host: g1 → g3 by proxy ARP, then unicast, nothing on the underlay.
        a.Tap("g1").Inject(Packets.ArpRequest(MacOf("198.18.1.11"), "198.18.1.11", "198.18.1.13"));
        var arp = a.Tap("g1").WaitTake(Wait);
        Assert.NotNull(arp);
        Assert.Equal(Packets.Phys(MacOf("198.18.1.13")), Packets.Parse(arp).Extract<PacketDotNet.ArpPacket>().SenderHardwareAddress);
        var local = Packets.Udp4(MacOf("198.18.1.11"), MacOf("198.18.1.13"), "198.18.1.11", "198.18.1.13", 200);
        a.Tap("g1").Inject(local);
        Assert.Equal(local, a.Tap("g3").WaitTake(Wait));
        Assert.Empty(Drain(a.Underlay!));

        // Across hosts: a broadcast reaches host 2's start-time endpoint, which answers by learned unicast.
        var bcast = Packets.Udp4(MacOf("198.18.1.11"), MacAddress.Broadcast, "198.18.1.11", "198.18.1.255");
        a.Tap("g1").Inject(bcast);
        Assert.Equal(bcast, b.Tap("g2").WaitTake(Wait));
        Assert.Equal(bcast, a.Tap("g3").WaitTake(Wait));
        var back = Packets.Udp4(MacOf("198.18.1.12"), MacOf("198.18.1.11"), "198.18.1.12", "198.18.1.11", 300);
        b.Tap("g2").Inject(back);
        Assert.Equal(back, a.Tap("g1").WaitTake(Wait));
        Assert.Null(a.Tap("g3").WaitTake(Quiet)); // unicast: not flooded
        Assert.Equal([Vtep(1)], Drain(b.Underlay!).Select(s => s.To).Distinct());

        var status = ra.GetStatus().Net("green");
        Assert.Equal(["g1", "g3"], status.Endpoints.Select(e => e.Netns));
        Assert.Contains(status.Fdb, e => e.Mac == MacOf("198.18.1.12").ToString() && e.Destination == Vtep(2).ToString());
    }

    [Fact]
    public void Detaching_removes_the_endpoint_from_every_table_closes_its_TAP_and_reuses_its_id()
    {
        var (r, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        r.AttachEndpoint(Endpoint("blue", "c2", "198.18.0.12"));
        var c2Tap = a.Tap("c2");
        Assert.Equal(2, a.LiveTaps);
        Assert.Contains(r.GetStatus().Net("blue").Neighbors, n => n.Address == "198.18.0.12");

        Assert.True(r.DetachEndpoint("blue", "c2", "eth0"));
        Assert.False(r.DetachEndpoint("blue", "c2", "eth0")); // gone already
        Assert.False(r.DetachEndpoint("red", "c1", "eth0"));  // not on that network
        Assert.True(c2Tap.IsDisposed);
        Assert.Equal(1, a.LiveTaps);
        var s = r.GetStatus().Net("blue");
        Assert.Equal(["c1"], s.Endpoints.Select(e => e.Netns));
        Assert.DoesNotContain(s.Fdb, e => e.Mac == MacOf("198.18.0.12").ToString());
        Assert.DoesNotContain(s.Neighbors, n => n.Address == "198.18.0.12");
        Assert.Equal(["c1"], r.Endpoints.Select(e => e.Netns));
        Assert.Single(r.LocalEndpoints);

        // A frame for the detached MAC is unknown unicast now: flooded to the peer, no local port gets it.
        a.Tap("c1").Inject(Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.12"), "198.18.0.11", "198.18.0.12"));
        Assert.Equal([Vtep(2)], Drain(a.Underlay!).Select(x => x.To));

        // The same interface may be attached again (a new TAP), and it forwards.
        r.AttachEndpoint(Endpoint("blue", "c2", "198.18.0.12"));
        Assert.NotSame(c2Tap, a.Tap("c2"));
        var f = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.12"), "198.18.0.11", "198.18.0.12", 100);
        a.Tap("c1").Inject(f);
        Assert.Equal(f, a.Tap("c2").WaitTake(Wait));
    }

    [Fact]
    public void Entries_learned_behind_a_detached_port_go_with_it()
    {
        var (r, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        r.AttachEndpoint(Endpoint("blue", "c2", "198.18.0.12"));
        var behind = MacAddress.Parse("02:00:c6:12:00:77"); // a MAC behind c2 (a bridge in its namespace)
        a.Tap("c2").Inject(Packets.Udp4(behind, MacOf("198.18.0.11"), "198.18.0.119", "198.18.0.11"));
        Assert.NotNull(a.Tap("c1").WaitTake(Wait));
        Assert.Contains(r.GetStatus().Net("blue").Fdb, e => e.Mac == behind.ToString() && e.Destination == "local:c2/eth0");
        Assert.True(r.DetachEndpoint("blue", "c2", "eth0"));
        Assert.DoesNotContain(r.GetStatus().Net("blue").Fdb, e => e.Mac == behind.ToString());
    }

    [Fact]
    public void A_network_with_endpoints_is_in_use_one_without_is_removed_with_its_tables()
    {
        var (r, a) = Hosts.Add(1, [2], [Blue], []);
        r.AddNetwork(Green);
        r.AttachEndpoint(Endpoint("green", "g1", "198.18.1.11"));
        r.AttachEndpoint(Endpoint("green", "g2", "198.18.1.12"));
        var inUse = Assert.Throws<RouterException>(() => r.RemoveNetwork("green"));
        Assert.Equal(RouterErrorCode.InUse, inUse.Code);
        Assert.Contains("g1/eth0", inUse.Message);
        Assert.Contains("g2/eth0", inUse.Message);
        Assert.Equal(RouterErrorCode.NotFound, Assert.Throws<RouterException>(() => r.RemoveNetwork("nosuch")).Code);

        Assert.True(r.DetachEndpoint("green", "g1", "eth0"));
        Assert.True(r.DetachEndpoint("green", "g2", "eth0"));
        r.RemoveNetwork("green");
        Assert.Equal(["blue"], r.Networks.Select(n => n.Name));
        Assert.Equal(["blue"], r.GetStatus().Networks.Select(n => n.Name));
        Assert.Equal(0, a.LiveTaps);
        // Its VNI is unknown now, and the name and VNI may be used again.
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(4099, Packets.Udp4(MacOf("198.18.1.12"), MacOf("198.18.1.11"), "198.18.1.12", "198.18.1.11")));
        SpinWait.SpinUntil(() => r.GetStatus().GlobalDrop("unknown_vni") == 1, Wait);
        Assert.Equal(1, r.GetStatus().GlobalDrop("unknown_vni"));
        r.AddNetwork(Green with { Subnet = new Ipv4Prefix(Ip("198.18.4.0"), 24) });
        Assert.Equal("198.18.4.0/24", r.GetStatus().Net("green").Subnet);
    }

    public static TheoryData<string, NetworkOptions, string> BadNetworks => new()
    {
        { "VNI out of range", Green with { Vni = 0 }, "Network.Vni" },
        { "MTU over the underlay's", Green with { Mtu = 1500 }, "Network.Mtu" },
        { "subnet too small", Green with { Subnet = new Ipv4Prefix(Ip("198.18.1.0"), 31) }, "Network.Subnet" },
        { "gateway outside the subnet", Green with { Gateway = Ip("198.18.2.1") }, "Network.Gateway" },
        { "gateway the network address", Green with { Gateway = Ip("198.18.1.0") }, "Network.Gateway" },
        { "gateway the broadcast address", Green with { Gateway = Ip("198.18.1.255") }, "Network.Gateway" },
        { "encrypted without Encryption", Green with { Encrypted = true }, "Network.Encrypted" },
    };

    [Theory]
    [MemberData(nameof(BadNetworks))]
    public void An_invalid_network_is_refused_with_the_field_path_and_leaves_nothing(string why, NetworkOptions bad, string path)
    {
        var (r, _) = Hosts.Add(1, [2], [Blue], []);
        var e = Assert.Throws<RouterOptionsException>(() => r.AddNetwork(bad));
        Assert.True(e.Errors.Any(x => x.Path == path), $"{why}: {e.Message}");
        Assert.Equal(["blue"], r.GetStatus().Networks.Select(n => n.Name));
        Assert.Equal(["blue"], r.Networks.Select(n => n.Name));
    }

    [Fact]
    public void The_same_rules_as_the_start_time_options_give_the_same_messages()
    {
        var (r, _) = Hosts.Add(1, [2], [Blue], []);
        var bad = Green with { Gateway = Ip("198.18.2.1") };
        var runtime = Assert.Throws<RouterOptionsException>(() => r.AddNetwork(bad)).Errors.Single();
        var start = new RouterOptions { Underlay = Vtep(1), Networks = [bad] }.Validate().Single();
        Assert.Equal(start.Message, runtime.Message);
        Assert.Equal("Networks[0].Gateway", start.Path);
    }

    [Fact]
    public void A_duplicate_network_name_or_VNI_is_a_conflict()
    {
        var (r, _) = Hosts.Add(1, [2], [Blue], []);
        var name = Assert.Throws<RouterException>(() => r.AddNetwork(Green with { Name = "blue" }));
        Assert.Equal(RouterErrorCode.Conflict, name.Code);
        Assert.Contains("'blue'", name.Message);
        var vni = Assert.Throws<RouterException>(() => r.AddNetwork(Green with { Vni = Blue.Vni }));
        Assert.Equal(RouterErrorCode.Conflict, vni.Code);
        Assert.Contains("4097", vni.Message);
        Assert.Equal(["blue"], r.Networks.Select(n => n.Name));
    }

    [Fact]
    public void Bad_attaches_fail_with_their_codes_and_leave_nothing_behind()
    {
        var (r, a) = Hosts.Add(1, [2], [Blue with { Gateway = Ip("198.18.0.1") }], [Endpoint("blue", "c1", "198.18.0.11")],
            o => o with { StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = MacAddress.Parse("02:00:00:00:99:01"), Vtep = Vtep(2) }] });
        var before = r.GetStatus().Net("blue");

        void Refused(EndpointOptions e, RouterErrorCode code, string words)
        {
            var x = Assert.ThrowsAny<RouterException>(() => r.AttachEndpoint(e));
            Assert.Equal(code, x.Code);
            Assert.Contains(words, x.Message);
            var now = r.GetStatus().Net("blue");
            Assert.Equal(before.Endpoints, now.Endpoints);
            Assert.Equal(before.Fdb.Select(f => f.Mac), now.Fdb.Select(f => f.Mac));
            Assert.Equal(before.Neighbors.Select(n => n.Address), now.Neighbors.Select(n => n.Address));
            Assert.Equal(1, a.LiveTaps);
            Assert.Single(r.Endpoints);
        }

        Refused(Endpoint("nosuch", "c2", "198.18.0.12"), RouterErrorCode.NotFound, "'nosuch'");
        Refused(Endpoint("blue", "c1", "198.18.0.12"), RouterErrorCode.InterfaceExists, "'c1' already has interface 'eth0'");
        Refused(Endpoint("blue", "c2", "198.18.0.11") with { Mac = MacAddress.Parse("02:00:00:00:00:42") }, RouterErrorCode.Conflict, "198.18.0.11 is already used");
        Refused(Endpoint("blue", "c2", "198.18.0.12") with { Mac = MacOf("198.18.0.11") }, RouterErrorCode.Conflict, "is already used on network 'blue' by c1/eth0");
        Refused(Endpoint("blue", "c2", "198.18.0.12") with { Mac = MacAddress.Parse("02:00:00:00:99:01") }, RouterErrorCode.Conflict, "static FDB");
        Refused(Endpoint("blue", "c2", "198.18.1.12"), RouterErrorCode.InvalidOptions, "Endpoint.Address");
        Refused(Endpoint("blue", "c2", "198.18.0.1"), RouterErrorCode.InvalidOptions, "gateway address");
        Refused(Endpoint("blue", "c2", "198.18.0.12") with { Mac = Constants.GatewayMac(Blue.Vni) }, RouterErrorCode.InvalidOptions, "gateway MAC");
        Refused(Endpoint("blue", "c2", "198.18.0.12") with { Interface = "a/b" }, RouterErrorCode.InvalidOptions, "Endpoint.Interface");
        Refused(Endpoint("blue", "c2", "198.18.0.12") with { Mac = MacAddress.Broadcast }, RouterErrorCode.InvalidOptions, "Endpoint.Mac");

        // The platform refuses: its error passes through unchanged.
        a.FailCreateTap = req => new RouterException(RouterErrorCode.NamespaceNotFound, $"network namespace '{req.Netns}' does not exist");
        Refused(Endpoint("blue", "c2", "198.18.0.12"), RouterErrorCode.NamespaceNotFound, "'c2' does not exist");
        a.FailCreateTap = null;

        // The TAP is made but a worker cannot watch it: the TAP is closed again, no entry stays.
        a.UnpollableTaps = true;
        Refused(Endpoint("blue", "c2", "198.18.0.12"), RouterErrorCode.SystemError, "epoll_ctl");
        a.UnpollableTaps = false;

        // After all that, the endpoint attaches (its port id was given back) and forwards.
        r.AttachEndpoint(Endpoint("blue", "c2", "198.18.0.12"));
        var f = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.12"), "198.18.0.11", "198.18.0.12", 64);
        a.Tap("c1").Inject(f);
        Assert.Equal(f, a.Tap("c2").WaitTake(Wait));
        Assert.Equal(2, a.LiveTaps);
    }

    [Fact]
    public void An_encrypted_network_added_at_run_time_crosses_as_ESP_only()
    {
        byte[] key = Enumerable.Range(1, 16).Select(i => (byte)i).ToArray();
        Func<RouterOptions, RouterOptions> keys = o => o with
        {
            Encryption = new EncryptionOptions
            {
                Keys = new StaticNetworkKeySource([new NetworkKey("secret", key)]),
                Esp = new EspOptions { SequenceStore = new InMemorySequenceStore() },
            },
        };
        // Started without any encrypted network: ESP is ready all the same.
        var (ra, a) = Hosts.Add(1, [2], [Blue], [], keys);
        var (rb, b) = Hosts.Add(2, [1], [Blue], [], keys);
        Assert.NotNull(a.EspUnderlay);
        var secret = new NetworkOptions { Name = "secret", Vni = 5000, Subnet = new Ipv4Prefix(Ip("198.18.2.0"), 24), Encrypted = true };
        ra.AddNetwork(secret);
        rb.AddNetwork(secret);
        Assert.Equal(1408, ra.GetStatus().Net("secret").Mtu);
        ra.AttachEndpoint(Endpoint("secret", "s1", "198.18.2.11"));
        rb.AttachEndpoint(Endpoint("secret", "s2", "198.18.2.12"));

        var f = Packets.Udp4(MacOf("198.18.2.11"), MacAddress.Broadcast, "198.18.2.11", "198.18.2.255", 500);
        a.Tap("s1").Inject(f);
        Assert.Equal(f, b.Tap("s2").WaitTake(Wait));
        Assert.Empty(Drain(a.Underlay!));
        Assert.NotEmpty(Drain(a.EspUnderlay!));

        // A network without a key, and an encrypted one on a router without Encryption, are refused.
        var noKey = Assert.Throws<RouterOptionsException>(() => ra.AddNetwork(secret with { Name = "other", Vni = 5001 }));
        Assert.Contains(noKey.Errors, e => e.Path == "Network.Key");
        var (rc, _) = Hosts.Add(3, [1], [Blue], []);
        var noEnc = Assert.Throws<RouterOptionsException>(() => rc.AddNetwork(secret));
        Assert.Contains(noEnc.Errors, e => e.Path == "Network.Encrypted");

        // Removing it drops its SAs.
        Assert.True(ra.DetachEndpoint("secret", "s1", "eth0"));
        ra.RemoveNetwork("secret");
        Assert.DoesNotContain(ra.DescribeSecurityAssociations(), sa => sa.KeyId == "secret" && sa.Direction == EspDirection.Outbound);
    }
}
