using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;
using static UserOverlay.Control.Networks.ControlErrorCodes;

namespace UserOverlay.Control.Tests;

/// <summary>
/// A daemon's start over a state directory: the configuration file seeds its networks and endpoints
/// (<see cref="NetworkManager.Seed"/>: authoritative for what it names), then what the API made is restored
/// (<see cref="NetworkManager.Resume"/>). Each "restart" is a new manager over the same <see cref="FileNetworkStore"/>.
/// </summary>
public sealed class SeedAndResumeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"uo-seed-{Guid.NewGuid():N}");
    private readonly RecordingDataPlane _dataPlane = new();

    private static readonly NetworkCreateRequest Blue = new() { Name = "blue", Vni = 4097, Subnet = "198.18.0.0/24" };
    private static readonly NetworkCreateRequest Red = new() { Name = "red", Vni = 4098, Subnet = "198.18.2.0/24" };
    private static EndpointAttachRequest Ep(string network, string netns, string ip) => new() { Network = network, Netns = netns, Address = ip };

    // A start: read the store, seed the file, resume with the namespaces that "exist".
    private (NetworkManager Manager, IReadOnlyList<ReleasedEndpoint> Released) Start(NetworkCreateRequest[] networks, EndpointAttachRequest[] endpoints, params string[] liveNamespaces)
    {
        var m = new NetworkManager(new FileNetworkStore(_dir), _dataPlane);
        m.Seed(networks, endpoints);
        return (m, m.Resume(e => liveNamespaces.Contains(e.Netns) ? null : $"its namespace {e.Netns} is gone"));
    }

    [Fact]
    public void A_file_network_without_a_gateway_has_none_and_an_endpoint_may_sit_at_the_first_address()
    {
        var plain = Blue with { NoGateway = true };
        var (m, _) = Start([plain], [Ep("blue", "c1", "198.18.0.1")]);
        Assert.Null(m.GetNetwork("blue").Gateway);
        Assert.Equal("198.18.0.1", VtepEndpoint.FormatAddress(Assert.Single(m.GetEndpoints("blue")).Address));
        Assert.Equal("", Assert.Single(m.Inspect("blue").Ipam.Config).Gateway);
        var (again, _) = Start([plain], [Ep("blue", "c1", "198.18.0.1")]); // stored as none, read back as none
        Assert.Null(again.GetNetwork("blue").Gateway);
        var e = Assert.Throws<ControlException>(() => new NetworkManager(new InMemoryNetworkStore(), _dataPlane)
            .CreateNetwork(plain with { Name = "both", Gateway = "198.18.0.1" }));
        Assert.Equal((InvalidArgument, "gateway"), (e.Code, e.Field));
    }

    [Fact]
    public void The_file_seeds_networks_and_endpoints_without_the_data_plane_and_a_restart_keeps_their_ids()
    {
        var (m, released) = Start([Blue, Red], [Ep("blue", "c1", "198.18.0.11"), Ep("red", "r1", "198.18.2.21")]);
        Assert.Empty(released);
        Assert.Empty(_dataPlane.Calls); // the router was started from the same file
        var blue = m.GetNetwork("blue");
        Assert.True(blue.FromConfig);
        Assert.Equal((4097u, "198.18.0.0/24", "198.18.0.1"), (blue.Vni, blue.Subnet.ToString(), VtepEndpoint.FormatAddress(blue.Gateway!.Value)));
        var c1 = Assert.Single(m.GetEndpoints("blue"));
        Assert.True(c1.FromConfig);
        Assert.Equal(("c1", "02:00:c6:12:00:0b"), (c1.Name, c1.Mac.ToString())); // the router's MAC for the address
        Assert.Equal("198.18.0.11/24", Assert.Single(m.Inspect("blue").Containers).Value.IPv4Address);

        var (again, _) = Start([Blue, Red], [Ep("blue", "c1", "198.18.0.11"), Ep("red", "r1", "198.18.2.21")]);
        Assert.Equal(blue.Id, again.GetNetwork("blue").Id);
        Assert.Equal(c1.Id, Assert.Single(again.GetEndpoints("blue")).Id);
        Assert.Empty(_dataPlane.Calls);
    }

    [Fact]
    public void What_the_API_made_is_restored_and_endpoints_whose_namespace_is_gone_are_released()
    {
        var (m, _) = Start([Blue], [Ep("blue", "c1", "198.18.0.11")]);
        m.CreateNetwork(new NetworkCreateRequest { Name = "green", Subnet = "198.18.4.0/24" });
        var kept = m.Attach(new EndpointAttachRequest { Network = "green", Netns = "w1" });
        var gone = m.Attach(new EndpointAttachRequest { Network = "green", Netns = "w2" });
        var onBlue = m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "w1", Interface = "eth1" });
        _dataPlane.Calls.Clear();

        var (after, released) = Start([Blue], [Ep("blue", "c1", "198.18.0.11")], "w1");
        // Only the API's objects reach the data plane: green, then w1 on green and on blue; w2's namespace is gone.
        Assert.Equal(["add green", "attach green/w1", "attach blue/w1"], _dataPlane.Calls);
        var r = Assert.Single(released);
        Assert.Equal(("green", gone.Id), (r.Network, r.Endpoint.Id));
        Assert.Contains("namespace w2 is gone", r.Reason);
        Assert.Equal(4096u, after.GetNetwork("green").Vni); // no --vni: the first automatic one
        var restored = after.GetEndpoints("green").Single();
        Assert.Equal((kept.Id, kept.Mac, kept.Address), (restored.Id, restored.Mac, restored.Address));
        Assert.Contains(after.GetEndpoints("blue"), e => e.Id == onBlue.Id);
        // The released address is free again, and w2's record is gone from the store for good.
        Assert.Equal(gone.Address, after.Attach(new EndpointAttachRequest { Network = "green", Netns = "w3", Address = VtepEndpoint.FormatAddress(gone.Address) }).Address);
        Assert.DoesNotContain(new FileNetworkStore(_dir).Load().Endpoints, e => e.Id == gone.Id);
    }

    [Fact]
    public void An_endpoint_the_data_plane_refuses_at_restore_is_released_with_its_reason()
    {
        var (m, _) = Start([], []);
        m.CreateNetwork(new NetworkCreateRequest { Name = "green", Subnet = "198.18.4.0/24" });
        var ep = m.Attach(new EndpointAttachRequest { Network = "green", Netns = "w1" });
        _dataPlane.FailOn = "attach";
        var (after, released) = Start([], [], "w1");
        Assert.Contains("data plane refuses attach", Assert.Single(released).Reason);
        Assert.Empty(after.GetEndpoints("green"));
        _dataPlane.FailOn = null;
        string ip = VtepEndpoint.FormatAddress(ep.Address);
        Assert.Equal(ep.Address, after.Attach(new EndpointAttachRequest { Network = "green", Netns = "w1", Address = ip }).Address); // its address is free
    }

    [Fact]
    public void A_changed_file_replaces_its_network_and_endpoints_when_no_run_time_endpoint_is_on_it()
    {
        var (m, _) = Start([Blue], [Ep("blue", "c1", "198.18.0.11"), Ep("blue", "c2", "198.18.0.12")]);
        string oldId = m.GetNetwork("blue").Id;

        // The VNI changes, c2 moves to .13: blue is replaced (a new id), its endpoints are the file's new ones.
        var (after, _) = Start([Blue with { Vni = 5001 }], [Ep("blue", "c1", "198.18.0.11"), Ep("blue", "c2", "198.18.0.13")]);
        var blue = after.GetNetwork("blue");
        Assert.NotEqual(oldId, blue.Id);
        Assert.Equal(5001u, blue.Vni);
        Assert.Equal(["198.18.0.11", "198.18.0.13"], after.GetEndpoints("blue").Select(e => VtepEndpoint.FormatAddress(e.Address)).Order());
        Assert.Single(new FileNetworkStore(_dir).Load().Networks);

        // Same network, one endpoint changed: the unchanged one keeps its id, the changed one is replaced.
        var (third, _) = Start([Blue with { Vni = 5001 }], [Ep("blue", "c1", "198.18.0.11"), Ep("blue", "c2", "198.18.0.14")]);
        Assert.Equal(after.GetEndpoints("blue").Single(e => e.Netns == "c1").Id, third.GetEndpoints("blue").Single(e => e.Netns == "c1").Id);
        Assert.Equal("198.18.0.14", VtepEndpoint.FormatAddress(third.GetEndpoints("blue").Single(e => e.Netns == "c2").Address));
        Assert.Empty(_dataPlane.Calls);
    }

    [Fact]
    public void A_changed_or_dropped_network_with_run_time_endpoints_on_it_fails_the_start_naming_them_and_changes_nothing()
    {
        var (m, _) = Start([Blue, Red], [Ep("blue", "c1", "198.18.0.11")]);
        m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "w1", Name = "web" });
        m.Attach(new EndpointAttachRequest { Network = "red", Netns = "w1", Name = "web", Interface = "eth1" });
        var before = new FileNetworkStore(_dir).Load();

        var e = Assert.Throws<ControlException>(() => Start([Blue with { Subnet = "198.18.8.0/24" }, Red], [Ep("blue", "c1", "198.18.8.11")], "w1"));
        Assert.Equal(Conflict, e.Code);
        Assert.Contains("networks[0] 'blue' differs from the stored network of that name (subnet 198.18.0.0/24 stored, 198.18.8.0/24 in the file)", e.Message);
        Assert.Contains("'web'", e.Message);

        var dropped = Assert.Throws<ControlException>(() => Start([Blue], [Ep("blue", "c1", "198.18.0.11")], "w1"));
        Assert.Contains("network 'red' came from the configuration file, which no longer declares it", dropped.Message);
        Assert.Contains("'web'", dropped.Message);

        var now = new FileNetworkStore(_dir).Load();
        Assert.Equal(before.Networks.Select(n => n.Id).Order(), now.Networks.Select(n => n.Id).Order());
        Assert.Equal(before.Endpoints.Select(x => x.Id).Order(), now.Endpoints.Select(x => x.Id).Order());
    }

    [Fact]
    public void A_network_dropped_from_the_file_goes_with_its_endpoints_and_one_the_API_made_is_adopted_by_a_file_that_declares_it_alike()
    {
        Start([Blue, Red], [Ep("red", "r1", "198.18.2.21")]);
        var (m, _) = Start([Blue], []);
        Assert.Equal(["blue"], m.ListNetworks().Select(n => n.Name));
        Assert.Empty(new FileNetworkStore(_dir).Load().Endpoints);

        var green = m.CreateNetwork(new NetworkCreateRequest { Name = "green", Vni = 4200, Subnet = "198.18.4.0/24" });
        var w1 = m.Attach(new EndpointAttachRequest { Network = "green", Netns = "w1" });
        var (after, _) = Start([Blue, new NetworkCreateRequest { Name = "green", Vni = 4200, Subnet = "198.18.4.0/24" }], [], "w1");
        var adopted = after.GetNetwork("green");
        Assert.Equal(green.Id, adopted.Id);
        Assert.True(adopted.FromConfig);
        Assert.Equal(w1.Id, Assert.Single(after.GetEndpoints("green")).Id); // its run-time endpoint stays
    }

    [Fact]
    public void A_file_network_that_overlaps_one_made_at_run_time_fails_the_start_naming_the_file_entry()
    {
        var (m, _) = Start([Blue], []);
        m.CreateNetwork(new NetworkCreateRequest { Name = "green", Subnet = "198.18.4.0/24" });
        var e = Assert.Throws<ControlException>(() => Start([Blue, Red with { Subnet = "198.18.4.0/25" }], []));
        Assert.Equal(Conflict, e.Code);
        Assert.StartsWith("the configuration's networks[1] 'red': subnet: 198.18.4.0/25 overlaps 198.18.4.0/24 of network 'green'", e.Message);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
