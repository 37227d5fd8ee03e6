using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;
using static UserOverlay.Control.Networks.ControlErrorCodes;

namespace UserOverlay.Control.Tests;

/// <summary>
/// A host's side of cluster networks in <see cref="NetworkManager"/>: adopting the cluster's definition, forgetting it,
/// and attaching through an <see cref="IAddressAuthority"/> — all-or-nothing, like the host's own networks.
/// </summary>
public class ClusterNetworkTests
{
    private readonly InMemoryNetworkStore _store = new();
    private readonly RecordingDataPlane _dataPlane = new();
    private readonly NetworkManager _manager;
    private readonly Authority _authority = new();

    public ClusterNetworkTests() => _manager = new NetworkManager(_store, _dataPlane);

    private static NetworkDefinition Cluster(string name, string subnet, uint vni) => new()
    {
        Id = ObjectIds.New(),
        Name = name,
        Created = DateTimeOffset.UnixEpoch,
        Scope = "swarm",
        Subnet = Ipv4Prefix.TryParse(subnet, out var p, out _) ? p : throw new ArgumentException(subnet),
        Gateway = (Ipv4Prefix.TryParse(subnet, out p, out _) ? p.Network : 0) + 1,
        Vni = vni,
        Attachable = true,
    };

    [Fact]
    public void An_adopted_network_keeps_the_cluster_s_id_and_VNI_and_is_served_and_stored_once()
    {
        var def = Cluster("blue", "198.18.8.0/24", 4096);
        var adopted = _manager.AdoptNetwork(def);
        Assert.Equal((def.Id, def.Vni, "swarm"), (adopted.Id, adopted.Vni, adopted.Scope));
        Assert.Equal(adopted, _manager.AdoptNetwork(def)); // idempotent
        Assert.Equal(["add blue"], _dataPlane.Calls);
        Assert.Equal(def.Id, Assert.Single(_store.Networks).Id);
    }

    [Fact]
    public void Adopting_is_refused_when_a_local_network_has_the_name_the_VNI_or_an_overlapping_subnet()
    {
        _manager.CreateNetwork(new NetworkCreateRequest { Name = "mine", Subnet = "198.18.8.0/24", Vni = 5000 });
        foreach (var (def, field) in new[]
        {
            (Cluster("mine", "198.18.9.0/24", 4096), "name"),
            (Cluster("other", "198.18.9.0/24", 5000), "vni"),
            (Cluster("other", "198.18.8.128/25", 4096), "subnet"),
        })
        {
            var e = Assert.Throws<ControlException>(() => _manager.AdoptNetwork(def));
            Assert.Equal((Conflict, field), (e.Code, e.Field));
            Assert.Contains("'mine'", e.Message);
        }
        Assert.Single(_manager.ListNetworks());
        Assert.Equal(["add mine"], _dataPlane.Calls);
    }

    [Fact]
    public void Attaching_to_a_cluster_network_takes_the_authority_s_address_and_gives_it_back_on_detach()
    {
        var def = _manager.AdoptNetwork(Cluster("blue", "198.18.8.0/24", 4096));
        var none = Assert.Throws<ControlException>(() => _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" }));
        Assert.Equal(Unavailable, none.Code);
        Assert.Empty(_manager.GetEndpoints("blue"));

        _manager.AddressAuthority = _authority;
        _authority.Next = def.Subnet.Network + 77;
        var ep = _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" });
        Assert.Equal(def.Subnet.Network + 77, ep.Address);
        Assert.Equal(EndpointMac.FromAddress(ep.Address), ep.Mac);
        Assert.Equal([ep.Id], _authority.Reserved);

        _manager.Detach("blue", "a");
        Assert.Equal([ep.Id], _authority.Released);
    }

    [Fact]
    public void A_failed_attach_gives_the_reservation_back_and_leaves_nothing()
    {
        var def = _manager.AdoptNetwork(Cluster("blue", "198.18.8.0/24", 4096));
        _manager.AddressAuthority = _authority;
        _authority.Next = def.Subnet.Network + 5;
        _dataPlane.FailOn = "attach";
        Assert.Throws<InvalidOperationException>(() => _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" }));
        Assert.Equal(_authority.Reserved, _authority.Released);
        Assert.Empty(_manager.GetEndpoints("blue"));
        Assert.Empty(_store.Endpoints);

        _authority.Refuse = new ControlException(PermissionDenied, "network 'blue' is not attachable");
        _dataPlane.FailOn = null;
        var e = Assert.Throws<ControlException>(() => _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "b" }));
        Assert.Equal(PermissionDenied, e.Code);
        Assert.Empty(_manager.GetEndpoints("blue"));
    }

    [Fact]
    public void Forgetting_a_cluster_network_detaches_its_endpoints_and_a_local_network_cannot_be_forgotten()
    {
        var def = _manager.AdoptNetwork(Cluster("blue", "198.18.8.0/24", 4096));
        _manager.AddressAuthority = _authority;
        _authority.Next = def.Subnet.Network + 9;
        var ep = _manager.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" });
        var local = _manager.CreateNetwork(new NetworkCreateRequest { Name = "mine", Subnet = "198.18.20.0/24" });

        Assert.Equal([ep.Id], _manager.ForgetNetwork(def.Id).Select(e => e.Id));
        Assert.Equal(["add blue", "attach blue/a", "add mine", "detach blue/a", "remove blue"], _dataPlane.Calls);
        Assert.Equal(local.Id, Assert.Single(_store.Networks).Id);
        Assert.Empty(_store.Endpoints);
        Assert.Empty(_manager.ForgetNetwork(def.Id));
        Assert.Equal(InvalidArgument, Assert.Throws<ControlException>(() => _manager.ForgetNetwork(local.Id)).Code);
    }

    private sealed class Authority : IAddressAuthority
    {
        public uint Next;
        public ControlException? Refuse;
        public List<string> Reserved { get; } = [];
        public List<string> Released { get; } = [];

        public AddressReservation Reserve(NetworkDefinition network, string endpointId, string name, uint? address, MacAddress? mac)
        {
            if (Refuse is not null) throw Refuse;
            Reserved.Add(endpointId);
            uint a = address ?? Next++;
            return new AddressReservation(a, mac ?? EndpointMac.FromAddress(a));
        }

        public void Release(NetworkDefinition network, string endpointId) => Released.Add(endpointId);
    }
}
