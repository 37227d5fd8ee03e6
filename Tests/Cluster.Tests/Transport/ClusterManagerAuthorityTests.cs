using System.Net;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Tests.Manager;
using UserOverlay.Cluster.Transport;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Transport;

/// <summary>
/// The whole chain as the daemon wires it: <c>swarm init</c>'s material (CA, tokens, first manager's identity) in a
/// <see cref="ClusterManager"/> over a transactional store model, a real cluster port whose authority is
/// <see cref="ClusterManagerAuthority"/>, and nodes joining, renewing and being removed through it.
/// </summary>
public sealed class ClusterManagerAuthorityTests : IAsyncLifetime
{
    private readonly NaiveStore _store = new();
    private readonly ClusterClient _client = new();
    private ClusterManager _manager = null!;
    private ClusterCa _ca = null!;
    private NodeIdentity _first = null!;
    private ClusterServer _server = null!;
    private JoinToken _worker = null!, _managerToken = null!;

    private string Address => $"127.0.0.1:{_server.EndPoint.Port}";

    public async ValueTask InitializeAsync()
    {
        _ca = ClusterCa.Create("cluster-x");
        _worker = JoinToken.Create(_ca.CertificatePem);
        _managerToken = JoinToken.Create(_ca.CertificatePem);
        _first = _ca.IssueIdentity("first0", NodeRole.Manager);
        _manager = new ClusterManager(_store);
        Assert.True(Ipv4Prefix.TryParse("198.18.0.0/16", out var pool, out string why), why);
        await _manager.InitializeAsync(new ClusterInitSpec
        {
            Info = new ClusterInfo
            {
                Id = _ca.ClusterId,
                Created = DateTimeOffset.UtcNow,
                RootCertificatePem = _ca.CertificatePem,
                RootKeyPem = _ca.ExportKeyPem(),
                WorkerToken = _worker.ToString(),
                ManagerToken = _managerToken.ToString(),
                DefaultAddressPools = [pool],
            },
            FirstNode = new NodeRecord
            {
                Id = _first.NodeId,
                Hostname = "first",
                Role = NodeRole.Manager,
                ControlAddress = "192.0.2.1:2377",
                DataPathAddress = "192.0.2.1",
                Joined = DateTimeOffset.UtcNow,
            },
        });
        // As a manager restarting would: the CA loaded back from the cluster record.
        var info = (await _manager.GetInfoAsync())!;
        var ca = ClusterCa.Load(info.RootCertificatePem, info.RootKeyPem);
        _server = new ClusterServer(new ClusterServerOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Identity = _first,
            Ca = ca,
            Authority = new ClusterManagerAuthority(_manager),
        });
        await _server.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _first.Dispose();
        _ca.Dispose();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Nodes_join_with_the_records_tokens_and_are_recorded_with_their_role()
    {
        using var w = await _client.JoinAsync(Address, _worker, "w1", "192.0.2.2:2377", "192.0.2.2");
        using var m = await _client.JoinAsync(Address, _managerToken, "m1", "192.0.2.3:2377", "192.0.2.3");
        var nodes = await _manager.ListNodesAsync();
        Assert.Equal(["first", "m1", "w1"], nodes.Select(n => n.Hostname));
        Assert.Equal(NodeRole.Worker, nodes.Single(n => n.Hostname == "w1").Role);
        Assert.Equal(w.NodeId, nodes.Single(n => n.Hostname == "w1").Id);
        Assert.Equal(("192.0.2.3:2377", "192.0.2.3"), (nodes.Single(n => n.Id == m.NodeId).ControlAddress, nodes.Single(n => n.Id == m.NodeId).DataPathAddress));
        Assert.Equal(NodeRole.Manager, m.Role);
        Assert.Equal("cluster-x", w.ClusterId);
    }

    [Fact]
    public async Task A_rotated_token_and_a_taken_host_name_are_refused_with_the_managers_sentence()
    {
        var fresh = JoinToken.Create(_ca.CertificatePem);
        await _manager.RotateTokenAsync(NodeRole.Worker, fresh.ToString());
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.JoinAsync(Address, _worker, "w1", "192.0.2.2:2377", "192.0.2.2"));
        Assert.Equal(("bad_token", 403), (e.Code, e.Status));
        Assert.Contains("rotated", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, _server.Counters[ClusterServerEvent.BadToken]);

        using var w = await _client.JoinAsync(Address, fresh, "w1", "192.0.2.2:2377", "192.0.2.2");
        e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.JoinAsync(Address, fresh, "w1", "192.0.2.9:2377", "192.0.2.9"));
        Assert.Equal(("conflict", 409), (e.Code, e.Status));
        Assert.Contains("already in the cluster", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, _server.Counters[ClusterServerEvent.JoinRefused]);
        Assert.Equal(2, (await _manager.ListNodesAsync()).Count);
    }

    [Fact]
    public async Task Promotion_shows_at_renewal_and_a_removed_node_cannot_renew()
    {
        using var w = await _client.JoinAsync(Address, _worker, "w2", "192.0.2.4:2377", "192.0.2.4");
        await _manager.SetRoleAsync("w2", NodeRole.Manager);
        using var promoted = await _client.RenewAsync(w, Address);
        Assert.Equal(NodeRole.Manager, promoted.Role);
        await _manager.SetRoleAsync("w2", NodeRole.Worker);
        await _manager.RemoveNodeAsync("w2");
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.RenewAsync(promoted, Address));
        Assert.Equal("unknown_node", e.Code);
    }
}
