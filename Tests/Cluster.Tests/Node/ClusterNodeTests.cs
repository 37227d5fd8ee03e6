using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Crypto;
using UserOverlay.Membership;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Node;

/// <summary>
/// The cluster library without the daemon: two <see cref="ClusterNode"/>s in this process over hosts of the test's own
/// (a network manager with no data plane, a key source), on loopback addresses — init, a worker's join over mutual TLS
/// on a real port, a network created once and adopted by both, an address from the cluster's IPAM, the cluster's key
/// in the worker's key source, and leave.
/// </summary>
public sealed class ClusterNodeTests : IAsyncLifetime
{
    private readonly List<(ClusterNode Node, string Dir)> _nodes = [];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var (node, dir) in _nodes)
        {
            await node.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private sealed class Host(string name, IPAddress address, string dir) : IClusterHost
    {
        public string Name => name;
        public string StateDirectory => dir;
        public IPAddress UnderlayAddress => address;
        public int DataPathPort => 4789;
        public int MaxMtu => 1450;
        public NetworkManager Networks { get; } = new(new InMemoryNetworkStore(), NoDataPlane.Instance);
        public StaticNetworkKeySource NetworkKeys { get; } = new();
        StaticNetworkKeySource? IClusterHost.NetworkKeys => NetworkKeys;
        public bool GossipConfigured => true; // the test runs no gossip
        public GossipAgent? Gossip => null;
        public Task StartGossipAsync(MembershipOptions membership, IReadOnlyList<string> seeds, IReadOnlyList<GossipNetwork> networks, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopGossipAsync() => Task.CompletedTask;
        public ILoggerFactory Loggers => NullLoggerFactory.Instance;
    }

    private (ClusterNode Node, Host Host) NewNode(string name, string address)
    {
        string dir = Directory.CreateTempSubdirectory("uo-node-").FullName;
        var host = new Host(name, IPAddress.Parse(address), dir);
        var node = new ClusterNode(host);
        _nodes.Add((node, dir));
        return (node, host);
    }

    // A control port whose next two (Raft, forwarding) are free too.
    private static int FreePorts(IPAddress address)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int port = Random.Shared.Next(20000, 60000);
            try
            {
                using var a = new TcpListener(address, port);
                using var b = new TcpListener(address, port + 1);
                using var c = new TcpListener(address, port + 2);
                a.Start(); b.Start(); c.Start();
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no three free ports in a row");
    }

    [Fact]
    public async Task Two_nodes_in_one_process_form_a_cluster_and_share_a_network_its_addresses_and_its_key()
    {
        var (manager, managerHost) = NewNode("m1", "127.0.0.1");
        var (worker, workerHost) = NewNode("w1", "127.0.0.2");
        var mAddress = new IPEndPoint(IPAddress.Loopback, FreePorts(IPAddress.Loopback));
        var wAddress = new IPEndPoint(IPAddress.Parse("127.0.0.2"), FreePorts(IPAddress.Parse("127.0.0.2")));
        var ct = TestContext.Current.CancellationToken;

        var status = await manager.InitAsync(new SwarmInitRequest(mAddress.ToString(), DefaultAddrPool: ["198.18.0.0/16"]), ct);
        Assert.Equal(("active", "manager"), (status.State, status.Role));
        var token = await manager.JoinTokenAsync(UserOverlay.Cluster.Manager.NodeRole.Worker, rotate: false, ct);
        Assert.Contains(mAddress.ToString(), token.JoinCommand);

        var joined = await worker.JoinAsync(new SwarmJoinRequest(token.Token, mAddress.ToString(), AdvertiseAddr: wAddress.ToString()), ct);
        Assert.Equal(("active", "worker"), (joined.State, joined.Role));
        Assert.Equal(2, manager.ListNodes().Count);

        var def = await manager.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Attachable = true, Encrypted = true }, ct);
        Assert.Contains(def.Id, managerHost.Networks.ListNetworks().Select(n => n.Id));
        for (int i = 0; i < 200 && !workerHost.Networks.ListNetworks().Any(n => n.Id == def.Id); i++) await Task.Delay(50, ct);
        Assert.Equal(def.Vni, workerHost.Networks.GetNetwork("blue").Vni);
        Assert.True(workerHost.NetworkKeys.TryGetRing("blue", out var ring), "the worker holds the cluster's key for 'blue'");
        Assert.True(managerHost.NetworkKeys.TryGetRing("blue", out var managerRing));
        Assert.True(ring.Primary.SecretEquals(managerRing.Primary));

        var a = managerHost.Networks.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" });
        var b = workerHost.Networks.Attach(new EndpointAttachRequest { Network = "blue", Netns = "b" });
        Assert.NotEqual(a.Address, b.Address);
        var e = Assert.Throws<ControlException>(() => workerHost.Networks.Attach(new EndpointAttachRequest { Network = "blue", Netns = "c", Address = VtepEndpoint.FormatAddress(a.Address) }));
        Assert.Equal(ControlErrorCodes.Conflict, e.Code);

        var refused = await Assert.ThrowsAsync<ControlException>(() => worker.CreateNetworkAsync(new NetworkCreateRequest { Name = "red", Attachable = true }, ct));
        Assert.Equal(ControlErrorCodes.PermissionDenied, refused.Code);
        Assert.Contains("m1", refused.Message);

        await Assert.ThrowsAsync<ControlException>(() => worker.LeaveAsync(force: false, ct)); // b is attached
        await worker.LeaveAsync(force: true, ct);
        Assert.Equal("inactive", worker.Status().State);
        Assert.DoesNotContain(workerHost.Networks.ListNetworks(), n => n.Id == def.Id);
        Assert.False(workerHost.NetworkKeys.TryGetRing("blue", out _), "the cluster's key leaves with the node");
        Assert.False(Directory.Exists(Path.Combine(workerHost.StateDirectory, "cluster")));
    }
}
