using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Transport;

namespace UserOverlay.Cluster.Tests.Transport;

/// <summary>
/// A join authority of the tests' own: two tokens, a table of nodes, rotation, role changes and removal — what the
/// daemon's implementation over <see cref="ClusterManager"/> does, without a store.
/// </summary>
internal sealed class TestAuthority(string rootPem) : IJoinAuthority
{
    private int _next;

    public JoinToken WorkerToken { get; private set; } = JoinToken.Create(rootPem);

    public JoinToken ManagerToken { get; private set; } = JoinToken.Create(rootPem);

    public ConcurrentDictionary<string, NodeRole> Roles { get; } = new();

    public ConcurrentQueue<JoinRequest> Calls { get; } = new();

    public JoinToken Rotate(NodeRole role)
    {
        var t = JoinToken.Create(rootPem);
        if (role == NodeRole.Manager) ManagerToken = t; else WorkerToken = t;
        return t;
    }

    public Task<JoinDecision> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        Calls.Enqueue(request);
        NodeRole role;
        if (request.Token.SecretEquals(ManagerToken)) role = NodeRole.Manager;
        else if (request.Token.SecretEquals(WorkerToken)) role = NodeRole.Worker;
        else return Task.FromResult(JoinDecision.Refuse(JoinRefusal.BadToken, "the join token is not valid for this cluster (it may have been rotated)"));
        string id = $"node{Interlocked.Increment(ref _next)}";
        Roles[id] = role;
        return Task.FromResult(JoinDecision.Admit(id, role));
    }

    public Task<NodeRole?> CurrentRoleAsync(string nodeId, CancellationToken cancellationToken) =>
        Task.FromResult(Roles.TryGetValue(nodeId, out var r) ? r : (NodeRole?)null);
}

/// <summary>
/// A real cluster port: a CA, a first manager's identity, a <see cref="ClusterServer"/> on 127.0.0.1 (a free port)
/// with one node route (<c>GET /v1/test/whoami</c>, the caller as "id role cluster") and one manager route
/// (<c>GET /v1/test/manager</c>).
/// </summary>
internal sealed class ClusterPort : IAsyncDisposable
{
    private ClusterPort(ClusterCa ca, NodeIdentity manager, TestAuthority authority, ClusterServer server)
    {
        Ca = ca;
        ManagerIdentity = manager;
        Authority = authority;
        Server = server;
    }

    public ClusterCa Ca { get; }

    public NodeIdentity ManagerIdentity { get; }

    public TestAuthority Authority { get; }

    public ClusterServer Server { get; }

    public ClusterServerCounters Counters => Server.Counters;

    public string Address => $"127.0.0.1:{Server.EndPoint.Port}";

    public Uri BaseUri => new($"https://{Address}/");

    public long this[ClusterServerEvent e] => Counters[e];

    public static async Task<ClusterPort> StartAsync(string clusterId = "cluster-a", Func<ClusterServerOptions, ClusterServerOptions>? tweak = null)
    {
        var ca = ClusterCa.Create(clusterId);
        var authority = new TestAuthority(ca.CertificatePem);
        var manager = Issue(ca, "m0", NodeRole.Manager);
        authority.Roles["m0"] = NodeRole.Manager;
        var options = new ClusterServerOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Identity = manager,
            Ca = ca,
            Authority = authority,
            NodeRoutes = g => g.MapGet("/v1/test/whoami", (HttpContext ctx) =>
            {
                var c = ctx.GetClusterCaller();
                return ctx.Response.WriteAsync($"{c.NodeId} {c.Role} {c.ClusterId}");
            }),
            ManagerRoutes = g => g.MapGet("/v1/test/manager", (HttpContext ctx) => ctx.Response.WriteAsync("manager " + ctx.GetClusterCaller().NodeId)),
        };
        var server = new ClusterServer(tweak is null ? options : tweak(options));
        await server.StartAsync();
        return new ClusterPort(ca, manager, authority, server);
    }

    /// <summary>An identity issued straight by <paramref name="ca"/> (as the daemon does for the first manager).</summary>
    public static NodeIdentity Issue(ClusterCa ca, string nodeId, NodeRole role, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256);
        using var cert = ca.IssueNodeCertificate(csr, nodeId, role, lifetime);
        return NodeIdentity.Create(cert.ExportCertificatePem(), key, ca.CertificatePem);
    }

    /// <summary>
    /// An HTTPS client that trusts whatever the server presents and presents <paramref name="clientCertificate"/>
    /// (or nothing): for sending what a real node never would.
    /// </summary>
    public HttpClient RawClient(X509Certificate2? clientCertificate = null)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        if (clientCertificate is not null)
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
        return new HttpClient(handler) { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(10) };
    }

    public static async Task<ClusterError> ErrorOf(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync(ClusterWireJson.Default.ClusterError))!;

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        ManagerIdentity.Dispose();
        Ca.Dispose();
    }
}
