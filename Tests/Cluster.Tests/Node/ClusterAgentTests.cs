using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Node;
using UserOverlay.Cluster.Tests.Manager;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Node;

/// <summary>
/// Nodes' agents against managers in process (<see cref="ManagerApi"/> over a transactional store with watches): a
/// network created once reaches every node, attaches take cluster addresses, releases reach the managers, and an
/// outage refuses new attaches cleanly while the node keeps what it serves.
/// </summary>
public sealed class ClusterAgentTests : IAsyncLifetime
{
    private readonly NaiveStore _store = new();
    private readonly ClusterManager _manager;
    private readonly List<Host> _hosts = [];

    public ClusterAgentTests()
    {
        _manager = new ClusterManager(_store);
        // As the daemon does (DaemonHost.MinPoolThreads): attaches block a pool thread each while they wait for the
        // manager's lock, and the reservation's answer needs a free one.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 128), io);
    }

    public async ValueTask InitializeAsync()
    {
        var first = new NodeRecord { Id = "node-m1", Hostname = "m1", Role = NodeRole.Manager, ControlAddress = "192.0.2.1:2377", DataPathAddress = "192.0.2.1", Joined = DateTimeOffset.UnixEpoch };
        await _manager.InitializeAsync(new ClusterInitSpec
        {
            FirstNode = first,
            Info = new ClusterInfo
            {
                Id = "c1",
                Created = DateTimeOffset.UnixEpoch,
                RootCertificatePem = "root",
                RootKeyPem = "key",
                WorkerToken = "wt",
                ManagerToken = "mt",
                DefaultAddressPools = [Ipv4Prefix.TryParse("198.18.0.0/16", out var pool, out _) ? pool : throw new InvalidOperationException()],
            },
        });
        _hosts.Add(NewHost(first));
        foreach (string name in new[] { "w1", "w2" })
        {
            var node = await _manager.AdmitAsync("wt", new NodeAdmission(name, "192.0.2.9:2377", "192.0.2.9"));
            _hosts.Add(NewHost(node));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var h in _hosts) await h.Agent.DisposeAsync();
        await _store.DisposeAsync();
    }

    private Host NewHost(NodeRecord node, IClusterApi? api = null, TimeProvider? time = null)
    {
        var plane = new RecordingPlane();
        var networks = new NetworkManager(new InMemoryNetworkStore(), plane);
        api ??= new ManagerApi(_manager, node.Id, node.Role, _ => "rotated");
        var agent = new ClusterAgent(api, networks, new ClusterAgentOptions
        {
            NodeId = node.Id,
            PollWait = TimeSpan.FromMilliseconds(500),
            RetryDelay = TimeSpan.FromMilliseconds(20),
            MaxRetryDelay = TimeSpan.FromMilliseconds(100),
            Time = time ?? TimeProvider.System,
        }, NullLogger.Instance);
        return new Host(node, networks, plane, agent);
    }

    private sealed record Host(NodeRecord Node, NetworkManager Networks, RecordingPlane Plane, ClusterAgent Agent);

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(20))
            if (condition()) return;
        Assert.Fail($"not within 10 s: {what}");
    }

    private Task<NetworkDefinition> CreateOnManager(string name, bool attachable = true, bool encrypted = false) =>
        new ManagerApi(_manager, "node-m1", NodeRole.Manager, _ => "x")
            .CreateNetworkAsync(new NetworkCreateRequest { Name = name, Attachable = attachable, Encrypted = encrypted });

    [Fact]
    public async Task A_network_created_once_is_served_by_every_node_with_one_definition()
    {
        foreach (var h in _hosts) h.Agent.Start();
        await Task.WhenAll(_hosts.Select(h => h.Agent.WaitForFirstStateAsync(TimeSpan.FromSeconds(10))));
        var def = await CreateOnManager("blue");

        await Eventually(() => _hosts.All(h => h.Networks.ListNetworks().Any(n => n.Id == def.Id)), "every node serves 'blue'");
        foreach (var h in _hosts)
        {
            var local = h.Networks.GetNetwork("blue");
            Assert.Equal((def.Id, def.Vni, def.Subnet, def.Gateway), (local.Id, local.Vni, local.Subnet, local.Gateway));
            Assert.Equal(NetworkManager.SwarmScope, local.Scope);
            Assert.Contains(def.Id, h.Plane.Networks.Keys); // the data plane serves it
        }
        Assert.True(def.Vni >= 4096);
        Assert.Equal(24, def.Subnet.Length); // from the default address pool
    }

    [Fact]
    public async Task Concurrent_attaches_on_every_node_never_share_an_address_and_the_managers_record_each()
    {
        var def = await CreateOnManager("green");
        foreach (var h in _hosts) await h.Agent.SyncNowAsync();
        foreach (var h in _hosts) h.Agent.Start();

        const int perHost = 12;
        var attached = new ConcurrentBag<(string Node, EndpointRecord Ep)>();
        await Task.WhenAll(_hosts.SelectMany(h => Enumerable.Range(0, perHost).Select(i => Task.Run(() =>
            attached.Add((h.Node.Id, h.Networks.Attach(new EndpointAttachRequest { Network = "green", Netns = $"{h.Node.Hostname}-ns{i}" })))))));

        Assert.Equal(3 * perHost, attached.Count);
        Assert.Equal(3 * perHost, attached.Select(a => a.Ep.Address).Distinct().Count());
        Assert.Equal(3 * perHost, attached.Select(a => a.Ep.Mac).Distinct().Count());
        var cluster = await _manager.ListAllocationsAsync(def.Id);
        Assert.Equal(
            attached.Select(a => (a.Node, a.Ep.Id, a.Ep.Address)).OrderBy(x => x.Address),
            cluster.Select(a => (a.NodeId, a.EndpointId, a.Address)).OrderBy(x => x.Address));
        Assert.DoesNotContain(cluster, a => a.Address == def.Gateway);
    }

    [Fact]
    public async Task A_fixed_address_taken_on_another_node_is_refused_and_leaves_nothing()
    {
        var def = await CreateOnManager("red");
        foreach (var h in _hosts) await h.Agent.SyncNowAsync();
        var ep = _hosts[1].Networks.Attach(new EndpointAttachRequest { Network = "red", Netns = "a" });
        string ip = VtepEndpoint.FormatAddress(ep.Address);

        var e = Assert.Throws<ControlException>(() => _hosts[2].Networks.Attach(new EndpointAttachRequest { Network = "red", Netns = "b", Address = ip }));
        Assert.Equal(ControlErrorCodes.Conflict, e.Code);
        Assert.Contains(ip, e.Message);
        Assert.Empty(_hosts[2].Networks.GetEndpoints("red"));
        Assert.Empty(_hosts[2].Plane.Endpoints);
        Assert.Single(await _manager.ListAllocationsAsync(def.Id));
    }

    [Fact]
    public async Task A_network_that_is_not_attachable_refuses_ad_hoc_workloads()
    {
        var def = await CreateOnManager("fixed", attachable: false);
        await _hosts[1].Agent.SyncNowAsync();

        var e = Assert.Throws<ControlException>(() => _hosts[1].Networks.Attach(new EndpointAttachRequest { Network = "fixed", Netns = "x" }));
        Assert.Equal(ControlErrorCodes.PermissionDenied, e.Code);
        Assert.Contains("attachable", e.Message);
        Assert.Empty(_hosts[1].Networks.GetEndpoints("fixed"));
        Assert.Empty(await _manager.ListAllocationsAsync(def.Id));
    }

    [Fact]
    public async Task A_detach_gives_the_address_back_to_the_managers()
    {
        var def = await CreateOnManager("amber");
        var h = _hosts[2];
        h.Agent.Start();
        await h.Agent.WaitForFirstStateAsync(TimeSpan.FromSeconds(10));
        await Eventually(() => h.Networks.ListNetworks().Any(n => n.Id == def.Id), "the node serves 'amber'");
        var ep = h.Networks.Attach(new EndpointAttachRequest { Network = "amber", Netns = "n1" });
        Assert.Single(await _manager.ListAllocationsAsync(def.Id));

        h.Networks.Detach("amber", "n1");
        for (int i = 0; i < 500 && (await _manager.ListAllocationsAsync(def.Id)).Count > 0; i++) await Task.Delay(20);
        Assert.Empty(await _manager.ListAllocationsAsync(def.Id));
        Assert.True(h.Agent.Counters.ReleasesCount >= 1);

        // And the address is free for another node at once.
        await _hosts[1].Agent.SyncNowAsync();
        var again = _hosts[1].Networks.Attach(new EndpointAttachRequest { Network = "amber", Netns = "n2", Address = VtepEndpoint.FormatAddress(ep.Address) });
        Assert.Equal(ep.Address, again.Address);
    }

    [Fact]
    public async Task A_network_the_managers_remove_is_no_longer_served()
    {
        var def = await CreateOnManager("gone");
        foreach (var h in _hosts) h.Agent.Start();
        await Eventually(() => _hosts.All(h => h.Networks.ListNetworks().Any(n => n.Id == def.Id)), "every node serves 'gone'");

        await _manager.RemoveNetworkAsync("gone");

        await Eventually(() => _hosts.All(h => !h.Networks.ListNetworks().Any(n => n.Id == def.Id)), "no node serves 'gone'");
        Assert.All(_hosts, h => Assert.DoesNotContain(def.Id, h.Plane.Networks.Keys));
    }

    [Fact]
    public async Task While_no_manager_answers_attaches_fail_clearly_and_the_node_keeps_its_networks()
    {
        var def = await CreateOnManager("steady");
        var outage = new SwitchableApi(new ManagerApi(_manager, _hosts[1].Node.Id, NodeRole.Worker, _ => "x"));
        var h = NewHost(_hosts[1].Node, outage);
        _hosts.Add(h);
        await h.Agent.SyncNowAsync();
        h.Agent.Start();
        var kept = h.Networks.Attach(new EndpointAttachRequest { Network = "steady", Netns = "before" });

        outage.Down = true;
        await Eventually(() => !h.Agent.Connected, "the agent notices the outage");
        var e = Assert.Throws<ControlException>(() => h.Networks.Attach(new EndpointAttachRequest { Network = "steady", Netns = "during" }));
        Assert.Equal(ControlErrorCodes.Unavailable, e.Code);
        Assert.Single(h.Networks.GetEndpoints("steady"));
        Assert.Contains(def.Id, h.Plane.Networks.Keys); // still served
        Assert.Contains(kept.Id, h.Plane.Endpoints.Keys);

        // A detach during the outage is given back once a manager answers again.
        h.Networks.Detach("steady", "before");
        Assert.Single(await _manager.ListAllocationsAsync(def.Id));
        outage.Down = false;
        for (int i = 0; i < 500 && (await _manager.ListAllocationsAsync(def.Id)).Count > 0; i++) await Task.Delay(20);
        Assert.Empty(await _manager.ListAllocationsAsync(def.Id));
        await Eventually(() => h.Agent.Connected, "the agent reconnects");
    }

    [Fact]
    public async Task An_address_the_managers_hold_for_an_endpoint_this_node_lost_is_given_back()
    {
        var def = await CreateOnManager("orphans");
        var node = _hosts[2].Node;
        // As if the node crashed between the reservation and its attach: the managers hold an address for nothing.
        await _manager.AllocateAsync(new AllocationRequest { Network = "orphans", NodeId = node.Id, EndpointId = ObjectIds.New(), Name = "lost" });
        Assert.Single(await _manager.ListAllocationsAsync(def.Id));

        _hosts[2].Agent.Start();
        for (int i = 0; i < 500 && (await _manager.ListAllocationsAsync(def.Id)).Count > 0; i++) await Task.Delay(20);
        Assert.Empty(await _manager.ListAllocationsAsync(def.Id));
        Assert.Equal(1, _hosts[2].Agent.Counters.OrphansReleasedCount);
    }

    [Fact]
    public async Task Managers_only_operations_are_refused_to_a_worker()
    {
        var worker = new ManagerApi(_manager, _hosts[1].Node.Id, NodeRole.Worker, _ => "x");
        var e = await Assert.ThrowsAsync<ControlException>(() => worker.CreateNetworkAsync(new NetworkCreateRequest { Name = "nope" }));
        Assert.Equal(ControlErrorCodes.PermissionDenied, e.Code);
        await Assert.ThrowsAsync<ControlException>(() => worker.RemoveNodeAsync("m1", force: true));
        await Assert.ThrowsAsync<ControlException>(() => worker.GetJoinTokenAsync(NodeRole.Manager, rotate: false));
        await Assert.ThrowsAsync<ControlException>(() => worker.SetRoleAsync(new RoleChange(_hosts[1].Node.Id, NodeRole.Manager)));
        Assert.Empty(await _manager.ListNetworksAsync());
        Assert.Equal(3, (await _manager.ListNodesAsync()).Count);
    }

    /// <summary>A data plane that records what it serves.</summary>
    private sealed class RecordingPlane : INetworkDataPlane
    {
        public ConcurrentDictionary<string, NetworkDefinition> Networks { get; } = new();
        public ConcurrentDictionary<string, EndpointRecord> Endpoints { get; } = new();
        public void AddNetwork(NetworkDefinition network) => Networks[network.Id] = network;
        public void RemoveNetwork(NetworkDefinition network) => Networks.TryRemove(network.Id, out _);
        public void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint) => Endpoints[endpoint.Id] = endpoint;
        public void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint) => Endpoints.TryRemove(endpoint.Id, out _);
    }

    /// <summary>An API whose managers can be made unreachable.</summary>
    private sealed class SwitchableApi(IClusterApi inner) : IClusterApi
    {
        public volatile bool Down;
        public string Peer => "the switchable manager";
        private Task<T> Call<T>(Func<Task<T>> f) => Down ? throw new ControlException(ControlErrorCodes.Unavailable, "cannot reach the switchable manager", "manager") : f();
        public Task<ClusterState> GetStateAsync(long afterRevision, TimeSpan wait, CancellationToken cancellationToken = default) => Call(() => inner.GetStateAsync(afterRevision, wait, cancellationToken));
        public Task<AddressAllocation> AllocateAsync(AllocationRequest request, CancellationToken cancellationToken = default) => Call(() => inner.AllocateAsync(request, cancellationToken));
        public Task ReleaseAsync(ReleaseRequest request, CancellationToken cancellationToken = default) => Call(async () => { await inner.ReleaseAsync(request, cancellationToken); return 0; });
        public Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default) => Call(() => inner.CreateNetworkAsync(request, cancellationToken));
        public Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken = default) => Call(() => inner.RemoveNetworkAsync(nameOrId, cancellationToken));
        public Task<NodeRecord> SetRoleAsync(RoleChange change, CancellationToken cancellationToken = default) => Call(() => inner.SetRoleAsync(change, cancellationToken));
        public Task<NodeRecord> RemoveNodeAsync(string node, bool force, CancellationToken cancellationToken = default) => Call(() => inner.RemoveNodeAsync(node, force, cancellationToken));
        public Task<JoinTokenView> GetJoinTokenAsync(NodeRole role, bool rotate, CancellationToken cancellationToken = default) => Call(() => inner.GetJoinTokenAsync(role, rotate, cancellationToken));
    }
}
