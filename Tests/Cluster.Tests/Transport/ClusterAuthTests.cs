using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Transport;
using UserOverlay.Cluster.Tests.Security;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Transport;

/// <summary>
/// The cluster port's authenticated routes and its resistance to hostile connections, over a real Kestrel on
/// 127.0.0.1: who may call what, what each refusal is counted as, renewal, and the server still serving after each.
/// </summary>
public sealed class ClusterAuthTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private ClusterPort _port = null!;
    private readonly ClusterClient _client = new();

    public async ValueTask InitializeAsync() =>
        _port = await ClusterPort.StartAsync(tweak: o => o with { HandshakeTimeout = TimeSpan.FromMilliseconds(500), RequestHeadersTimeout = TimeSpan.FromMilliseconds(500) });

    public ValueTask DisposeAsync() => _port.DisposeAsync();

    private Task<NodeIdentity> JoinAsync(NodeRole role, string host) =>
        _client.JoinAsync(_port.Address, role == NodeRole.Manager ? _port.Authority.ManagerToken : _port.Authority.WorkerToken,
            host, "192.0.2.20:2377", "192.0.2.20");

    private async Task<(HttpStatusCode Status, ClusterError Error)> RawGet(string path, X509Certificate2? cert)
    {
        using var raw = _port.RawClient(cert);
        var response = await raw.GetAsync(path);
        return (response.StatusCode, await ClusterPort.ErrorOf(response));
    }

    private async Task StillServes()
    {
        var pinned = await _client.FetchAndPinRootAsync(_port.Address, _port.Authority.WorkerToken);
        Assert.Equal(_port.Ca.CertificatePem, pinned.Pem);
    }

    [Fact]
    public async Task Garbage_and_plain_http_on_the_tls_port_are_counted_and_the_server_goes_on()
    {
        await SendAndWaitForClose(RandomNumberGenerator.GetBytes(700));
        await Eventually.True(() => _port[ClusterServerEvent.TlsHandshakeFailed] == 1, Wait, "the garbage connection counted");
        await SendAndWaitForClose(Encoding.ASCII.GetBytes("GET /v1/cluster/ca HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        await Eventually.True(() => _port[ClusterServerEvent.TlsHandshakeFailed] == 2, Wait, "the plain HTTP connection counted");
        await StillServes();
        Assert.Equal(2, _port[ClusterServerEvent.TlsHandshakeFailed]);
    }

    [Fact]
    public async Task A_silent_connection_is_dropped_at_the_handshake_timeout_and_counted()
    {
        await SendAndWaitForClose([]);
        await Eventually.True(() => _port[ClusterServerEvent.TlsHandshakeFailed] == 1, Wait, "the silent connection counted");
        await StillServes();
    }

    [Fact]
    public async Task One_address_cannot_hold_more_than_its_share_of_connections()
    {
        await using var port = await ClusterPort.StartAsync(tweak: o => o with { MaxConnectionsPerAddress = 2, HandshakeTimeout = TimeSpan.FromSeconds(30) });
        using var a = new TcpClient();
        using var b = new TcpClient();
        await a.ConnectAsync(IPAddress.Loopback, port.Server.EndPoint.Port);
        await b.ConnectAsync(IPAddress.Loopback, port.Server.EndPoint.Port);
        await Task.Delay(100); // both accepted and holding their slots (silent, far from the handshake timeout)
        using (var c = new TcpClient())
        {
            using var cts = new CancellationTokenSource(Wait);
            try
            {
                await c.ConnectAsync(IPAddress.Loopback, port.Server.EndPoint.Port);
                Assert.Equal(0, await c.GetStream().ReadAsync(new byte[16], cts.Token));
            }
            catch (Exception e) when (e is IOException or SocketException) { } // reset (on a loaded host, even during the connect): closed as well
            Assert.False(cts.IsCancellationRequested, "the third connection should be closed at once");
        }
        await Eventually.True(() => port[ClusterServerEvent.TooManyConnections] == 1, Wait, "the refused connection is counted");
        a.Close();
        b.Close();
        // Their slots come back once the server sees them closed.
        await Eventually.True(async () =>
        {
            try { await _client.FetchAndPinRootAsync(port.Address, port.Authority.WorkerToken); return true; }
            catch (ClusterClientException) { return false; }
        }, Wait, "a good request served after the idle connections closed");
    }

    [Fact]
    public async Task Headers_that_never_finish_are_cut_off_after_the_handshake()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _port.Server.EndPoint.Port);
        using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "swarm-manager", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /v1/cluster/ca HTTP/1.1\r\nHost: x\r\n"));
        using var cts = new CancellationTokenSource(Wait);
        var buffer = new byte[4096];
        try { while (await tls.ReadAsync(buffer, cts.Token) > 0) { } }
        catch (IOException) { } // reset: closed as well
        Assert.False(cts.IsCancellationRequested, "the server should close a connection whose headers stall");
        Assert.Equal(0, _port[ClusterServerEvent.TlsHandshakeFailed]);
        await StillServes();
    }

    [Fact]
    public async Task A_node_route_without_a_client_certificate_is_refused_and_counted()
    {
        var (status, error) = await RawGet("/v1/test/whoami", null);
        Assert.Equal((HttpStatusCode.Unauthorized, "no_certificate"), (status, error.Code));
        Assert.Contains("presented none", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.NoCertificate]);
        await StillServes();
    }

    [Fact]
    public async Task A_certificate_of_another_ca_is_refused_and_counted()
    {
        using var other = ClusterCa.Create("cluster-a");
        using var foreign = ClusterPort.Issue(other, "m0", NodeRole.Manager);
        var (status, error) = await RawGet("/v1/test/whoami", foreign.Certificate);
        Assert.Equal((HttpStatusCode.Unauthorized, "foreign_certificate"), (status, error.Code));
        Assert.Contains("not issued by this cluster's CA", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.ForeignCertificate]);
    }

    [Fact]
    public async Task An_expired_certificate_of_this_ca_is_refused_and_counted()
    {
        using var past = ClusterCa.Load(_port.Ca.CertificatePem, _port.Ca.ExportKeyPem(), new FixedTime(DateTimeOffset.UtcNow.AddDays(-10)));
        using var expired = ClusterPort.Issue(past, "m0", NodeRole.Manager, TimeSpan.FromDays(1));
        var (status, error) = await RawGet("/v1/test/manager", expired.Certificate);
        Assert.Equal((HttpStatusCode.Unauthorized, "foreign_certificate"), (status, error.Code));
        Assert.Contains("expired", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.ForeignCertificate]);
    }

    [Fact]
    public async Task A_certificate_of_this_root_naming_another_cluster_is_refused_and_counted()
    {
        using var rootKey = ECDsa.Create();
        rootKey.ImportFromPem(_port.Ca.ExportKeyPem());
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=n9, OU=swarm-manager, O=cluster-z", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(NodeCertificates.ClientAuthOid)], false));
        var now = DateTimeOffset.UtcNow;
        using var signed = request.Create(_port.Ca.Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(rootKey), now.AddMinutes(-1), now.AddHours(1), [1, 2, 3]);
        using var cert = signed.CopyWithPrivateKey(key);
        var (status, error) = await RawGet("/v1/test/whoami", cert);
        Assert.Equal((HttpStatusCode.Forbidden, "wrong_cluster"), (status, error.Code));
        Assert.Equal(1, _port[ClusterServerEvent.WrongCluster]);
    }

    [Fact]
    public async Task A_worker_calling_a_manager_route_gets_403_and_is_counted()
    {
        using var worker = await JoinAsync(NodeRole.Worker, "w1");
        var (status, error) = await RawGet("/v1/test/manager", worker.Certificate);
        Assert.Equal((HttpStatusCode.Forbidden, "not_manager"), (status, error.Code));
        Assert.Contains($"node {worker.NodeId} is a worker", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.NotManager]);
        using var http = _client.CreateHttpClient(worker, _port.Address);
        Assert.StartsWith(worker.NodeId, await http.GetStringAsync("/v1/test/whoami"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_demoted_manager_loses_manager_routes_at_once()
    {
        using var manager = await JoinAsync(NodeRole.Manager, "m1");
        using var http = _client.CreateHttpClient(manager, _port.Address);
        Assert.Equal($"manager {manager.NodeId}", await http.GetStringAsync("/v1/test/manager"));
        _port.Authority.Roles[manager.NodeId] = NodeRole.Worker;
        var response = await http.GetAsync("/v1/test/manager");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal($"{manager.NodeId} Worker cluster-a", await http.GetStringAsync("/v1/test/whoami"));
    }

    [Fact]
    public async Task Renewal_gives_a_new_certificate_and_key_with_the_current_role()
    {
        using var worker = await JoinAsync(NodeRole.Worker, "w2");
        _port.Authority.Roles[worker.NodeId] = NodeRole.Manager; // promoted
        using var renewed = await _client.RenewAsync(worker, _port.Address);
        Assert.Equal(worker.NodeId, renewed.NodeId);
        Assert.Equal(NodeRole.Manager, renewed.Role);
        Assert.NotEqual(worker.Certificate.SerialNumber, renewed.Certificate.SerialNumber);
        Assert.NotEqual(worker.Certificate.PublicKey.ExportSubjectPublicKeyInfo(), renewed.Certificate.PublicKey.ExportSubjectPublicKeyInfo());
        Assert.True(renewed.NotAfter >= worker.NotAfter);
        Assert.Equal(1, _port[ClusterServerEvent.Renewed]);
        using var http = _client.CreateHttpClient(renewed, _port.Address);
        Assert.Equal($"manager {renewed.NodeId}", await http.GetStringAsync("/v1/test/manager"));

        _port.Authority.Roles[worker.NodeId] = NodeRole.Worker; // demoted again
        using var again = await _client.RenewAsync(renewed, _port.Address);
        Assert.Equal(NodeRole.Worker, again.Role);
    }

    [Fact]
    public async Task A_removed_node_can_neither_renew_nor_call_node_routes()
    {
        using var worker = await JoinAsync(NodeRole.Worker, "w3");
        Assert.True(_port.Authority.Roles.TryRemove(worker.NodeId, out _));
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.RenewAsync(worker, _port.Address));
        Assert.Equal(("unknown_node", 403), (e.Code, e.Status));
        Assert.Contains("no longer in the cluster", e.Message, StringComparison.Ordinal);
        var (status, error) = await RawGet("/v1/test/whoami", worker.Certificate);
        Assert.Equal((HttpStatusCode.Forbidden, "unknown_node"), (status, error.Code));
        Assert.Equal(2, _port[ClusterServerEvent.UnknownNode]);
        Assert.Equal(0, _port[ClusterServerEvent.Renewed]);
    }

    [Fact]
    public async Task Renewal_without_a_certificate_is_refused()
    {
        using var raw = _port.RawClient();
        var response = await raw.PostAsync("/v1/cluster/renew", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(1, _port[ClusterServerEvent.NoCertificate]);
    }

    [Fact]
    public async Task The_client_refuses_a_manager_of_another_cluster_and_sends_it_nothing()
    {
        await using var other = await ClusterPort.StartAsync("cluster-b");
        using var worker = await JoinAsync(NodeRole.Worker, "w4");
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.RenewAsync(worker, other.Address));
        Assert.Equal("untrusted_manager", e.Code);
        Assert.Contains("not issued by this cluster's CA", e.Message, StringComparison.Ordinal);
        using var http = _client.CreateHttpClient(worker, other.Address);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetStringAsync("/v1/test/whoami"));
        // The client refused the server's certificate before sending a request: the other server saw none (whether its
        // side of the handshake had finished by then depends on the TLS version, so that is not asserted).
        await Task.Delay(200);
        Assert.All(other.Counters.Snapshot().Where(kv => kv.Key != "tls_handshake_failed"), kv => Assert.Equal(0, kv.Value));
    }

    [Fact]
    public async Task The_server_presents_a_renewed_identity_from_the_next_connection_on()
    {
        using var next = ClusterPort.Issue(_port.Ca, "m0", NodeRole.Manager);
        _port.Server.UpdateIdentity(next);
        string? seen = null;
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, _) => { seen = (c as X509Certificate2)?.Thumbprint ?? new X509Certificate2(c!).Thumbprint; return true; };
        using var http = new HttpClient(handler) { BaseAddress = _port.BaseUri };
        await http.GetStringAsync("/v1/cluster/ca");
        Assert.Equal(next.Certificate.Thumbprint, seen);
        Assert.Throws<ArgumentException>(() => _port.Server.UpdateIdentity(ClusterPort.Issue(_port.Ca, "w", NodeRole.Worker)));
    }

    [Fact]
    public async Task The_renewer_renews_when_due_saves_and_hands_over_the_new_identity()
    {
        using var worker = await JoinAsync(NodeRole.Worker, "w5");
        string dir = Path.Combine(Path.GetTempPath(), "uo-renew-" + Guid.NewGuid().ToString("N"));
        try
        {
            var clock = new FixedTime(DateTimeOffset.UtcNow);
            NodeIdentity? handed = null;
            var renewer = new CertificateRenewer(new ClusterClient(new ClusterClientOptions { Time = clock }), worker, () => ["127.0.0.1:1", _port.Address], dir, clock)
            {
                Renewed = id => { handed = id; return Task.CompletedTask; },
            };
            Assert.False(await renewer.RenewIfDueAsync());
            Assert.Same(worker, renewer.Current);
            clock.Now = worker.RenewAt;
            Assert.True(await renewer.RenewIfDueAsync()); // the first manager is unreachable; the second renews
            Assert.NotSame(worker, renewer.Current);
            Assert.Same(renewer.Current, handed);
            Assert.Null(renewer.LastError);
            using var saved = NodeIdentity.Load(dir);
            Assert.Equal(renewer.Current.Certificate.Thumbprint, saved.Certificate.Thumbprint);
            Assert.Equal(1, _port[ClusterServerEvent.Renewed]);
            renewer.Current.Dispose();
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_renewer_loop_renews_on_its_own()
    {
        // Certificates of one minute: with the five-minute backdate, RenewAt is already past, so the loop renews at once.
        await using var port = await ClusterPort.StartAsync(tweak: o => o with { NodeCertificateLifetime = TimeSpan.FromMinutes(1) });
        using var worker = await _client.JoinAsync(port.Address, port.Authority.WorkerToken, "w6", "192.0.2.21:2377", "192.0.2.21");
        var renewed = new TaskCompletionSource<NodeIdentity>(TaskCreationOptions.RunContinuationsAsynchronously);
        var renewer = new CertificateRenewer(_client, worker, () => [port.Address]) { Renewed = id => { renewed.TrySetResult(id); return Task.CompletedTask; } };
        using var cts = new CancellationTokenSource();
        var loop = renewer.RunAsync(cts.Token);
        var first = await renewed.Task.WaitAsync(Wait);
        cts.Cancel();
        await loop.WaitAsync(Wait);
        Assert.Equal(worker.NodeId, first.NodeId);
        Assert.True(port[ClusterServerEvent.Renewed] >= 1);
    }

    [Fact]
    public async Task Starting_on_a_taken_port_fails_and_leaves_the_first_server_serving()
    {
        var second = new ClusterServer(new ClusterServerOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, _port.Server.EndPoint.Port),
            Identity = _port.ManagerIdentity,
            Ca = _port.Ca,
            Authority = _port.Authority,
        });
        await Assert.ThrowsAnyAsync<IOException>(() => second.StartAsync());
        await second.DisposeAsync();
        await StillServes();
    }

    [Fact]
    public void A_worker_identity_cannot_serve_the_cluster_port()
    {
        using var worker = ClusterPort.Issue(_port.Ca, "w9", NodeRole.Worker);
        Assert.Throws<ArgumentException>(() => new ClusterServer(new ClusterServerOptions { Identity = worker, Ca = _port.Ca, Authority = _port.Authority }));
    }

    // Opens a TCP connection, sends bytes (or nothing), and waits for the server to close it.
    private async Task SendAndWaitForClose(byte[] bytes)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _port.Server.EndPoint.Port);
        var stream = tcp.GetStream();
        if (bytes.Length > 0) await stream.WriteAsync(bytes);
        using var cts = new CancellationTokenSource(Wait);
        var buffer = new byte[4096];
        try { while (await stream.ReadAsync(buffer, cts.Token) > 0) { } }
        catch (IOException) { } // reset by the server: closed as well
        Assert.False(cts.IsCancellationRequested, "the server should close the connection");
    }
}
