using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// What only etcd shows: a watch across an etcd restart, a three-member cluster losing one member, values at the
/// size limit, ten thousand keys under one prefix, prefixes that keep tenants apart, and the failures (no member
/// answering, bad options) as <see cref="StoreException"/>s and named fields.
/// </summary>
public sealed class EtcdClusterStoreTests
{
    private static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(KeyValue kv) => Encoding.UTF8.GetString(kv.Value);

    private static Task<EtcdClusterStore> ConnectAsync(IEnumerable<EtcdProcess> members, string prefix = "/useroverlay/", TimeSpan? timeout = null) =>
        EtcdClusterStore.ConnectAsync(new EtcdStoreOptions
        {
            Endpoints = [.. members.Select(m => m.ClientUrl)],
            KeyPrefix = prefix,
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(5),
        });

    private static async Task<List<WatchEvent>> CollectAsync(IAsyncEnumerable<WatchEvent> watch, int count, List<WatchEvent> seen)
    {
        await foreach (var e in watch)
        {
            lock (seen) seen.Add(e);
            if (seen.Count == count) break;
        }
        return seen;
    }

    [Fact]
    public async Task Several_value_not_equal_compares_on_missing_and_present_keys_choose_the_right_branch_in_one_revision()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await ConnectAsync([etcd]);
        await store.TxnAsync(new TxnRequest([], [Op.Put("k", V("m"))])); // 2
        static Compare NotEqual(string key, string value) => new(key, CompareTarget.Value, CompareResult.NotEqual, Value: Encoding.UTF8.GetBytes(value));
        var cases = new (Compare[] Compares, bool Holds)[]
        {
            ([NotEqual("absent1", "x"), NotEqual("absent2", "y"), Compare.Exists("k")], true),
            ([NotEqual("absent1", "x"), NotEqual("k", "z")], true),
            ([NotEqual("absent1", "x"), NotEqual("k", "m")], false),
            ([NotEqual("k", "m"), NotEqual("absent1", "x")], false),
            ([NotEqual("absent1", "x"), Compare.Missing("k")], false),
        };
        foreach (var (compares, holds) in cases)
        {
            long before = store.Revision;
            var r = await store.TxnAsync(new TxnRequest(compares,
                [Op.Put("branch", V("success")), Op.Get("k")],
                [Op.Put("branch", V("failure")), Op.GetPrefix("bra"), Op.Delete("nothing")]));
            Assert.Equal(holds, r.Succeeded);
            Assert.Equal(before + 1, r.Revision);
            Assert.Equal(holds ? 2 : 3, r.Responses.Count);
            Assert.Equal(holds ? "k" : "branch", Assert.Single(r.Responses[1].Kvs).Key);
            Assert.Equal(holds ? "success" : "failure", S((await store.GetAsync("branch")).Kvs[0]));
        }
    }

    [Fact]
    public async Task A_lock_taken_with_value_not_equal_on_a_key_that_comes_and_goes_excludes_under_contention()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await ConnectAsync([etcd]);
        await store.TxnAsync(new TxnRequest([], [Op.Put("count", V("0"))]));
        const int Workers = 6, Each = 8;
        var held = new Compare("lock", CompareTarget.Value, CompareResult.NotEqual, Value: V("held"));
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            for (int i = 0; i < Each;)
            {
                Assert.True(DateTime.UtcNow < until, $"worker {w} took the lock {i} times in 30 s");
                // Taken when "lock" is missing (deleted by the last holder) or not "held": the guarded path.
                if (!(await store.TxnAsync(new TxnRequest([held], [Op.Put("lock", V("held"))]))).Succeeded) continue;
                int n = int.Parse(S((await store.GetAsync("count")).Kvs[0]));
                await store.TxnAsync(new TxnRequest([], [Op.Put("count", V($"{n + 1}"))])); // a plain write: only the lock protects it
                await store.TxnAsync(new TxnRequest([], [Op.Delete("lock")]));
                i++;
            }
        })));
        Assert.Equal($"{Workers * Each}", S((await store.GetAsync("count")).Kvs[0]));
    }

    [Fact]
    public async Task A_watch_survives_an_etcd_restart_missing_and_repeating_nothing()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await ConnectAsync([etcd], timeout: TimeSpan.FromSeconds(2));
        for (int i = 1; i <= 3; i++) await store.TxnAsync(new TxnRequest([], [Op.Put($"w/{i}", V($"{i}"))])); // 2..4
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<WatchEvent>();
        var watching = CollectAsync(store.WatchAsync("w/", 2, stop.Token), 8, seen);
        while (true) { lock (seen) if (seen.Count == 3) break; await Task.Delay(10); }

        int pid = etcd.Pid;
        await etcd.KillAsync();
        // Nobody answers: a call fails as Unavailable within its timeout, never with a gRPC type.
        var sw = Stopwatch.StartNew();
        var down = await Assert.ThrowsAsync<StoreException>(() => store.TxnAsync(new TxnRequest([], [Op.Put("w/x", V("lost"))])).AsTask());
        Assert.Equal(StoreErrorCode.Unavailable, down.Code);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Equal(StoreErrorCode.Unavailable, (await Assert.ThrowsAsync<StoreException>(() => store.GetAsync("w/1").AsTask())).Code);

        await etcd.RestartAsync();
        Assert.NotEqual(pid, etcd.Pid);
        for (int i = 4; i <= 6; i++) await store.TxnAsync(new TxnRequest([], [Op.Put($"w/{i}", V($"{i}"))])); // 5..7
        await store.TxnAsync(new TxnRequest([], [Op.Put("w/1", V("one")), Op.Delete("w/2")]));                 // 8
        await watching.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal([(2L, "w/1"), (3L, "w/2"), (4L, "w/3"), (5L, "w/4"), (6L, "w/5"), (7L, "w/6"), (8L, "w/1"), (8L, "w/2")],
            seen.Select(e => (e.Revision, e.Kv.Key)));
        Assert.Equal(WatchEventType.Delete, seen[^1].Type);
        Assert.Empty((await store.GetAsync("w/x")).Kvs); // the refused write did not happen later either
    }

    [Fact]
    public async Task Three_members_lose_one_and_writes_go_on()
    {
        var members = await EtcdProcess.StartClusterAsync(3);
        try
        {
            await using var store = await ConnectAsync(members);
            for (int i = 0; i < 10; i++) await store.TxnAsync(new TxnRequest([], [Op.Put($"c/{i:D2}", V("before"))]));
            var leases = await store.GrantLeaseAsync(TimeSpan.FromSeconds(30));
            long beforeKill = store.Revision;
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var seen = new List<WatchEvent>();
            var watching = CollectAsync(store.WatchAsync("c/", beforeKill + 1, stop.Token), 20, seen);

            await members[Random.Shared.Next(3)].KillAsync(); // maybe the leader: the other two elect one
            // As a manager writes: compare-and-swap, and on Unavailable read again and retry. A write whose answer
            // was lost in the election may have applied: the compare then fails and the value says it did.
            int unavailable = 0;
            for (int i = 0; i < 20; i++)
            {
                string key = $"c/{i:D2}";
                for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(15); ;)
                {
                    Assert.True(DateTime.UtcNow < until, $"{key} not written in 15 s ({unavailable} refusals)");
                    try
                    {
                        var current = (await store.GetAsync(key)).Kvs.SingleOrDefault();
                        if (current is not null && S(current) == "after") break; // an earlier attempt applied
                        var r = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(key, current?.ModRevision ?? 0)], [Op.Put(key, V("after"), leases.Id)]));
                        if (r.Succeeded) break;
                    }
                    catch (StoreException e) when (e.Code == StoreErrorCode.Unavailable) { unavailable++; }
                }
            }
            Assert.Equal(TimeSpan.FromSeconds(30), await store.KeepAliveAsync(leases.Id));
            var all = await store.RangeAsync("c/");
            Assert.Equal(20, all.Kvs.Count);
            Assert.All(all.Kvs, kv => Assert.Equal("after", S(kv)));
            Assert.All(all.Kvs, kv => Assert.Equal(kv.Key.CompareTo("c/10") < 0 ? 2 : 1, kv.Version)); // each written once after the kill
            await watching.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(Enumerable.Range(1, 20).Select(i => beforeKill + i), seen.Select(e => e.Revision));
        }
        finally
        {
            foreach (var m in members) await m.DisposeAsync();
        }
    }

    [Fact]
    public async Task Values_at_the_limit_are_stored_and_watched_one_byte_more_is_refused_before_sending()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await ConnectAsync([etcd]);
        var big = new byte[StoreLimits.MaxTxnBytes - "big".Length];
        Random.Shared.NextBytes(big);
        var watching = Task.Run(async () =>
        {
            await foreach (var e in store.WatchAsync("big", 2, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token)) return e;
            return null;
        });
        var r = await store.TxnAsync(new TxnRequest([], [Op.Put("big", big)]));
        Assert.True(r.Succeeded);
        Assert.Equal(big, (await store.GetAsync("big")).Kvs[0].Value);
        Assert.Equal(big, (await watching)!.Kv.Value);

        long revision = store.Revision;
        var tooBig = await Assert.ThrowsAsync<StoreException>(() => store.TxnAsync(new TxnRequest([], [Op.Put("big", [.. big, 0])])).AsTask());
        Assert.Equal(StoreErrorCode.TooLarge, tooBig.Code);
        // Many values near the limit together are one request too large as well.
        var half = new byte[StoreLimits.MaxTxnBytes / 2];
        Assert.Equal(StoreErrorCode.TooLarge, (await Assert.ThrowsAsync<StoreException>(() =>
            store.TxnAsync(new TxnRequest([], [Op.Put("h1", half), Op.Put("h2", half)])).AsTask())).Code);
        Assert.Equal(revision, (await store.GetAsync("big")).Revision);
    }

    [Fact]
    public async Task Ten_thousand_keys_under_one_prefix_range_in_order_and_a_limited_range_pages()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await ConnectAsync([etcd]);
        const int Keys = 10_000;
        for (int start = 0; start < Keys; start += StoreLimits.MaxTxnOps)
        {
            var ops = Enumerable.Range(start, Math.Min(StoreLimits.MaxTxnOps, Keys - start)).Select(i => Op.Put($"many/{i:D5}", V($"{i}"))).ToList();
            await store.TxnAsync(new TxnRequest([], ops));
        }
        await store.TxnAsync(new TxnRequest([], [Op.Put("manyx", V("outside")), Op.Put("man", V("outside"))]));
        var all = await store.RangeAsync("many/");
        Assert.Equal(Keys, all.Kvs.Count);
        Assert.False(all.More);
        Assert.Equal(Enumerable.Range(0, Keys).Select(i => $"many/{i:D5}"), all.Kvs.Select(kv => kv.Key));
        Assert.Equal("9999", S(all.Kvs[^1]));

        var page = await store.RangeAsync("many/", limit: 1000);
        Assert.True(page.More);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => $"many/{i:D5}"), page.Kvs.Select(kv => kv.Key));
        var exact = await store.RangeAsync("many/", limit: Keys);
        Assert.False(exact.More);
        Assert.Equal(Keys, exact.Kvs.Count);
        Assert.Equal(Keys + 2, (await store.RangeAsync("")).Kvs.Count);

        var deleted = await store.TxnAsync(new TxnRequest([], [Op.DeletePrefix("many/")]));
        Assert.Equal(Keys, deleted.Responses[0].Deleted);
        Assert.Equal(["man", "manyx"], (await store.RangeAsync("")).Kvs.Select(kv => kv.Key));
    }

    [Fact]
    public async Task Prefixes_keep_two_clusters_in_one_etcd_apart()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var a = await ConnectAsync([etcd], "/cluster-a/");
        await using var b = await ConnectAsync([etcd], "/cluster-b/");
        await using var root = await ConnectAsync([etcd], "/");
        await a.TxnAsync(new TxnRequest([], [Op.Put("nodes/1", V("a1"))]));
        await b.TxnAsync(new TxnRequest([], [Op.Put("nodes/1", V("b1")), Op.Put("nodes/2", V("b2"))]));
        Assert.Equal(["nodes/1"], (await a.RangeAsync("")).Kvs.Select(kv => kv.Key));
        Assert.Equal("a1", S((await a.GetAsync("nodes/1")).Kvs[0]));
        Assert.Equal(2, (await b.RangeAsync("nodes/")).Kvs.Count);
        // In etcd itself the keys are under the prefixes.
        Assert.Equal(["cluster-a/nodes/1", "cluster-b/nodes/1", "cluster-b/nodes/2"], (await root.RangeAsync("")).Kvs.Select(kv => kv.Key));
        // A prefix delete and a compare stay inside the store's own prefix.
        await b.TxnAsync(new TxnRequest([], [Op.DeletePrefix("")]));
        Assert.Single((await a.RangeAsync("")).Kvs);
        Assert.True((await a.TxnAsync(new TxnRequest([Compare.Missing("nodes/2")], []))).Succeeded);
        // Revisions are etcd's: b's writes advanced a's view of them too.
        Assert.Equal(4, (await a.GetAsync("nodes/1")).Revision);
    }

    [Fact]
    public async Task No_member_answering_is_unavailable_and_bad_options_name_the_field()
    {
        EtcdProcess.Binary();
        using var free = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        free.Start();
        int port = ((System.Net.IPEndPoint)free.LocalEndpoint).Port;
        free.Stop(); // nothing listens there now
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<StoreException>(() => EtcdClusterStore.ConnectAsync(new EtcdStoreOptions
        {
            Endpoints = [new Uri($"http://127.0.0.1:{port}")],
            RequestTimeout = TimeSpan.FromSeconds(1),
        }));
        Assert.Equal(StoreErrorCode.Unavailable, e.Code);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");

        var bad = new (EtcdStoreOptions Options, string Field)[]
        {
            (new EtcdStoreOptions(), "endpoints"),
            (new EtcdStoreOptions { Endpoints = [new Uri("ftp://127.0.0.1:1")] }, "endpoints[0]"),
            (new EtcdStoreOptions { Endpoints = [new Uri("http://127.0.0.1:1")], KeyPrefix = "" }, "keyPrefix"),
            (new EtcdStoreOptions { Endpoints = [new Uri("https://127.0.0.1:1")], CaFile = "/nonexistent/ca.pem" }, "caFile"),
            (new EtcdStoreOptions { Endpoints = [new Uri("https://127.0.0.1:1")], ClientKeyFile = "/nonexistent/key.pem" }, "clientCertificateFile/clientKeyFile"),
            (new EtcdStoreOptions { Endpoints = [new Uri("http://127.0.0.1:1")], RequestTimeout = TimeSpan.Zero }, "requestTimeout"),
            (new EtcdStoreOptions { Endpoints = [new Uri("http://127.0.0.1:1")], CompactionRetention = -1 }, "compactionRetention"),
        };
        foreach (var (options, field) in bad)
            Assert.Contains(field + ":", (await Assert.ThrowsAsync<ArgumentException>(() => EtcdClusterStore.ConnectAsync(options))).Message);
    }

    /// <summary>A CA, and certificates it signs for 127.0.0.1 (server) and a client, as PEM files in <paramref name="dir"/>.</summary>
    private static void WriteCertificates(string dir, string name)
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={name} CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
        File.WriteAllText(Path.Combine(dir, $"{name}-ca.pem"), ca.ExportCertificatePem());
        foreach (var (leaf, usage) in new[] { ("server", "1.3.6.1.5.5.7.3.1"), ("client", "1.3.6.1.5.5.7.3.2") })
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name} {leaf}", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
            using var cert = request.Create(ca, now.AddHours(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(8));
            File.WriteAllText(Path.Combine(dir, $"{name}-{leaf}.pem"), cert.ExportCertificatePem());
            File.WriteAllText(Path.Combine(dir, $"{name}-{leaf}-key.pem"), key.ExportPkcs8PrivateKeyPem());
        }
    }

    [Fact]
    public async Task Over_TLS_with_a_client_certificate_and_without_the_right_ones_unavailable()
    {
        EtcdProcess.Binary();
        var dir = Directory.CreateTempSubdirectory("useroverlay-etcd-tls-");
        try
        {
            WriteCertificates(dir.FullName, "good");
            WriteCertificates(dir.FullName, "other");
            string F(string file) => Path.Combine(dir.FullName, file);
            await using var etcd = await EtcdProcess.StartAsync("https",
                "--cert-file", F("good-server.pem"), "--key-file", F("good-server-key.pem"), "--trusted-ca-file", F("good-ca.pem"), "--client-cert-auth");
            Assert.Equal("https", etcd.ClientUrl.Scheme);
            var options = new EtcdStoreOptions
            {
                Endpoints = [etcd.ClientUrl],
                CaFile = F("good-ca.pem"),
                ClientCertificateFile = F("good-client.pem"),
                ClientKeyFile = F("good-client-key.pem"),
                RequestTimeout = TimeSpan.FromSeconds(2),
            };
            await using (var store = await EtcdClusterStore.ConnectAsync(options))
            {
                var watching = Task.Run(async () =>
                {
                    await foreach (var e in store.WatchAsync("t/", 2, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token)) return e;
                    return null;
                });
                await store.TxnAsync(new TxnRequest([], [Op.Put("t/1", V("over tls"))]));
                Assert.Equal("over tls", S((await store.GetAsync("t/1")).Kvs[0]));
                Assert.Equal("t/1", (await watching)!.Kv.Key);
            }
            // No client certificate; a client certificate of another CA; a server this CA did not sign.
            foreach (var wrong in new[]
            {
                options with { ClientCertificateFile = null, ClientKeyFile = null },
                options with { ClientCertificateFile = F("other-client.pem"), ClientKeyFile = F("other-client-key.pem") },
                options with { CaFile = F("other-ca.pem") },
            })
                Assert.Equal(StoreErrorCode.Unavailable, (await Assert.ThrowsAsync<StoreException>(() => EtcdClusterStore.ConnectAsync(wrong))).Code);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_store_url_gives_endpoints_and_prefix()
    {
        var o = EtcdStoreOptions.Parse("etcd://192.0.2.10:2379,etcd-2:2380/swarm/prod");
        Assert.Equal([new Uri("http://192.0.2.10:2379"), new Uri("http://etcd-2:2380")], o.Endpoints);
        Assert.Equal("/swarm/prod/", o.KeyPrefix);
        var tls = EtcdStoreOptions.Parse("etcds://e1:2379");
        Assert.Equal("https", tls.Endpoints[0].Scheme);
        Assert.Equal("/useroverlay/", tls.KeyPrefix);
        foreach (string badUrl in new[] { "http://e1:2379", "etcd://", "etcd://e1", "etcd://e1:2379,,e2:1", "etcd://e1:notaport" })
            Assert.Throws<ArgumentException>(() => EtcdStoreOptions.Parse(badUrl));
    }
}
