using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Node;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;
using UserOverlay.Cluster.Tests.Store;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Crypto;
using UserOverlay.Membership;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Node;

/// <summary>
/// Managers on etcd (<c>swarm init --store etcd://…</c>), in this process over hosts of the test's own and a real etcd
/// the test starts: bad options refused by name, failed inits that leave nothing (no state directory, no key in etcd),
/// the secrets sealed at rest (etcd read directly with etcdctl), a second manager that joins with the store and the
/// seal key, presence by lease, an etcd outage (the host keeps its networks; writes fail with a clear error and
/// succeed after, nothing lost or doubled), and every manager restarted at once.
/// </summary>
public sealed class EtcdManagersTests(ITestOutputHelper output) : IAsyncLifetime
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

    private void Figure(string line)
    {
        output.WriteLine("[figures] " + line);
        Console.WriteLine("[figures] " + line);
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
        string dir = Directory.CreateTempSubdirectory("uo-etcd-node-").FullName;
        var host = new Host(name, IPAddress.Parse(address), dir);
        return (Restart(host), host);
    }

    // A node again on a host (its state directory, its networks and endpoints as the daemon keeps them).
    private ClusterNode Restart(Host host)
    {
        var node = new ClusterNode(host) { StoreRequestTimeout = TimeSpan.FromSeconds(2), StoreRetryInterval = TimeSpan.FromMilliseconds(500) };
        _nodes.Add((node, host.StateDirectory));
        return node;
    }

    private static string ClusterDir(Host h) => Path.Combine(h.StateDirectory, "cluster");

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string Control() => new IPEndPoint(IPAddress.Loopback, FreePort()).ToString();

    private static string Store(EtcdProcess etcd) => $"etcd://127.0.0.1:{etcd.ClientUrl.Port}";

    /// <summary>Every key and value under <paramref name="prefix"/>, as etcdctl reads it (no code of ours in between).</summary>
    private static async Task<List<(string Key, byte[] Value)>> EtcdctlDumpAsync(EtcdProcess etcd, string prefix)
    {
        string etcdctl = Requires.Tool("etcdctl", "etcd-client");
        var start = new ProcessStartInfo(etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["ETCDCTL_API"] = "3";
        foreach (string a in new[] { "--endpoints", etcd.ClientUrl.ToString().TrimEnd('/'), "get", "--prefix", prefix, "-w", "json" }) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        string json = await p.StandardOutput.ReadToEndAsync();
        string err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"etcdctl get failed ({p.ExitCode}): {err}");
        using var doc = JsonDocument.Parse(json);
        var result = new List<(string, byte[])>();
        if (doc.RootElement.TryGetProperty("kvs", out var kvs))
            foreach (var kv in kvs.EnumerateArray())
                result.Add((Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("key").GetString()!)),
                    kv.TryGetProperty("value", out var v) ? Convert.FromBase64String(v.GetString()!) : []));
        return result;
    }

    [Fact]
    public async Task Bad_store_options_are_refused_by_name_and_failed_inits_leave_nothing_behind()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var ct = TestContext.Current.CancellationToken;
        var (node, host) = NewNode("m1", "127.0.0.1");
        string certDir = Directory.CreateTempSubdirectory("uo-etcd-pem-").FullName;
        try
        {
            using var keyA = System.Security.Cryptography.ECDsa.Create();
            using var keyB = System.Security.Cryptography.ECDsa.Create();
            var req = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=client", keyA, System.Security.Cryptography.HashAlgorithmName.SHA256);
            using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            string certFile = Path.Combine(certDir, "c.pem"), otherKey = Path.Combine(certDir, "k.pem"), notPem = Path.Combine(certDir, "x.pem");
            await File.WriteAllTextAsync(certFile, cert.ExportCertificatePem(), ct);
            await File.WriteAllTextAsync(otherKey, keyB.ExportPkcs8PrivateKeyPem(), ct);
            await File.WriteAllTextAsync(notPem, "not a certificate", ct);

            var cases = new (string Field, SwarmInitRequest Request)[]
            {
                ("store", new(Control(), Store: "zookeeper://127.0.0.1:2181")),
                ("store", new(Control(), Store: "etcd://127.0.0.1")),
                ("store-prefix", new(Control(), StorePrefix: "/uo")),
                ("store-prefix", new(Control(), Store: Store(etcd), StorePrefix: "/")),
                ("store-prefix", new(Control(), Store: Store(etcd), StorePrefix: "no-slash")),
                ("store-ca", new(Control(), Store: Store(etcd), StoreCa: Path.Combine(certDir, "missing.pem"))),
                ("store-ca", new(Control(), Store: Store(etcd), StoreCa: notPem)),
                ("store-key", new(Control(), Store: Store(etcd), StoreCert: certFile)),
                ("store-key", new(Control(), Store: Store(etcd), StoreCert: certFile, StoreKey: otherKey)),
            };
            foreach (var (field, request) in cases)
            {
                var e = await Assert.ThrowsAsync<ControlException>(() => node.InitAsync(request, ct));
                Assert.True(e.Code == ControlErrorCodes.InvalidArgument && e.Field == field && e.Message.StartsWith(field + ":", StringComparison.Ordinal),
                    $"{request}: expected an invalid_argument on {field}, got {e.Code} on {e.Field}: {e.Message}");
                Assert.False(Directory.Exists(ClusterDir(host)), $"{field}: nothing is left in the state directory");
            }

            // etcd unreachable: a clear error naming the store, nothing left.
            var sw = Stopwatch.StartNew();
            var down = await Assert.ThrowsAsync<ControlException>(() => node.InitAsync(new SwarmInitRequest(Control(), Store: $"etcd://127.0.0.1:{FreePort()}"), ct));
            Assert.Equal((ControlErrorCodes.Unavailable, "store"), (down.Code, down.Field));
            Assert.Contains("cannot be used", down.Message);
            Assert.False(Directory.Exists(ClusterDir(host)));
            Figure($"init against an unreachable etcd fails after {sw.Elapsed.TotalSeconds:0.0} s (request timeout 2 s): {down.Message}");

            // TLS files against a plain-HTTP etcd: the handshake fails, nothing left.
            var tls = await Assert.ThrowsAsync<ControlException>(() => node.InitAsync(new SwarmInitRequest(Control(), Store: Store(etcd), StoreCa: certFile), ct));
            Assert.Equal("store", tls.Field);
            Assert.False(Directory.Exists(ClusterDir(host)));

            // The cluster is written, then the control port cannot bind: the keys written to etcd are taken back.
            using var busy = new TcpListener(IPAddress.Loopback, 0);
            busy.Start();
            await Assert.ThrowsAnyAsync<Exception>(() => node.InitAsync(new SwarmInitRequest(busy.LocalEndpoint.ToString(), Store: Store(etcd)), ct));
            Assert.False(Directory.Exists(ClusterDir(host)));
            Assert.Empty(await EtcdctlDumpAsync(etcd, "/useroverlay/"));

            // A prefix that already holds a cluster is refused, and left as it was.
            var (other, otherHost) = NewNode("o1", "127.0.0.1");
            await other.InitAsync(new SwarmInitRequest(Control(), Store: Store(etcd)), ct);
            var before = await EtcdctlDumpAsync(etcd, "/useroverlay/");
            var taken = await Assert.ThrowsAsync<ControlException>(() => node.InitAsync(new SwarmInitRequest(Control(), Store: Store(etcd)), ct));
            Assert.Equal(ControlErrorCodes.Conflict, taken.Code);
            Assert.False(Directory.Exists(ClusterDir(host)));
            var after = await EtcdctlDumpAsync(etcd, "/useroverlay/");
            Assert.Equal(before.Select(kv => (kv.Key, Convert.ToHexString(kv.Value))), after.Select(kv => (kv.Key, Convert.ToHexString(kv.Value))));

            // The last manager leaving ends the cluster in etcd too, so the prefix can hold a new one.
            await other.LeaveAsync(force: true, ct);
            Assert.Empty(await EtcdctlDumpAsync(etcd, "/useroverlay/"));
            Assert.False(Directory.Exists(ClusterDir(otherHost)));
            var status = await node.InitAsync(new SwarmInitRequest(Control(), Store: Store(etcd)), ct);
            Assert.Equal("active", status.State);
            Assert.StartsWith("etcd:", status.Store);
        }
        finally { Directory.Delete(certDir, recursive: true); }
    }

    [Fact]
    public async Task Secrets_are_sealed_in_etcd_and_a_second_manager_joins_with_the_store_and_the_seal_key()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var ct = TestContext.Current.CancellationToken;
        var (m1, h1) = NewNode("m1", "127.0.0.1");
        var (m2, h2) = NewNode("m2", "127.0.0.2");
        string c1 = Control(), c2 = new IPEndPoint(IPAddress.Parse("127.0.0.2"), FreePort()).ToString();
        var status = await m1.InitAsync(new SwarmInitRequest(c1, DefaultAddrPool: ["198.18.0.0/16"], Store: Store(etcd), StorePrefix: "/uo-test"), ct);
        Assert.Equal(("active", "manager"), (status.State, status.Role));
        Assert.EndsWith("/uo-test/", status.Store);
        string sealFile = Path.Combine(ClusterDir(h1), "seal.key");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sealFile));
        byte[] seal = await File.ReadAllBytesAsync(sealFile, ct);
        Assert.Equal(SealedValues.KeySize, seal.Length);
        Assert.False(Directory.Exists(Path.Combine(ClusterDir(h1), "raft")), "a manager on etcd runs no Raft member");

        var blue = await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Attachable = true, Encrypted = true }, ct);
        var managerToken = await m1.JoinTokenAsync(NodeRole.Manager, rotate: false, ct);
        var workerToken = await m1.JoinTokenAsync(NodeRole.Worker, rotate: false, ct);

        // etcd read directly: the cluster's keys are there, the secrets only as ciphertext.
        var dump = await EtcdctlDumpAsync(etcd, "/uo-test/");
        Assert.Contains(dump, kv => kv.Key == "/uo-test/networks/" + blue.Id);
        using var sealer = new SealedValues(seal);
        var info = dump.Single(kv => kv.Key == "/uo-test/" + ClusterKeys.Info);
        var ring = dump.Single(kv => kv.Key == "/uo-test/" + ClusterKeys.KeyRing(KeyRing.Ipsec));
        Assert.True(SealedValues.IsSealed(info.Value) && SealedValues.IsSealed(ring.Value));
        string openedInfo = Encoding.UTF8.GetString(sealer.Open(info.Value, ClusterKeys.Info));
        Assert.Contains("PRIVATE KEY", openedInfo); // what the seal hides: the CA's key …
        var openedRing = JsonSerializer.Deserialize(sealer.Open(ring.Value, ClusterKeys.KeyRing(KeyRing.Ipsec)), ClusterJson.Default.KeyRing)!;
        var secrets = new List<byte[]> { Encoding.UTF8.GetBytes("PRIVATE KEY"), Encoding.UTF8.GetBytes(managerToken.Token), Encoding.UTF8.GetBytes(workerToken.Token) };
        foreach (var k in openedRing.Keys) // … the network keys, raw and as JSON writes them
        {
            secrets.Add(k.Material);
            secrets.Add(Encoding.UTF8.GetBytes(Convert.ToBase64String(k.Material)));
        }
        foreach (var (key, value) in dump)
            foreach (var secret in secrets)
                Assert.True(value.AsSpan().IndexOf(secret) < 0, $"{key} holds key material in clear");
        Figure($"etcd holds {dump.Count} keys of the cluster; {dump.Count(kv => SealedValues.IsSealed(kv.Value))} sealed (cluster record, key rings), none with key material in clear");

        // A second manager joins: it gets the store and the seal key over the mutual-TLS join, and serves at once.
        var joined = await m2.JoinAsync(new SwarmJoinRequest(managerToken.Token, c1, AdvertiseAddr: c2), ct);
        Assert.Equal(("active", "manager"), (joined.State, joined.Role));
        Assert.Equal(status.Store, m2.Status().Store);
        Assert.Equal(seal, await File.ReadAllBytesAsync(Path.Combine(ClusterDir(h2), "seal.key"), ct));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(ClusterDir(h2), "seal.key")));
        Assert.False(Directory.Exists(Path.Combine(ClusterDir(h2), "raft")));
        var red = await m2.CreateNetworkAsync(new NetworkCreateRequest { Name = "red", Attachable = true, Encrypted = true }, ct);
        await Eventually.True(() => h1.Networks.ListNetworks().Any(n => n.Id == red.Id), TimeSpan.FromSeconds(10), "m1 serves the network m2 created");
        Assert.Contains(h2.Networks.ListNetworks(), n => n.Id == blue.Id);
        Assert.True(h2.NetworkKeys.TryGetRing("blue", out var r2) && h1.NetworkKeys.TryGetRing("blue", out var r1) && r1.Primary.SecretEquals(r2.Primary));

        // Presence: both managers hold a key under their leases; one that leaves takes its key at once.
        var presence = (await EtcdctlDumpAsync(etcd, "/uo-test/" + ClusterKeys.Presence)).Select(kv => Encoding.UTF8.GetString(kv.Value)).Order().ToList();
        Assert.Equal(new[] { c1, c2 }.Order(), presence);
        await m2.LeaveAsync(force: false, ct);
        Assert.Equal([c1], (await EtcdctlDumpAsync(etcd, "/uo-test/" + ClusterKeys.Presence)).Select(kv => Encoding.UTF8.GetString(kv.Value)));
        Assert.False(Directory.Exists(ClusterDir(h2)), "the leaving manager keeps neither the store's files nor the seal key");
        Assert.Contains(m1.ListNodes(), n => n.Hostname == "m2"); // as with swarm: the record stays until node rm
    }

    [Fact]
    public async Task Every_manager_restarted_at_once_finds_the_state_intact()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var ct = TestContext.Current.CancellationToken;
        var (m1, h1) = NewNode("m1", "127.0.0.1");
        var (m2, h2) = NewNode("m2", "127.0.0.2");
        string c1 = Control(), c2 = new IPEndPoint(IPAddress.Parse("127.0.0.2"), FreePort()).ToString();
        await m1.InitAsync(new SwarmInitRequest(c1, DefaultAddrPool: ["198.18.0.0/16"], Store: Store(etcd)), ct);
        var token = await m1.JoinTokenAsync(NodeRole.Manager, rotate: false, ct);
        await m2.JoinAsync(new SwarmJoinRequest(token.Token, c1, AdvertiseAddr: c2), ct);
        var nets = new List<NetworkDefinition>();
        for (int i = 0; i < 3; i++) nets.Add(await (i % 2 == 0 ? m1 : m2).CreateNetworkAsync(new NetworkCreateRequest { Name = $"n{i}", Attachable = true, Encrypted = true }, ct));
        var ep = h1.Networks.Attach(new EndpointAttachRequest { Network = "n0", Netns = "a" });
        var before = await EtcdctlDumpAsync(etcd, "/useroverlay/");

        await Task.WhenAll(m1.StopAsync(ct), m2.StopAsync(ct));
        var sw = Stopwatch.StartNew();
        var n1 = Restart(h1);
        var n2 = Restart(h2);
        await Task.WhenAll(n1.StartAsync(ct), n2.StartAsync(ct));
        Assert.Equal(("active", "active"), (n1.Status().State, n2.Status().State));
        // Both serve again: a network created through one after the restart reaches the other.
        var late = await n2.CreateNetworkAsync(new NetworkCreateRequest { Name = "late", Attachable = true }, ct);
        await Eventually.True(() => h1.Networks.ListNetworks().Any(x => x.Id == late.Id), TimeSpan.FromSeconds(15), "the other restarted manager serves the network created after the restart");
        Figure($"two managers on etcd restarted at once serve the cluster again (a create through one seen by the other) after {sw.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(2, n1.ListNodes().Count);
        Assert.True(nets.All(n => h1.Networks.ListNetworks().Any(x => x.Id == n.Id) && h2.Networks.ListNetworks().Any(x => x.Id == n.Id)));
        var after = await EtcdctlDumpAsync(etcd, "/useroverlay/");
        // Everything but the presence keys (new leases) is exactly as before, the allocation included.
        static IEnumerable<(string, string)> Durable(List<(string Key, byte[] Value)> d, string? late) =>
            d.Where(kv => !kv.Key.Contains("/" + ClusterKeys.Presence, StringComparison.Ordinal) && !kv.Key.EndsWith(ClusterKeys.NetworkEpoch, StringComparison.Ordinal)
                && (late is null || !kv.Key.Contains(late, StringComparison.Ordinal) && !kv.Value.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(late))))
            .Select(kv => (kv.Key, Convert.ToHexString(kv.Value)));
        Assert.Equal(Durable(before, null), Durable(after, late.Id));
        Assert.Contains(after, kv => kv.Key.StartsWith("/useroverlay/" + ClusterKeys.NetworkIpam(nets[0].Id), StringComparison.Ordinal));
        Assert.Equal(2, after.Count(kv => kv.Key.Contains("/" + ClusterKeys.Presence, StringComparison.Ordinal)));
        _ = ep;
    }

    [Fact]
    public async Task An_etcd_outage_of_30_s_keeps_the_host_s_networks_refuses_writes_clearly_and_loses_or_doubles_nothing()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var ct = TestContext.Current.CancellationToken;
        var (m1, h1) = NewNode("m1", "127.0.0.1");
        await m1.InitAsync(new SwarmInitRequest(Control(), DefaultAddrPool: ["198.18.0.0/16"], Store: Store(etcd)), ct);
        var blue = await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Attachable = true, Encrypted = true }, ct);
        var a = h1.Networks.Attach(new EndpointAttachRequest { Network = "blue", Netns = "a" });
        var before = await EtcdctlDumpAsync(etcd, "/useroverlay/");

        await etcd.KillAsync();
        var outage = Stopwatch.StartNew();
        int refused = 0;
        StoreException? first = null;
        while (outage.Elapsed < TimeSpan.FromSeconds(30))
        {
            // The host goes on with what it has: its networks, their keys and its endpoints stay.
            Assert.Contains(h1.Networks.ListNetworks(), n => n.Id == blue.Id);
            Assert.True(h1.NetworkKeys.TryGetRing("blue", out _));
            Assert.Contains(h1.Networks.GetEndpoints(blue.Id), e => e.Id == a.Id);
            var e = await Assert.ThrowsAsync<StoreException>(() => m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "red", Attachable = true }, ct));
            Assert.Equal(StoreErrorCode.Unavailable, e.Code);
            Assert.Contains("etcd", e.Message);
            first ??= e;
            refused++;
        }
        await etcd.RestartAsync();
        var back = Stopwatch.StartNew();
        int retried = 0;
        NetworkDefinition? red = null;
        while (red is null)
        {
            try { red = await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "red", Attachable = true }, ct); }
            catch (StoreException) when (back.Elapsed < TimeSpan.FromSeconds(15)) { retried++; await Task.Delay(100, ct); }
            catch (ControlException c) when (c.Code == ControlErrorCodes.Conflict && back.Elapsed < TimeSpan.FromSeconds(15))
            {
                // A create whose answer was lost in the outage may have applied: then it is there, once.
                red = h1.Networks.ListNetworks().FirstOrDefault(n => n.Name == "red");
                retried++;
            }
        }
        Figure($"etcd down 30 s: {refused} control writes refused (first: {first?.Message}); after etcd's restart the next write succeeded in {back.Elapsed.TotalSeconds:0.00} s ({retried} retried)");
        var after = await EtcdctlDumpAsync(etcd, "/useroverlay/");
        // (network-epoch changes with every create by design)
        foreach (var (key, value) in before.Where(kv => !kv.Key.Contains("/" + ClusterKeys.Presence, StringComparison.Ordinal) && !kv.Key.EndsWith(ClusterKeys.NetworkEpoch, StringComparison.Ordinal)))
            Assert.Contains(after, kv => kv.Key == key && kv.Value.AsSpan().SequenceEqual(value)); // nothing lost
        Assert.Single(after, kv => kv.Key.StartsWith("/useroverlay/" + ClusterKeys.NetworkNames + "red", StringComparison.Ordinal)); // nothing doubled
        Assert.Equal(2, after.Count(kv => kv.Key.StartsWith("/useroverlay/" + ClusterKeys.Networks, StringComparison.Ordinal)));
        // The presence lease ran out in the outage: the manager is present again.
        await Eventually.True(async () => (await EtcdctlDumpAsync(etcd, "/useroverlay/" + ClusterKeys.Presence)).Count == 1, TimeSpan.FromSeconds(10), "the manager's presence is back");
        await Eventually.True(() => h1.Networks.ListNetworks().Any(n => n.Id == red.Id), TimeSpan.FromSeconds(10), "the host serves the network created after the outage");
    }

    [Fact]
    public async Task A_manager_restarted_while_etcd_is_down_starts_forwarding_at_once_and_serves_once_etcd_answers()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var ct = TestContext.Current.CancellationToken;
        var (m1, h1) = NewNode("m1", "127.0.0.1");
        await m1.InitAsync(new SwarmInitRequest(Control(), DefaultAddrPool: ["198.18.0.0/16"], Store: Store(etcd)), ct);
        var blue = await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Attachable = true, Encrypted = true }, ct);
        await m1.StopAsync(ct);
        await etcd.KillAsync();

        var sw = Stopwatch.StartNew();
        var again = Restart(h1);
        await again.StartAsync(ct); // does not wait for etcd
        var started = sw.Elapsed;
        var status = again.Status();
        Assert.Equal(("connecting", false), (status.State, status.Connected));
        Assert.Contains("etcd", status.LastError);
        Assert.Contains(h1.Networks.ListNetworks(), n => n.Id == blue.Id); // the host's own state: it forwards
        var refused = await Assert.ThrowsAsync<ControlException>(() => again.InitAsync(new SwarmInitRequest(Control()), ct));
        Assert.Equal(ControlErrorCodes.Conflict, refused.Code);

        await Task.Delay(TimeSpan.FromSeconds(3), ct);
        await etcd.RestartAsync();
        var back = Stopwatch.StartNew();
        await Eventually.True(() => again.Status().State == "active", TimeSpan.FromSeconds(15), "the manager starts once etcd answers");
        Figure($"manager restarted with etcd down: the node started in {started.TotalMilliseconds:0} ms (connecting); once etcd answered it served after {back.Elapsed.TotalSeconds:0.0} s (retry every 0.5 s)");
        var red = await again.CreateNetworkAsync(new NetworkCreateRequest { Name = "red", Attachable = true }, ct);
        Assert.Contains(h1.Networks.ListNetworks(), n => n.Id == red.Id);
    }
}
