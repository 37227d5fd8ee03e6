using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;
using static UserOverlay.Control.Networks.ControlErrorCodes;

namespace UserOverlay.Control.Tests;

/// <summary>
/// A data plane that records its calls and throws from the call named in <see cref="FailOn"/> (e.g. "attach"), to
/// test that the manager undoes what it did before.
/// </summary>
internal sealed class RecordingDataPlane : INetworkDataPlane
{
    public List<string> Calls { get; } = [];
    public string? FailOn { get; set; }

    public void AddNetwork(NetworkDefinition network) => Call("add", network.Name);
    public void RemoveNetwork(NetworkDefinition network) => Call("remove", network.Name);
    public void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint) => Call("attach", $"{network.Name}/{endpoint.Netns}");
    public void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint) => Call("detach", $"{network.Name}/{endpoint.Netns}");

    private void Call(string what, string target)
    {
        if (FailOn == what) throw new InvalidOperationException($"data plane refuses {what} {target}");
        Calls.Add($"{what} {target}");
    }
}

/// <summary>Create/remove/attach/detach through <see cref="NetworkManager"/>: lookups, refusals, all-or-nothing.</summary>
public class NetworkManagerTests
{
    private readonly InMemoryNetworkStore _store = new();
    private readonly RecordingDataPlane _dataPlane = new();
    private readonly NetworkManager _manager;

    public NetworkManagerTests() => _manager = new NetworkManager(_store, _dataPlane);

    private NetworkDefinition Create(string name, string subnet, string? ipRange = null) =>
        _manager.CreateNetwork(new NetworkCreateRequest { Name = name, Subnet = subnet, IpRange = ipRange });

    private EndpointRecord Attach(string network, string netns, string? ip = null, string? mac = null, string? iface = null) =>
        _manager.Attach(new EndpointAttachRequest { Network = network, Netns = netns, Address = ip, Mac = mac, Interface = iface });

    private static string Ip(EndpointRecord e) => VtepEndpoint.FormatAddress(e.Address);

    [Fact]
    public void Create_calls_the_data_plane_stores_the_network_and_refuses_a_second_with_the_name()
    {
        var blue = Create("blue", "198.18.0.0/24");
        Assert.Equal(["add blue"], _dataPlane.Calls);
        Assert.Equal(blue, Assert.Single(_store.Networks));
        var e = Assert.Throws<ControlException>(() => Create("blue", "198.18.1.0/24"));
        Assert.Equal(Conflict, e.Code);
        Assert.Single(_manager.ListNetworks());
    }

    [Fact]
    public void Networks_are_found_by_full_id_name_or_unique_id_prefix_and_an_ambiguous_prefix_is_refused()
    {
        var nets = Enumerable.Range(0, 40).Select(i => Create($"n{i}", $"198.18.{i}.0/24")).ToList();
        var blue = nets[0];
        Assert.Equal(blue, _manager.GetNetwork(blue.Id));
        Assert.Equal(blue, _manager.GetNetwork("n0"));
        Assert.Equal(blue, _manager.GetNetwork(blue.Id[..12]));
        // 40 random ids share a first hex digit: that prefix is ambiguous.
        string shared = nets.GroupBy(n => n.Id[..1]).First(g => g.Count() > 1).Key;
        Assert.Equal(Ambiguous, Assert.Throws<ControlException>(() => _manager.GetNetwork(shared)).Code);
        Assert.Equal(NotFound, Assert.Throws<ControlException>(() => _manager.GetNetwork("green")).Code);
        Assert.Equal(InvalidArgument, Assert.Throws<ControlException>(() => _manager.GetNetwork("")).Code);
    }

    [Fact]
    public void A_name_that_is_another_networks_id_prefix_finds_the_named_network()
    {
        var first = Create("x", "198.18.0.0/24");
        var named = Create(first.Id[..6], "198.18.1.0/24");
        Assert.Equal(named, _manager.GetNetwork(first.Id[..6]));
        Assert.Equal(first, _manager.GetNetwork(first.Id));
    }

    [Fact]
    public void Attach_allocates_sequentially_from_after_the_gateway_and_derives_docker_macs()
    {
        Create("blue", "198.18.0.0/24");
        var a = Attach("blue", "ns-a");
        var b = Attach("blue", "ns-b");
        Assert.Equal(("198.18.0.2", "198.18.0.3"), (Ip(a), Ip(b)));
        Assert.Equal("02:00:c6:12:00:02", a.Mac.ToString());
        Assert.Equal((24, "eth0", "ns-a"), (a.PrefixLength, a.Interface, a.Name));
        Assert.Equal(["add blue", "attach blue/ns-a", "attach blue/ns-b"], _dataPlane.Calls);
        Assert.Equal(2, _store.Endpoints.Count);
        Assert.Equal((2, 253), _manager.AddressUsage("blue"));
    }

    [Fact]
    public void Attach_with_ip_takes_it_outside_the_ip_range_and_refuses_a_taken_one_allocating_nothing()
    {
        Create("blue", "198.18.0.0/24", ipRange: "198.18.0.128/25");
        Assert.Equal("198.18.0.128", Ip(Attach("blue", "ns-a")));
        Assert.Equal("198.18.0.9", Ip(Attach("blue", "ns-b", ip: "198.18.0.9")));
        var e = Assert.Throws<ControlException>(() => Attach("blue", "ns-c", ip: "198.18.0.9"));
        Assert.Equal((Conflict, "ip"), (e.Code, e.Field));
        Assert.Equal(2, _manager.AddressUsage("blue").Allocated);
        Assert.Equal(2, _store.Endpoints.Count);
        Assert.Equal(InvalidArgument, Assert.Throws<ControlException>(() => Attach("blue", "ns-c", ip: "198.18.1.9")).Code);
        Assert.Equal(InvalidArgument, Assert.Throws<ControlException>(() => Attach("blue", "ns-c", ip: "nine")).Code);
        Assert.Equal("198.18.0.129", Ip(Attach("blue", "ns-c")));
    }

    [Fact]
    public void Attach_passes_over_and_refuses_an_address_another_hosts_endpoint_holds_so_no_mac_is_shared()
    {
        // Another host (as gossip tells it) holds .4 and .5 of blue: its endpoints' MACs are derived from them too.
        var held = new HashSet<string> { "198.18.0.4", "198.18.0.5" };
        var asked = new List<string>();
        var manager = new NetworkManager(new InMemoryNetworkStore(), new RecordingDataPlane(), new NetworkManagerOptions
        {
            HeldElsewhere = (net, a) => { asked.Add($"{net.Name} {VtepEndpoint.FormatAddress(a)}"); return held.Contains(VtepEndpoint.FormatAddress(a)); },
        });
        manager.CreateNetwork(new NetworkCreateRequest { Name = "blue", Subnet = "198.18.0.0/24" });
        EndpointRecord Att(string netns, string? ip = null) => manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = netns, Address = ip });

        Assert.Equal(["198.18.0.2", "198.18.0.3", "198.18.0.6"], new[] { Att("a"), Att("b"), Att("c") }.Select(Ip));
        Assert.Equal(["blue 198.18.0.2", "blue 198.18.0.3", "blue 198.18.0.4", "blue 198.18.0.5", "blue 198.18.0.6"], asked);
        Assert.Equal(3, manager.AddressUsage("blue").Allocated); // the passed-over addresses are not kept
        Assert.NotEqual(EndpointMac.FromAddress(0xC612_0004), Att("d").Mac);

        var e = Assert.Throws<ControlException>(() => Att("e", ip: "198.18.0.5"));
        Assert.Equal((Conflict, "ip"), (e.Code, e.Field));
        Assert.Contains("198.18.0.5 is held by an endpoint of another host on network 'blue'", e.Message);
        Assert.Equal(4, manager.AddressUsage("blue").Allocated);
        held.Clear(); // the other host's endpoint went: its address may be taken here now
        Assert.Equal("198.18.0.5", Ip(Att("e", ip: "198.18.0.5")));
    }

    [Fact]
    public void Attach_refuses_a_multicast_or_used_mac_a_second_attachment_of_a_namespace_and_a_used_interface_name()
    {
        Create("blue", "198.18.0.0/24");
        Create("red", "198.18.1.0/24");
        var a = Attach("blue", "ns-a", mac: "02:00:00:00:00:0a");
        Assert.Equal("02:00:00:00:00:0a", a.Mac.ToString());
        Assert.Equal((InvalidArgument, "mac"), Code(() => Attach("blue", "ns-b", mac: "03:00:00:00:00:0b")));
        Assert.Equal((InvalidArgument, "mac"), Code(() => Attach("blue", "ns-b", mac: "00:00:00:00:00:00")));
        Assert.Equal((Conflict, "mac"), Code(() => Attach("blue", "ns-b", mac: "02:00:00:00:00:0a")));
        Assert.Equal((Conflict, "netns"), Code(() => Attach("blue", "ns-a")));
        Assert.Equal((Conflict, "interface"), Code(() => Attach("red", "ns-a")));       // ns-a already has eth0
        Assert.Equal("eth1", Attach("red", "ns-a", iface: "eth1").Interface);
        Assert.Equal((InvalidArgument, "interface"), Code(() => Attach("red", "ns-z", iface: "a-name-of-16-chr")));
        // An explicit MAC equal to the one the next address (.4) derives: that attach is refused and keeps nothing.
        Assert.Equal("198.18.0.3", Ip(Attach("blue", "ns-m", mac: "02:00:c6:12:00:04")));
        Assert.Equal((Conflict, "mac"), Code(() => Attach("blue", "ns-n")));
        Assert.Equal(2, _manager.AddressUsage("blue").Allocated);
    }

    private static (string, string?) Code(Action action)
    {
        var e = Assert.Throws<ControlException>(action);
        return (e.Code, e.Field);
    }

    [Fact]
    public void Remove_is_refused_while_endpoints_are_attached_naming_them()
    {
        Create("blue", "198.18.0.0/24");
        Attach("blue", "ns-a");
        Attach("blue", "ns-b");
        var e = Assert.Throws<ControlException>(() => _manager.RemoveNetwork("blue"));
        Assert.Equal(InUse, e.Code);
        Assert.Contains("ns-a, ns-b", e.Message);
        Assert.Equal(["add blue", "attach blue/ns-a", "attach blue/ns-b"], _dataPlane.Calls);

        _manager.Detach("blue", "ns-a");
        _manager.Detach("blue", "ns-b");
        _manager.RemoveNetwork("blue");
        Assert.Empty(_manager.ListNetworks());
        Assert.Empty(_store.Networks);
        Assert.Equal("remove blue", _dataPlane.Calls[^1]);
        Create("blue", "198.18.0.0/24");   // name, subnet and VNI are free again
    }

    [Fact]
    public void Detach_finds_the_endpoint_by_id_netns_or_name_and_releases_its_address()
    {
        Create("blue", "198.18.0.0/24");
        var a = Attach("blue", "ns-a");
        var b = _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "/proc/1/ns/net", Name = "web" });
        Assert.Equal(a, _manager.Detach("blue", a.Id));
        Assert.Equal(b, _manager.Detach("blue", "web"));
        Assert.Equal((NotFound, "netns"), Code(() => _manager.Detach("blue", "ns-a")));
        Assert.Equal(0, _manager.AddressUsage("blue").Allocated);
        Assert.Empty(_store.Endpoints);
        Assert.Equal(["detach blue/ns-a", "detach blue//proc/1/ns/net"], _dataPlane.Calls[^2..]);
    }

    [Fact]
    public void A_data_plane_failure_rolls_back_the_allocation_and_stores_nothing()
    {
        Create("blue", "198.18.0.0/29");
        _dataPlane.FailOn = "attach";
        for (int i = 0; i < 10; i++)   // more tries than the /29 has addresses: each failure gives its address back
            Assert.Throws<InvalidOperationException>(() => Attach("blue", $"ns-{i}"));
        Assert.Equal(0, _manager.AddressUsage("blue").Allocated);
        Assert.Empty(_store.Endpoints);
        Assert.Empty(_manager.GetEndpoints("blue"));

        _dataPlane.FailOn = null;
        var e = Attach("blue", "ns-0");   // the namespace and interface were not kept either
        Assert.Equal("198.18.0.2", Ip(e));

        _dataPlane.FailOn = "add";
        Assert.Throws<InvalidOperationException>(() => Create("red", "198.18.1.0/24"));
        Assert.Single(_manager.ListNetworks());
        Assert.Single(_store.Networks);

        _dataPlane.FailOn = "detach";
        Assert.Throws<InvalidOperationException>(() => _manager.Detach("blue", "ns-0"));
        Assert.Single(_manager.GetEndpoints("blue"));
        Assert.True(_manager.AddressUsage("blue").Allocated == 1);
    }

    [Fact]
    public void A_store_failure_undoes_the_data_plane_step()
    {
        Create("blue", "198.18.0.0/24");
        _store.FailNextWrite = true;
        Assert.Throws<IOException>(() => Attach("blue", "ns-a"));
        Assert.Equal(["attach blue/ns-a", "detach blue/ns-a"], _dataPlane.Calls[^2..]);
        Assert.Equal(0, _manager.AddressUsage("blue").Allocated);

        _store.FailNextWrite = true;
        Assert.Throws<IOException>(() => Create("red", "198.18.1.0/24"));
        Assert.Equal(["add red", "remove red"], _dataPlane.Calls[^2..]);
        Assert.Single(_manager.ListNetworks());

        var a = Attach("blue", "ns-a");
        _store.FailNextWrite = true;
        Assert.Throws<IOException>(() => _manager.Detach("blue", "ns-a"));
        Assert.Equal(["detach blue/ns-a", "attach blue/ns-a"], _dataPlane.Calls[^2..]);
        Assert.Equal(a, Assert.Single(_manager.GetEndpoints("blue")));
    }

    [Fact]
    public void A_failed_undo_is_reported_as_internal_with_both_messages()
    {
        Create("blue", "198.18.0.0/24");
        _store.FailNextWrite = true;
        _dataPlane.FailOn = "remove";
        var e = Assert.Throws<ControlException>(() => Create("red", "198.18.1.0/24"));
        Assert.Equal(Internal, e.Code);
        Assert.Contains("in-memory store", e.Message);
        Assert.Contains("data plane refuses remove red", e.Message);
    }

    [Fact]
    public void A_restarted_manager_rebuilds_the_pools_and_continues_after_the_newest_endpoints_address()
    {
        var time = new SteppingTime();
        var options = new NetworkManagerOptions { Time = time };
        var first = new NetworkManager(_store, _dataPlane, options);
        first.CreateNetwork(new NetworkCreateRequest { Name = "blue", Subnet = "198.18.0.0/24" });
        for (int i = 0; i < 5; i++) first.Attach(new EndpointAttachRequest { Network = "blue", Netns = $"ns-{i}" });
        first.Detach("blue", "ns-2");   // .4 released: a pool rebuilt from scratch would hand it out next

        var second = new NetworkManager(_store, _dataPlane, options);
        Assert.Equal(first.Snapshot().Endpoints, second.Snapshot().Endpoints);
        Assert.Equal((Conflict, "ip"), Code(() => second.Attach(new EndpointAttachRequest { Network = "blue", Netns = "x", Address = "198.18.0.3" })));
        Assert.Equal("198.18.0.7", Ip(second.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-5" })));
        Assert.Equal("198.18.0.8", Ip(second.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-6" })));
    }

    [Fact]
    public void Inconsistent_stored_state_is_refused_naming_the_object()
    {
        var blue = NetworkValidator.Validate(new() { Name = "blue", Subnet = "198.18.0.0/24" }, [], new());
        var ep = new EndpointRecord
        {
            Id = ObjectIds.New(),
            NetworkId = blue.Id,
            Name = "a",
            Netns = "a",
            Interface = "eth0",
            Mac = EndpointMac.FromAddress(0xC612_0002),
            Address = 0xC612_0002,
            PrefixLength = 24,
            Created = DateTimeOffset.UnixEpoch,
        };
        var twin = ep with { Id = ObjectIds.New(), Name = "b", Netns = "b", Mac = new MacAddress(0x02_0000_0000_01) };
        var orphan = ep with { NetworkId = ObjectIds.New() };
        foreach (var (state, id) in new[] { (new StoredState([blue], [ep, twin]), twin.Id), (new StoredState([blue], [orphan]), orphan.Id),
                                             (new StoredState([blue, blue with { Id = ObjectIds.New(), Name = "x" }], []), null) })
        {
            var e = Assert.Throws<ControlException>(() => new NetworkManager(new InMemoryNetworkStore(state), _dataPlane));
            Assert.Equal(CorruptState, e.Code);
            if (id is not null) Assert.Contains(id, e.Message);
        }
    }

    [Fact]
    public void Operations_from_many_threads_leave_a_consistent_state()
    {
        Create("blue", "198.18.0.0/20");
        Parallel.For(0, 2_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            Attach("blue", $"ns-{i}");
            if (i % 2 == 0) _manager.Detach("blue", $"ns-{i}");
        });
        var endpoints = _manager.GetEndpoints("blue");
        Assert.Equal(1_000, endpoints.Count);
        Assert.Equal(1_000, endpoints.Select(e => e.Address).Distinct().Count());
        Assert.Equal(1_000, _manager.AddressUsage("blue").Allocated);
        Assert.Equal(1_000, _store.Endpoints.Count);
    }

    [Fact]
    public void A_slash16_takes_4096_endpoints_in_sequence_and_a_restart_keeps_them()
    {
        Create("big", "198.18.0.0/16");
        for (int i = 0; i < 4096; i++) Attach("big", $"ns-{i}");
        var endpoints = _manager.GetEndpoints("big");
        Assert.Equal("198.18.0.2", Ip(endpoints[0]));
        Assert.Equal("198.18.16.1", Ip(endpoints[^1]));   // 4,096 after the gateway .0.1
        var e = Assert.Throws<ControlException>(() => _manager.RemoveNetwork("big"));
        Assert.Contains("4096 endpoint(s) attached (ns-0, ns-1,", e.Message);
        Assert.EndsWith("ns-9 and 4086 more); disconnect them first", e.Message);

        var restarted = new NetworkManager(_store, _dataPlane);
        Assert.Equal((4096, 65533), restarted.AddressUsage("big"));
        Assert.Equal((NotFound, "netns"), Code(() => restarted.Detach("big", "ns-4096")));
        Assert.Equal(endpoints[100], restarted.Detach("big", "ns-100"));
    }

    [Fact]
    public void Endpoint_records_map_to_the_routers_options()
    {
        var blue = Create("blue", "198.18.0.0/24");
        var a = Attach("blue", "ns-a");
        var n = blue.ToNetworkOptions();
        var e = a.ToEndpointOptions(blue);
        Assert.Equal(("blue", blue.Vni, "198.18.0.0/24"), (n.Name, n.Vni, n.Subnet.ToString()));
        Assert.Equal(("blue", "ns-a", a.Address, 24, a.Mac), (e.Network, e.Netns, e.Address, e.PrefixLength, e.EffectiveMac));
    }
}

/// <summary>A clock that moves one millisecond per reading, so records created in a row have increasing times.</summary>
internal sealed class SteppingTime : TimeProvider
{
    private DateTimeOffset _now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    public override DateTimeOffset GetUtcNow() => _now = _now.AddMilliseconds(1);
}
