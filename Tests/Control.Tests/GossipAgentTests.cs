using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Control.Gossip;
using UserOverlay.Membership;
using UserOverlay.Membership.Testing;
using UserOverlay.Router;
using UserOverlay.Router.Testing;
using UserOverlay.Router.Tests;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Control.Tests;

/// <summary>
/// The gossip adapter in one process: routers on the in-memory underlay, endpoint tables on the
/// in-memory gossip network, no static peers — the FDB, neighbours, flood lists and accepted peers
/// all come from table events.
/// <code>
///   h1: c1 blue .11, r1 red .21      h2: c2 blue .12 (red configured, no endpoint)      h3: r3 red .23
/// </code>
/// </summary>
public sealed class GossipAgentTests : IAsyncDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly InMemoryHosts _hosts = new();
    private readonly InMemoryNetwork _gossip = new();
    private readonly Dictionary<string, (OverlayRouter Router, InMemoryPlatform Platform, GossipAgent Agent)> _h = [];

    internal static MembershipOptions Fast(string name) => InMemoryNetwork.FastOptions(name);

    private async Task<GossipAgent> Add(int i, EndpointOptions[] endpoints, string[] seeds, int[]? staticPeers = null, Membership.Transport.IMembershipTransport? transport = null,
        Func<MembershipOptions, MembershipOptions>? tweak = null)
    {
        string name = $"h{i}";
        var (router, platform) = _hosts.Add(i, staticPeers ?? [], [Blue, Red with { Subnet = new Ipv4Prefix(Ip("198.18.2.0"), 24) }], endpoints, o => o with { Learning = false });
        var agent = await GossipAgent.StartAsync(GossipAgentOptions.ForRouter(router,
            (tweak ?? (o => o))(Fast(name) with { Transport = transport ?? _gossip.CreateTransport(name) }), seeds), NullLoggerFactory.Instance);
        _h[name] = (router, platform, agent);
        return agent;
    }

    private async Task StartThree(int[]? staticPeersOfH1 = null)
    {
        await Add(1, [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("red", "r1", "198.18.2.21")], [], staticPeersOfH1);
        string seed = _gossip.AddressOf("h1").ToString();
        await Add(2, [Endpoint("blue", "c2", "198.18.0.12")], [seed]);
        await Add(3, [Endpoint("red", "r3", "198.18.2.23")], [seed]);
        await Eventually.True(() => _h.Values.All(h => h.Agent.Table.Memberlist.NumMembers == 3), Wait, "three members");
    }

    private static MacAddress Mac(string ip) => MacAddress.FromIPv4(IPAddress.Parse(ip));

    private NetworkStatus Net(string host, string network) => _h[host].Router.GetStatus().Net(network);

    private static bool HasGossip(NetworkStatus n, string ip, VtepEndpoint vtep) =>
        n.Fdb.Any(e => e.Mac == Mac(ip).ToString() && e.Source == "gossip" && e.Destination == vtep.ToString())
        && n.Neighbors.Any(x => x.Address == ip && x.Mac == Mac(ip).ToString() && x.Source == "gossip");

    [Fact]
    public async Task Table_events_become_fdb_and_neighbour_entries_flood_lists_and_accepted_peers()
    {
        await StartThree(staticPeersOfH1: [9]);
        await Eventually.True(() => HasGossip(Net("h1", "blue"), "198.18.0.12", Vtep(2)) && HasGossip(Net("h1", "red"), "198.18.2.23", Vtep(3))
            && HasGossip(Net("h2", "blue"), "198.18.0.11", Vtep(1)) && HasGossip(Net("h3", "red"), "198.18.2.21", Vtep(1)), Wait, "every remote endpoint in h1's, h2's and h3's FDB");

        // Flood lists: only hosts with endpoints on the network (static peers stay on every list).
        await Eventually.True(() => Net("h1", "blue").FloodList.SequenceEqual([Vtep(2).ToString(), Vtep(9).ToString()])
            && Net("h1", "red").FloodList.SequenceEqual([Vtep(3).ToString(), Vtep(9).ToString()])
            && Net("h2", "blue").FloodList.SequenceEqual([Vtep(1).ToString()])
            && Net("h3", "red").FloodList.SequenceEqual([Vtep(1).ToString()]), Wait, "flood lists per network");
        Assert.Empty(Net("h2", "red").FloodList);                     // h2 has no red endpoint: it never joined red
        Assert.DoesNotContain(Net("h2", "red").Fdb, e => e.Source == "gossip");
        Assert.DoesNotContain(Net("h2", "blue").Fdb, e => e.Mac == Mac("198.18.2.23").ToString());

        // VXLAN is accepted from every member (and the static peer), whatever networks they serve.
        await Eventually.True(() => _h["h2"].Router.GetStatus().Peers.SequenceEqual([Vtep(1).ToString(), Vtep(3).ToString()]), Wait, "h2 accepts h1 and h3");
        Assert.Equal([Vtep(2).ToString(), Vtep(3).ToString(), Vtep(9).ToString()], _h["h1"].Router.GetStatus().Peers);

        // And frames flow: c1 → c2 unicast is sent to h2 only and delivered there.
        var c1 = _h["h1"].Platform.Tap("c1");
        c1.Inject(Packets.Udp4(Mac("198.18.0.11"), Mac("198.18.0.12"), "198.18.0.11", "198.18.0.12"));
        Assert.NotNull(_h["h2"].Platform.Tap("c2").WaitTake(Wait));

        // The member list the control socket serves.
        var m = _h["h1"].Agent.GetMembers();
        Assert.Equal("h1", m.Node);
        Assert.True(m.Joined);
        Assert.Equal(["h1", "h2", "h3"], m.Members.Select(x => x.Name));
        Assert.All(m.Members, x => Assert.Equal("alive", x.State));
        Assert.Equal(["192.0.2.1:4789", "192.0.2.2:4789", "192.0.2.3:4789"], m.Members.Select(x => x.Vtep));
        Assert.Equal(["blue", "red"], m.Members[0].Networks);
        Assert.Equal(["blue"], m.Members[1].Networks);
        Assert.Equal(["red"], m.Members[2].Networks);
        Assert.True(m.Members[0].Local);
        Assert.Equal(2, m.Members[1].Protocol.Current);
        Assert.Equal(3, m.CountByState()["alive"]);
    }

    [Fact]
    public async Task A_failed_member_is_removed_and_a_leaving_one_at_once()
    {
        await StartThree();
        await Eventually.True(() => HasGossip(Net("h1", "red"), "198.18.2.23", Vtep(3)) && HasGossip(Net("h1", "blue"), "198.18.0.12", Vtep(2)), Wait, "h1 knows both");

        // h3 fails (its member stops without leaving): its endpoint, flood-list entry and peer go.
        await _h["h3"].Agent.DisposeAsync();
        await Eventually.True(() =>
        {
            var red = Net("h1", "red");
            return !red.Fdb.Any(e => e.Source == "gossip") && !red.Neighbors.Any(n => n.Source == "gossip") && red.FloodList.Count == 0
                && !_h["h1"].Router.GetStatus().Peers.Contains(Vtep(3).ToString());
        }, Wait, "failed h3 removed from h1's red FDB, neighbours, flood list and peers");

        // h2 leaves gracefully. It stays up until h1 has the leave (as a real agent lingers after leaving), so
        // that on a loaded machine h1's failure detector cannot declare it dead first.
        await _h["h2"].Agent.LeaveAsync(TimeSpan.FromSeconds(5));
        await Eventually.True(() => _h["h1"].Agent.GetMembers().Members.SingleOrDefault(x => x.Name == "h2")?.State == "left", Wait, "h1 sees h2 left");
        await _h["h2"].Agent.DisposeAsync();
        await Eventually.True(() => !Net("h1", "blue").Fdb.Any(e => e.Source == "gossip") && Net("h1", "blue").FloodList.Count == 0
            && _h["h1"].Router.GetStatus().Peers.Count == 0, Wait, "left h2 removed");
        var m = _h["h1"].Agent.GetMembers();
        Assert.Equal("left", m.Members.Single(x => x.Name == "h2").State);
        Assert.Equal("dead", m.Members.Single(x => x.Name == "h3").State);
    }

    [Fact]
    public async Task A_late_host_reaches_every_fdb_through_gossip_not_only_the_seed()
    {
        // Push/pull (anti-entropy) is minutes away, so only gossip can teach h2–h4 about h5 (h1 learns
        // it from the join's push/pull). LAN's retransmit multiplier, and sequential joins: with the
        // Local profile's multiplier (2) a record is sent to fewer peers than a network has here, and
        // the holes are filled only by the next push/pull.
        Func<MembershipOptions, MembershipOptions> slow = o => o with { PushPullInterval = TimeSpan.FromMinutes(5), RetransmitMult = 4 };
        await Add(1, [Endpoint("blue", "c1", "198.18.0.11")], [], tweak: slow);
        string seed = _gossip.AddressOf("h1").ToString();
        for (int i = 2; i <= 4; i++)
        {
            var a = await Add(i, [Endpoint("blue", $"c{i}", $"198.18.0.1{i}")], [seed], tweak: slow);
            await Eventually.True(() => a.Joined && _h.Values.All(h => h.Agent.Table.Memberlist.NumMembers == i), Wait, $"h{i} joined and known");
        }
        await Eventually.True(() => Enumerable.Range(1, 4).All(i => Net($"h{i}", "blue").Fdb.Count(e => e.Source == "gossip") == 3), Wait, "four hosts converge");
        await Task.Delay(1000, TestContext.Current.CancellationToken); // retransmits of the first round are over
        await Add(5, [Endpoint("blue", "c5", "198.18.0.15")], [seed], tweak: slow);
        await Eventually.True(() => Enumerable.Range(1, 4).All(i => HasGossip(Net($"h{i}", "blue"), "198.18.0.15", Vtep(5))),
            Wait, "every host learns the late h5's endpoint by gossip (push/pull is 5 minutes away)");
    }

    [Fact]
    public async Task A_host_listed_among_its_own_seeds_skips_itself()
    {
        // The same join list on every host, the seed included: nobody tries to join itself.
        var t = _gossip.CreateTransport("h1");
        var a = await Add(1, [Endpoint("blue", "c1", "198.18.0.11")], [t.LocalEndPoint.ToString()], transport: t);
        Assert.Empty(a.Seeds);
        Assert.True(a.Joined);
        var t2 = _gossip.CreateTransport("h2");
        var b = await Add(2, [Endpoint("blue", "c2", "198.18.0.12")], [t2.LocalEndPoint.ToString(), t.LocalEndPoint.ToString()], transport: t2);
        Assert.Equal([t.LocalEndPoint.ToString()], b.Seeds);
        await Eventually.True(() => b.Joined && HasGossip(Net("h2", "blue"), "198.18.0.11", Vtep(1)), Wait, "h2 joined h1");
    }

    [Fact]
    public async Task An_endpoint_published_at_run_time_reaches_the_other_agents_sink_and_a_withdrawn_one_leaves_it()
    {
        // h1 starts with no endpoint (so it is on no network); h2 is an agent without a router, feeding a recording sink.
        var h1 = await Add(1, [], []);
        var sink = new RecordingSink();
        await using var h2 = await GossipAgent.StartAsync(new GossipAgentOptions
        {
            Membership = Fast("h2") with { Transport = _gossip.CreateTransport("h2") },
            Seeds = [_gossip.AddressOf("h1").ToString()],
            Sink = sink,
            Vtep = Vtep(2),
            Networks = [new GossipNetwork("blue", Blue.Vni)],
            LocalEndpoints = [new LocalEndpointInfo("blue", Blue.Vni, Mac("198.18.0.12"), Ip("198.18.0.12"), 24)],
        }, NullLoggerFactory.Instance, TestContext.Current.CancellationToken);
        await Eventually.True(() => h2.Joined && h1.Table.Memberlist.NumMembers == 2, Wait, "h2 joined h1");
        // h1 has no endpoint on blue, so it is not on blue: neither side has anything of the other's.
        Assert.DoesNotContain(Net("h1", "blue").Fdb, e => e.Source == "gossip");
        Assert.Empty(sink.Endpoints);
        Assert.Empty(sink.FloodList("blue"));

        var c1 = new LocalEndpointInfo("blue", Blue.Vni, Mac("198.18.0.11"), Ip("198.18.0.11"), 24);
        h1.PublishEndpoint(c1);
        Assert.Equal([c1], h1.LocalEndpoints);
        await Eventually.True(() => sink.Endpoints.TryGetValue(("blue", Mac("198.18.0.11")), out var e) && e.Address == Ip("198.18.0.11") && e.Vtep.Equals(Vtep(1))
            && sink.FloodList("blue").SequenceEqual([Vtep(1)]), Wait, "h2's sink has h1's new endpoint behind h1's VTEP, and h1 on blue's flood list");
        await Eventually.True(() => HasGossip(Net("h1", "blue"), "198.18.0.12", Vtep(2)), Wait, "h1, now on blue, learns h2's endpoint");

        Assert.True(h1.WithdrawEndpoint(Blue.Vni, Mac("198.18.0.11")));
        Assert.False(h1.WithdrawEndpoint(Blue.Vni, Mac("198.18.0.11")));
        Assert.Empty(h1.LocalEndpoints);
        await Eventually.True(() => !sink.Endpoints.ContainsKey(("blue", Mac("198.18.0.11"))) && sink.FloodList("blue").Count == 0, Wait,
            "h2's sink drops the withdrawn endpoint, and h1 (no endpoint left on blue) from blue's flood list");
        await Eventually.True(() => !Net("h1", "blue").Fdb.Any(e => e.Source == "gossip"), Wait, "h1, off blue, forgets h2's endpoint");

        // An endpoint of a network the agent does not serve is refused, naming the network.
        var e = Assert.Throws<ArgumentException>(() => h1.PublishEndpoint(new LocalEndpointInfo("green", 9999, Mac("198.18.4.11"), Ip("198.18.4.11"), 24)));
        Assert.Contains("'green' (VNI 9999)", e.Message);
    }

    private async Task<(GossipAgent Agent, RecordingSink Sink)> SinkAgent(int i, string[] seeds)
    {
        var sink = new RecordingSink();
        var agent = await GossipAgent.StartAsync(new GossipAgentOptions
        {
            Membership = Fast($"s{i}") with { Transport = _gossip.CreateTransport($"s{i}") },
            Seeds = seeds,
            Sink = sink,
            Vtep = Vtep(i),
        }, NullLoggerFactory.Instance, TestContext.Current.CancellationToken);
        return (agent, sink);
    }

    [Fact]
    public async Task A_network_joined_at_run_time_carries_endpoints_and_flood_lists_both_ways_and_leaving_it_withdraws_them()
    {
        // Two agents that started with no networks at all (a daemon before any `network create`).
        var (a, sinkA) = await SinkAgent(1, []);
        await using var _a = a;
        var (b, sinkB) = await SinkAgent(2, [_gossip.AddressOf("s1").ToString()]);
        await using var _b = b;
        await Eventually.True(() => b.Joined && a.Table.Memberlist.NumMembers == 2, Wait, "s2 joined s1");
        var green = new GossipNetwork("green", 5000);
        var ea = new LocalEndpointInfo("green", 5000, Mac("198.18.4.11"), Ip("198.18.4.11"), 24);
        var eb = new LocalEndpointInfo("green", 5000, Mac("198.18.4.12"), Ip("198.18.4.12"), 24);
        Assert.Throws<ArgumentException>(() => a.PublishEndpoint(ea)); // not one of a's networks yet

        a.JoinNetwork(green);
        a.JoinNetwork(green); // idempotent
        b.JoinNetwork(green);
        Assert.Contains("already network 'green'", Assert.Throws<ArgumentException>(() => a.JoinNetwork(new GossipNetwork("other", 5000))).Message);
        a.PublishEndpoint(ea);
        b.PublishEndpoint(eb);
        await Eventually.True(() => sinkB.Endpoints.TryGetValue(("green", ea.Mac), out var x) && x.Vtep.Equals(Vtep(1)) && x.Address == ea.Address
            && sinkA.Endpoints.TryGetValue(("green", eb.Mac), out var y) && y.Vtep.Equals(Vtep(2))
            && sinkA.FloodList("green").SequenceEqual([Vtep(2)]) && sinkB.FloodList("green").SequenceEqual([Vtep(1)]), Wait,
            "each sink has the other's endpoint on the new network, and the other host on its flood list");

        Assert.True(a.LeaveNetwork(5000));
        Assert.False(a.LeaveNetwork(5000));
        Assert.Empty(a.LocalEndpoints);
        await Eventually.True(() => !sinkB.Endpoints.ContainsKey(("green", ea.Mac)) && sinkB.FloodList("green").Count == 0, Wait,
            "b's sink drops a's withdrawn endpoint and a from the flood list");
        await Eventually.True(() => !sinkA.Endpoints.ContainsKey(("green", eb.Mac)), Wait, "a, off the network, forgets b's endpoint");
        Assert.Throws<ArgumentException>(() => a.PublishEndpoint(ea)); // the VNI is no longer a's
        Assert.Contains(b.Table.GetEndpoints(GossipAgent.NetworkId(5000)), r => r.Mac == eb.Mac.Value);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var h in _h.Values) await h.Agent.DisposeAsync();
        _hosts.Dispose();
    }
}

/// <summary>An <see cref="IRemoteEndpointSink"/> that records what it is told (a control plane without a router).</summary>
internal sealed class RecordingSink : IRemoteEndpointSink
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string, MacAddress), (uint?, VtepEndpoint)> _endpoints = [];
    private readonly Dictionary<string, VtepEndpoint[]> _flood = [];

    public Dictionary<(string Network, MacAddress Mac), (uint? Address, VtepEndpoint Vtep)> Endpoints { get { lock (_lock) return new(_endpoints); } }

    public IReadOnlyList<VtepEndpoint> FloodList(string network) { lock (_lock) return _flood.GetValueOrDefault(network) ?? []; }

    public bool SetRemoteEndpoint(string network, MacAddress mac, uint? address, VtepEndpoint vtep)
    {
        lock (_lock) _endpoints[(network, mac)] = (address, vtep);
        return true;
    }

    public bool RemoveRemoteEndpoint(string network, MacAddress mac, uint? address)
    {
        lock (_lock) return _endpoints.Remove((network, mac));
    }

    public bool SetFloodList(string network, IReadOnlyCollection<VtepEndpoint> vteps)
    {
        lock (_lock) _flood[network] = [.. vteps.OrderBy(v => v.Address).ThenBy(v => v.Port)];
        return true;
    }

    public void SetDynamicPeers(IReadOnlyCollection<VtepEndpoint> peers) { }
}
