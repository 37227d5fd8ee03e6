using System.Collections.Concurrent;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Manager;

/// <summary>
/// The managers' operations: three managers over one store whose transactions are atomic (<see cref="NaiveStore"/>),
/// so races between managers are real compare-and-swap races.
/// </summary>
public sealed class ClusterManagerTests : IAsyncLifetime
{
    private const string WorkerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-workerworkerworkerworker1";
    private const string ManagerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-managermanagermanagerman";
    private readonly NaiveStore _store = new();
    private ClusterManager[] _managers = [];
    private NodeRecord _first = null!;

    public async ValueTask InitializeAsync()
    {
        _managers = [.. Enumerable.Range(0, 3).Select(_ => new ClusterManager(_store))];
        _first = Node("m1", NodeRole.Manager);
        await _managers[0].InitializeAsync(new ClusterInitSpec { Info = Info(), FirstNode = _first });
    }

    public ValueTask DisposeAsync() => _store.DisposeAsync();

    private ClusterManager M => _managers[0];

    private static Ipv4Prefix P(string cidr) => Ipv4Prefix.TryParse(cidr, out var p, out string why, allowHostBits: true) ? p : throw new ArgumentException(why);

    private static ClusterInfo Info() => new()
    {
        Id = "cluster1",
        Created = DateTimeOffset.UnixEpoch,
        RootCertificatePem = "root",
        RootKeyPem = "key",
        WorkerToken = WorkerToken,
        ManagerToken = ManagerToken,
        DefaultAddressPools = [P("198.18.0.0/16")],
        DefaultSubnetLength = 24,
    };

    private static NodeRecord Node(string host, NodeRole role) => new()
    {
        Id = "id-" + host,
        Hostname = host,
        Role = role,
        ControlAddress = "192.0.2.1:2377",
        DataPathAddress = "192.0.2.1",
        Joined = DateTimeOffset.UnixEpoch,
    };

    private static NodeAdmission Admission(string host) => new(host, "192.0.2.9:2377", "192.0.2.9");

    private static async Task<ControlException> Refused(Func<Task> action) => await Assert.ThrowsAsync<ControlException>(action);

    [Fact]
    public async Task A_store_holds_one_cluster()
    {
        var e = await Refused(() => _managers[1].InitializeAsync(new ClusterInitSpec { Info = Info() with { Id = "other" }, FirstNode = Node("x", NodeRole.Manager) }));
        Assert.Equal(ControlErrorCodes.Conflict, e.Code);
        Assert.Equal("cluster1", (await _managers[2].GetInfoAsync())!.Id);
        var rings = await Task.WhenAll(M.GetKeyRingAsync(KeyRing.Gossip), M.GetKeyRingAsync(KeyRing.Ipsec));
        Assert.All(rings, r => Assert.Equal(32, Assert.Single(r.Keys).Material.Length));
        Assert.NotEqual(rings[0].Newest.Material, rings[1].Newest.Material);
    }

    [Fact]
    public async Task Tokens_choose_the_role_and_a_wrong_or_rotated_token_records_nothing()
    {
        var w = await _managers[1].AdmitAsync(WorkerToken, Admission("w1"));
        var m = await _managers[2].AdmitAsync(ManagerToken, Admission("m2"));
        Assert.Equal(NodeRole.Worker, w.Role);
        Assert.Equal(NodeRole.Manager, m.Role);
        Assert.Equal(25, w.Id.Length);
        Assert.NotEqual(w.Id, m.Id);

        long revision = _store.Revision;
        var bad = await Refused(() => M.AdmitAsync(WorkerToken[..^1] + "x", Admission("w2")));
        Assert.Equal(ControlErrorCodes.PermissionDenied, bad.Code);
        Assert.Equal(revision, _store.Revision);

        await M.RotateTokenAsync(NodeRole.Worker, WorkerToken[..^1] + "2");
        var rotated = await Refused(() => _managers[1].AdmitAsync(WorkerToken, Admission("w3")));
        Assert.Equal(ControlErrorCodes.PermissionDenied, rotated.Code);
        Assert.Equal(NodeRole.Worker, (await M.AdmitAsync(WorkerToken[..^1] + "2", Admission("w3"))).Role);
        Assert.Equal(NodeRole.Manager, (await M.AdmitAsync(ManagerToken, Admission("m3"))).Role); // the manager token is unchanged

        var names = (await _managers[2].ListNodesAsync()).Select(n => n.Hostname);
        Assert.Equal(["m1", "m2", "m3", "w1", "w3"], names);
    }

    [Fact]
    public async Task Host_names_are_unique_even_when_two_nodes_join_at_once()
    {
        var results = await Task.WhenAll(_managers.Select(async m =>
        {
            try { await m.AdmitAsync(WorkerToken, Admission("same")); return null; }
            catch (ControlException e) { return e; }
        }));
        Assert.Equal(1, results.Count(r => r is null));
        Assert.All(results.Where(r => r is not null), e => Assert.Equal(ControlErrorCodes.Conflict, e!.Code));
        Assert.Single(await M.ListNodesAsync(), n => n.Hostname == "same");
    }

    [Fact]
    public async Task Networks_get_VNIs_from_4096_and_subnets_from_the_pool()
    {
        var a = await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "a", Attachable = true });
        var b = await _managers[1].CreateNetworkAsync(new NetworkCreateRequest { Name = "b", Encrypted = true });
        Assert.Equal((4096u, "198.18.0.0/24", "swarm"), (a.Vni, a.Subnet.ToString(), a.Scope));
        Assert.Equal((4097u, "198.18.1.0/24"), (b.Vni, b.Subnet.ToString()));
        Assert.True(b.Encrypted);
        Assert.Equal(P("198.18.0.0/24").Network + 1, a.Gateway);

        Assert.Equal(ControlErrorCodes.Conflict, (await Refused(() => _managers[2].CreateNetworkAsync(new NetworkCreateRequest { Name = "a" }))).Code);
        Assert.Equal(ControlErrorCodes.Conflict, (await Refused(() => M.CreateNetworkAsync(new NetworkCreateRequest { Name = "c", Vni = 4096 }))).Code);
        Assert.Equal(ControlErrorCodes.Conflict, (await Refused(() => M.CreateNetworkAsync(new NetworkCreateRequest { Name = "c", Subnet = "198.18.1.128/25" }))).Code);
        var keyFile = await Refused(() => M.CreateNetworkAsync(new NetworkCreateRequest { Name = "c", Encrypted = true, Options = new Dictionary<string, string> { ["key_file"] = "/k" } }));
        Assert.Contains("key_file", keyFile.Message);

        Assert.Equal(["a", "b"], (await _managers[2].ListNetworksAsync()).Select(n => n.Name));
        Assert.Equal(b.Id, (await M.GetNetworkAsync(b.Id[..6])).Id);
    }

    [Fact]
    public async Task Managers_creating_networks_at_once_never_share_a_name_VNI_or_subnet()
    {
        var created = new ConcurrentBag<NetworkDefinition>();
        var refused = new ConcurrentBag<ControlException>();
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            // Four distinct names, each asked for by three managers.
            try { created.Add(await _managers[i % 3].CreateNetworkAsync(new NetworkCreateRequest { Name = $"n{i / 3}" })); }
            catch (ControlException e) { refused.Add(e); }
        })));
        Assert.Equal(4, created.Count);
        Assert.Equal(8, refused.Count);
        Assert.All(refused, e => Assert.Equal(ControlErrorCodes.Conflict, e.Code));
        Assert.Equal(4, created.Select(n => n.Vni).Distinct().Count());
        var subnets = created.Select(n => n.Subnet).ToList();
        Assert.Equal(4, subnets.Distinct().Count());
        foreach (var x in subnets)
            Assert.Single(subnets, y => NetworkValidator.Overlaps(x, y));
        Assert.Equal(4, (await M.ListNetworksAsync()).Count);
    }

    [Fact]
    public async Task Concurrent_allocations_from_every_manager_never_share_an_address()
    {
        var net = await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "big", Subnet = "198.18.8.0/22", Attachable = true });
        var nodes = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => _managers[i].AdmitAsync(WorkerToken, Admission($"w{i}"))));
        var all = new ConcurrentBag<AddressAllocation>();
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(async () =>
        {
            for (int e = 0; e < 60; e++)
                all.Add(await _managers[i].AllocateAsync(new AllocationRequest { Network = "big", NodeId = nodes[i].Id, EndpointId = $"ep{e}", Name = $"c{i}-{e}" }));
        })));
        Assert.Equal(180, all.Count);
        Assert.Equal(180, all.Select(a => a.Address).Distinct().Count());
        Assert.All(all, a => Assert.True(net.Subnet.Contains(a.Address) && a.Address != net.Gateway));
        Assert.Equal(180, (await _managers[2].ListAllocationsAsync(net.Id)).Count);
        Assert.All(all, a => Assert.Equal(UserOverlay.Control.Networks.EndpointMac.FromAddress(a.Address), a.Mac));

        // A retried request (the answer was lost) gets the same address back.
        var again = await M.AllocateAsync(new AllocationRequest { Network = "big", NodeId = nodes[0].Id, EndpointId = "ep0", Name = "c0-0" });
        Assert.Equal(all.Single(a => a.NodeId == nodes[0].Id && a.EndpointId == "ep0").Address, again.Address);
    }

    [Fact]
    public async Task Fixed_addresses_are_checked_and_attachable_is_enforced()
    {
        await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "n", Subnet = "198.18.2.0/24", Attachable = true });
        await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "fixed", Subnet = "198.18.3.0/24" });
        var w = await M.AdmitAsync(WorkerToken, Admission("w"));
        var a = await M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w.Id, EndpointId = "e1", Name = "web", Address = "198.18.2.50" });
        Assert.Equal(P("198.18.2.50/32").Network, a.Address);

        var taken = await Refused(() => _managers[1].AllocateAsync(new AllocationRequest { Network = "n", NodeId = w.Id, EndpointId = "e2", Name = "db", Address = "198.18.2.50" }));
        Assert.Equal((ControlErrorCodes.Conflict, "ip"), (taken.Code, taken.Field));
        Assert.Contains("web", taken.Message);
        var outside = await Refused(() => M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w.Id, EndpointId = "e2", Name = "db", Address = "198.18.9.1" }));
        Assert.Equal(ControlErrorCodes.InvalidArgument, outside.Code);
        var gateway = await Refused(() => M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w.Id, EndpointId = "e2", Name = "db", Address = "198.18.2.1" }));
        Assert.Equal("ip", gateway.Field);

        var adHoc = await Refused(() => M.AllocateAsync(new AllocationRequest { Network = "fixed", NodeId = w.Id, EndpointId = "e3", Name = "x" }));
        Assert.Equal(ControlErrorCodes.PermissionDenied, adHoc.Code);
        Assert.Contains("attachable", adHoc.Message);
        await M.AllocateAsync(new AllocationRequest { Network = "fixed", NodeId = w.Id, EndpointId = "e3", Name = "x", AdHoc = false });

        var unknown = await Refused(() => M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = "nobody", EndpointId = "e4", Name = "y" }));
        Assert.Equal(ControlErrorCodes.NotFound, unknown.Code);
        Assert.Single(await M.ListAllocationsAsync((await M.GetNetworkAsync("n")).Id));
    }

    [Fact]
    public async Task A_network_in_use_is_not_removed_and_names_its_endpoints()
    {
        var net = await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "n", Attachable = true });
        var w = await M.AdmitAsync(WorkerToken, Admission("host-w"));
        await M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w.Id, EndpointId = "e1", Name = "web" });
        var inUse = await Refused(() => _managers[1].RemoveNetworkAsync("n"));
        Assert.Equal(ControlErrorCodes.InUse, inUse.Code);
        Assert.Contains("web on host-w", inUse.Message);

        Assert.True(await M.ReleaseAsync(net.Id, w.Id, "e1"));
        Assert.False(await M.ReleaseAsync(net.Id, w.Id, "e1"));
        await _managers[1].RemoveNetworkAsync("n");
        Assert.Empty(await M.ListNetworksAsync());
        var again = await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "n" });
        Assert.Equal(4096u, again.Vni); // name and VNI are free again
    }

    [Fact]
    public async Task A_network_removed_while_nodes_allocate_leaves_no_address_behind()
    {
        var net = await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "churn", Subnet = "198.18.4.0/24", Attachable = true });
        var w = await M.AdmitAsync(WorkerToken, Admission("w"));
        using var stop = new CancellationTokenSource();
        var granted = new ConcurrentBag<AddressAllocation>();
        var allocators = Enumerable.Range(1, 2).Select(i => Task.Run(async () =>
        {
            for (int e = 0; !stop.IsCancellationRequested; e++)
            {
                try
                {
                    var a = await _managers[i].AllocateAsync(new AllocationRequest { Network = net.Id, NodeId = w.Id, EndpointId = $"{i}-{e}", Name = "x" });
                    granted.Add(a);
                    await _managers[i].ReleaseAsync(net.Id, w.Id, a.EndpointId);
                }
                catch (ControlException x) when (x.Code == ControlErrorCodes.NotFound) { return; }
            }
        })).ToList();
        await Task.Delay(100);
        NetworkDefinition? removed = null;
        for (int i = 0; i < 200 && removed is null; i++)
        {
            try { removed = await M.RemoveNetworkAsync(net.Id); }
            catch (ControlException e) when (e.Code == ControlErrorCodes.InUse) { }
        }
        stop.Cancel();
        await Task.WhenAll(allocators);
        Assert.NotNull(removed);
        Assert.NotEmpty(granted);
        Assert.Empty((await _store.RangeAsync(ClusterKeys.NetworkIpam(net.Id))).Kvs);
    }

    [Fact]
    public async Task Removing_a_node_releases_its_addresses_and_the_last_manager_stays()
    {
        await M.CreateNetworkAsync(new NetworkCreateRequest { Name = "n", Attachable = true });
        var w1 = await M.AdmitAsync(WorkerToken, Admission("w1"));
        var w2 = await M.AdmitAsync(WorkerToken, Admission("w2"));
        for (int e = 0; e < 5; e++)
        {
            await M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w1.Id, EndpointId = $"a{e}", Name = "x" });
            await M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w2.Id, EndpointId = $"b{e}", Name = "y" });
        }
        await _managers[1].RemoveNodeAsync("w1");
        var left = await M.ListAllocationsAsync((await M.GetNetworkAsync("n")).Id);
        Assert.Equal(5, left.Count);
        Assert.All(left, a => Assert.Equal(w2.Id, a.NodeId));
        var gone = await Refused(() => M.AllocateAsync(new AllocationRequest { Network = "n", NodeId = w1.Id, EndpointId = "late", Name = "z" }));
        Assert.Equal(ControlErrorCodes.NotFound, gone.Code);
        Assert.Equal(["m1", "w2"], (await M.ListNodesAsync()).Select(n => n.Hostname));

        var last = await Refused(() => M.RemoveNodeAsync("m1", force: true));
        Assert.Contains("last manager", last.Message);
        Assert.Contains("last manager", (await Refused(() => M.SetRoleAsync("m1", NodeRole.Worker))).Message);

        var m2 = await M.AdmitAsync(ManagerToken, Admission("m2"));
        Assert.Contains("demote", (await Refused(() => M.RemoveNodeAsync("m2"))).Message);
        await M.SetRoleAsync(m2.Id, NodeRole.Worker);
        await M.SetRoleAsync("w2", NodeRole.Manager);
        await M.SetRoleAsync("m1", NodeRole.Worker); // w2 is a manager now
        await M.RemoveNodeAsync("m2");
        Assert.Equal([("m1", NodeRole.Worker), ("w2", NodeRole.Manager)], (await M.ListNodesAsync()).Select(n => (n.Hostname, n.Role)));
        // The host name is free again.
        Assert.Equal("m2", (await M.AdmitAsync(WorkerToken, Admission("m2"))).Hostname);
    }

    [Fact]
    public async Task Two_managers_demoted_at_once_cannot_leave_the_cluster_without_one()
    {
        var m2 = await M.AdmitAsync(ManagerToken, Admission("m2"));
        for (int round = 0; round < 10; round++)
        {
            var results = await Task.WhenAll(
                Try(() => _managers[1].SetRoleAsync("m1", NodeRole.Worker)),
                Try(() => _managers[2].SetRoleAsync("m2", NodeRole.Worker)));
            Assert.Contains((await M.ListNodesAsync()), n => n.Role == NodeRole.Manager);
            await M.SetRoleAsync("m1", NodeRole.Manager);
            await M.SetRoleAsync("m2", NodeRole.Manager);
        }

        static async Task<Exception?> Try(Func<Task> a)
        {
            try { await a(); return null; }
            catch (ControlException e) { return e; }
        }
    }

    [Fact]
    public async Task Key_rings_keep_the_newest_three()
    {
        var first = await M.GetKeyRingAsync(KeyRing.Ipsec);
        var skipped = await M.RotateKeysAsync(KeyRing.Ipsec, ifOlderThan: TimeSpan.FromDays(1000 * 365));
        Assert.Equal(first.Keys.Select(k => k.Generation), skipped.Keys.Select(k => k.Generation));
        for (int i = 0; i < 4; i++) await _managers[i % 3].RotateKeysAsync(KeyRing.Ipsec);
        var ring = await _managers[2].GetKeyRingAsync(KeyRing.Ipsec);
        Assert.Equal([3L, 4L, 5L], ring.Keys.Select(k => k.Generation));
        Assert.Equal(5, ring.Newest.Generation);
        Assert.Equal(3, ring.Keys.Select(k => Convert.ToHexString(k.Material)).Distinct().Count());
        Assert.Single((await M.GetKeyRingAsync(KeyRing.Gossip)).Keys); // the other subsystem is unchanged
    }
}
