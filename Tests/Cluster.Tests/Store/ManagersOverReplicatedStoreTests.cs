using System.Collections.Concurrent;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// The managers' races (as <c>ClusterManagerTests</c> runs them over its naive store) over the embedded store: three
/// managers, each on its own member of a three-member <see cref="InMemoryLogGroup"/>, so each reads its own lagging
/// replica and every decision is a compare-and-swap through the shared log.
/// </summary>
public sealed class ManagersOverReplicatedStoreTests : IAsyncLifetime
{
    private const string WorkerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-workerworkerworkerworker1";
    private const string ManagerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-managermanagermanagerman";
    private InMemoryLogGroup _group = null!;
    private ReplicatedClusterStore[] _stores = [];
    private ClusterManager[] _managers = [];

    public async ValueTask InitializeAsync()
    {
        _group = InMemoryLogGroup.Create(3);
        _stores = [.. _group.Members.Select(m => new ReplicatedClusterStore(m))];
        foreach (var s in _stores) await s.StartAsync();
        _managers = [.. _stores.Select(s => new ClusterManager(s))];
        await _managers[0].InitializeAsync(new ClusterInitSpec { Info = Info(), FirstNode = Node("m1") });
        // Reads are served by each member's replica, which may lag: a manager that joined waits until it has caught up.
        await ConvergedAsync();
    }

    private Task ConvergedAsync() => UserOverlay.Testing.Common.Eventually.True(
        () => Enumerable.Range(0, 3).All(i => _group.AppliedIndex(i) == _group.CommittedIndex), TimeSpan.FromSeconds(10), "every replica caught up");

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _stores) await s.DisposeAsync();
    }

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

    private static NodeRecord Node(string host) => new()
    {
        Id = "id-" + host,
        Hostname = host,
        Role = NodeRole.Manager,
        ControlAddress = "192.0.2.1:2377",
        DataPathAddress = "192.0.2.1",
        Joined = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public async Task A_second_init_through_another_member_is_refused()
    {
        var e = await Assert.ThrowsAsync<ControlException>(() => _managers[1].InitializeAsync(new ClusterInitSpec { Info = Info() with { Id = "other" }, FirstNode = Node("x") }));
        Assert.Equal(ControlErrorCodes.Conflict, e.Code);
        Assert.Equal("cluster1", (await _managers[2].GetInfoAsync())!.Id);
    }

    [Fact]
    public async Task Networks_created_at_once_through_every_member_never_share_a_name_VNI_or_subnet()
    {
        var created = new ConcurrentBag<NetworkDefinition>();
        var refused = new ConcurrentBag<ControlException>();
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            try { created.Add(await _managers[i % 3].CreateNetworkAsync(new NetworkCreateRequest { Name = $"n{i / 3}" })); }
            catch (ControlException e) { refused.Add(e); }
        })));
        Assert.Equal(4, created.Count);
        Assert.Equal(8, refused.Count);
        Assert.All(refused, e => Assert.Equal(ControlErrorCodes.Conflict, e.Code));
        Assert.Equal(4, created.Select(n => n.Vni).Distinct().Count());
        Assert.Equal(4, created.Select(n => n.Subnet).Distinct().Count());
    }

    [Fact]
    public async Task Allocations_through_every_member_never_share_an_address_and_one_host_name_joins_once()
    {
        var joins = await Task.WhenAll(_managers.Select(async m =>
        {
            try { await m.AdmitAsync(WorkerToken, new NodeAdmission("same", "192.0.2.9:2377", "192.0.2.9")); return true; }
            catch (ControlException e) when (e.Code == ControlErrorCodes.Conflict) { return false; }
        }));
        Assert.Equal(1, joins.Count(j => j));

        await _managers[0].CreateNetworkAsync(new NetworkCreateRequest { Name = "big", Subnet = "198.18.8.0/22", Attachable = true });
        await ConvergedAsync(); // a manager that has not seen the network yet would answer NotFound (reads are local)
        var nodes = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => _managers[i].AdmitAsync(WorkerToken, new NodeAdmission($"w{i}", "192.0.2.9:2377", "192.0.2.9"))));
        await ConvergedAsync();
        var all = new ConcurrentBag<AddressAllocation>();
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(async () =>
        {
            for (int e = 0; e < 20; e++)
                all.Add(await _managers[i].AllocateAsync(new AllocationRequest { Network = "big", NodeId = nodes[i].Id, EndpointId = $"ep{e}", Name = $"c{i}-{e}" }));
        })));
        Assert.Equal(60, all.Count);
        Assert.Equal(60, all.Select(a => a.Address).Distinct().Count());
    }
}
