using System.Collections.Concurrent;
using System.Diagnostics;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// Several managers on one real etcd at once, each with its own connection (as on separate hosts), the secrets sealed:
/// concurrent allocation (every address exactly one owner), presence by lease (a manager that stops renewing is gone
/// within its TTL), one of three etcd members killed under load (the managers go on), and a manager cut off in the
/// middle of allocations and network creates (afterwards every address has exactly one owner, every network is whole).
/// Each prints its figures.
/// </summary>
public sealed class EtcdManagersFaultTests(ITestOutputHelper output)
{
    private const string WorkerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-workerworkerworkerworker1";
    private const string ManagerToken = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-managermanagermanagerman";
    private static readonly byte[] Seal = SealedValues.NewKey();

    private void Figure(string line)
    {
        output.WriteLine("[figures] " + line);
        Console.WriteLine("[figures] " + line);
    }

    /// <summary>A store that counts the transactions whose compares failed (a compare-and-swap another manager won: retried).</summary>
    private sealed class Counting(IClusterStore inner) : IClusterStore
    {
        public int Conflicts;
        public int Unavailable;
        public string Location => inner.Location;
        public long Revision => inner.Revision;
        public ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);
        public ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default) => inner.RangeAsync(prefix, limit, cancellationToken);
        public async ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
        {
            try
            {
                var r = await inner.TxnAsync(request, cancellationToken);
                if (!r.Succeeded && request.Success.Any(o => o.Kind != OpKind.Range)) Interlocked.Increment(ref Conflicts);
                return r;
            }
            catch (StoreException e) when (e.Code == StoreErrorCode.Unavailable)
            {
                Interlocked.Increment(ref Unavailable);
                throw;
            }
        }
        public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, fromRevision, cancellationToken);
        public ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) => inner.GrantLeaseAsync(ttl, cancellationToken);
        public ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default) => inner.KeepAliveAsync(leaseId, cancellationToken);
        public ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default) => inner.RevokeLeaseAsync(leaseId, cancellationToken);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private static async Task<Counting> ConnectAsync(IEnumerable<EtcdProcess> members, TimeSpan? timeout = null)
    {
        var etcd = await EtcdClusterStore.ConnectAsync(new EtcdStoreOptions
        {
            Endpoints = [.. members.Select(m => m.ClientUrl)],
            KeyPrefix = "/useroverlay/",
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(5),
        });
        return new Counting(new SealingClusterStore(etcd, new SealedValues(Seal)));
    }

    private static Ipv4Prefix P(string cidr) => Ipv4Prefix.TryParse(cidr, out var p, out string why, allowHostBits: true) ? p : throw new ArgumentException(why);

    private static ClusterInitSpec Spec() => new()
    {
        Info = new ClusterInfo
        {
            Id = "cluster1",
            Created = DateTimeOffset.UnixEpoch,
            RootCertificatePem = "root",
            RootKeyPem = "-----BEGIN PRIVATE KEY-----",
            WorkerToken = WorkerToken,
            ManagerToken = ManagerToken,
            DefaultAddressPools = [P("198.18.0.0/16")],
            DefaultSubnetLength = 24,
        },
        FirstNode = Node("m1"),
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

    private static AllocationRequest Alloc(string network, string endpoint) =>
        new() { Network = network, NodeId = "id-m1", EndpointId = endpoint, Name = endpoint };

    /// <summary>Every address has one record, and every endpoint at most one address; returns the allocations.</summary>
    private static async Task<List<AddressAllocation>> AssertOneOwnerEachAsync(IClusterStore store, string networkId)
    {
        var held = await store.RangeAsync(ClusterKeys.NetworkIpam(networkId));
        var all = held.Kvs.Select(kv => ClusterManager.Decode(kv, ClusterJson.Default.AddressAllocation)).ToList();
        foreach (var (kv, a) in held.Kvs.Zip(all)) Assert.Equal(ClusterKeys.Allocation(networkId, a.Address), kv.Key);
        Assert.Equal(all.Count, all.Select(a => a.Address).Distinct().Count());
        var doubled = all.GroupBy(a => a.EndpointId).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(doubled.Count == 0, $"endpoints holding two addresses: {string.Join(", ", doubled)}");
        return all;
    }

    /// <summary>Every network has its name and VNI index, and every index names a network that exists.</summary>
    private static async Task AssertNetworksWholeAsync(IClusterStore store)
    {
        var nets = (await store.RangeAsync(ClusterKeys.Networks)).Kvs.Select(kv => ClusterManager.Decode(kv, ClusterJson.Default.NetworkDefinition)).ToDictionary(n => n.Id);
        var names = (await store.RangeAsync(ClusterKeys.NetworkNames)).Kvs.ToDictionary(kv => kv.Key[ClusterKeys.NetworkNames.Length..], kv => System.Text.Encoding.UTF8.GetString(kv.Value));
        var vnis = (await store.RangeAsync(ClusterKeys.NetworkVnis)).Kvs.ToDictionary(kv => kv.Key[ClusterKeys.NetworkVnis.Length..], kv => System.Text.Encoding.UTF8.GetString(kv.Value));
        Assert.Equal(nets.Count, names.Count);
        Assert.Equal(nets.Count, vnis.Count);
        foreach (var n in nets.Values)
        {
            Assert.Equal(n.Id, names[n.Name]);
            Assert.Equal(n.Id, vnis[n.Vni.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
    }

    [Fact]
    public async Task Two_managers_allocating_at_once_never_hand_out_one_address_twice()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var s1 = await ConnectAsync([etcd]);
        await using var s2 = await ConnectAsync([etcd]);
        var m1 = new ClusterManager(s1);
        var m2 = new ClusterManager(s2);
        await m1.InitializeAsync(Spec());
        var net = await m2.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Subnet = "198.18.7.0/24", Attachable = true });
        const int PerManager = 60;
        var sw = Stopwatch.StartNew();
        var got = await Task.WhenAll(Enumerable.Range(0, 2 * PerManager).Select(i => Task.Run(() => (i % 2 == 0 ? m1 : m2).AllocateAsync(Alloc("blue", $"ep{i}")))));
        sw.Stop();
        Assert.Equal(2 * PerManager, got.Select(a => a.Address).Distinct().Count());
        var stored = await AssertOneOwnerEachAsync(s1, net.Id);
        Assert.Equal(2 * PerManager, stored.Count);
        Assert.Equal(got.Select(a => a.Address).Order(), stored.Select(a => a.Address).Order());
        Figure($"two managers on one etcd, {2 * PerManager} concurrent allocations: all distinct, {s1.Conflicts + s2.Conflicts} compare-and-swaps lost and retried, {sw.Elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task A_manager_that_stops_renewing_its_presence_is_gone_within_the_lease_s_TTL_and_one_that_stops_cleanly_at_once()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var s1 = await ConnectAsync([etcd]);
        await using var s2 = await ConnectAsync([etcd]);
        var ttl = TimeSpan.FromSeconds(2);
        await using var p1 = new ManagerPresence(s1, "id-m1", "192.0.2.1:2377", ttl);
        var p2 = new ManagerPresence(s2, "id-m2", "192.0.2.2:2377", ttl);
        await p1.StartAsync();
        await p2.StartAsync();
        Assert.Equal(["id-m1", "id-m2"], (await ManagerPresence.ListAsync(s1)).Keys.Order());
        await Task.Delay(ttl * 2); // renewals keep both
        Assert.Equal(2, (await ManagerPresence.ListAsync(s1)).Count);

        await p2.AbandonAsync(); // as a killed manager: no more renewals, no revoke
        var sw = Stopwatch.StartNew();
        while ((await ManagerPresence.ListAsync(s1)).ContainsKey("id-m2"))
        {
            Assert.True(sw.Elapsed < ttl + TimeSpan.FromSeconds(3), $"m2's presence outlived its lease ({sw.Elapsed})");
            await Task.Delay(50);
        }
        Figure($"presence: a manager that stopped renewing (TTL {ttl.TotalSeconds:0} s, renewed every {ttl.TotalSeconds / 3:0.0} s) was gone after {sw.Elapsed.TotalSeconds:0.00} s");
        Assert.True((await ManagerPresence.ListAsync(s1)).ContainsKey("id-m1"));
        await p1.DisposeAsync();
        Assert.Empty(await ManagerPresence.ListAsync(s2));
    }

    [Fact]
    public async Task One_of_three_etcd_members_killed_under_allocation_load_the_managers_go_on()
    {
        var members = await EtcdProcess.StartClusterAsync(3);
        try
        {
            await using var s1 = await ConnectAsync(members);
            await using var s2 = await ConnectAsync(members);
            var m1 = new ClusterManager(s1);
            var m2 = new ClusterManager(s2);
            await m1.InitializeAsync(Spec());
            var net = await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Subnet = "198.18.8.0/22", Attachable = true });
            var done = new ConcurrentBag<(TimeSpan At, uint Address)>();
            int failed = 0;
            var clock = Stopwatch.StartNew();
            TimeSpan killedAt = TimeSpan.Zero;
            async Task RunAsync(ClusterManager m, int worker)
            {
                for (int i = 0; i < 60; i++)
                {
                    var request = Alloc("blue", $"w{worker}-{i}");
                    for (int attempt = 0; ; attempt++)
                    {
                        try
                        {
                            var a = await m.AllocateAsync(request);
                            done.Add((clock.Elapsed, a.Address));
                            break;
                        }
                        catch (StoreException) when (attempt < 20) { Interlocked.Increment(ref failed); await Task.Delay(50); }
                    }
                }
            }
            var load = Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(() => RunAsync(w % 2 == 0 ? m1 : m2, w))));
            await Task.Delay(300);
            killedAt = clock.Elapsed;
            await members[0].KillAsync();
            await load;
            var times = done.Select(d => d.At).Order().ToList();
            var gap = times.Zip(times.Skip(1)).Where(p => p.Second > killedAt && p.First <= killedAt + TimeSpan.FromSeconds(5)).Select(p => p.Second - p.First).DefaultIfEmpty().Max();
            int afterKill = times.Count(t => t > killedAt);
            var stored = await AssertOneOwnerEachAsync(s2, net.Id);
            Assert.Equal(240, stored.Count);
            Assert.True(afterKill > 0, "allocations went on after the kill");
            Figure($"one of three etcd members killed under load: {afterKill} of 240 allocations after the kill, longest pause around it {gap.TotalMilliseconds:0} ms, {failed} calls failed and retried, {s1.Conflicts + s2.Conflicts} compare-and-swaps lost; every address one owner");
        }
        finally
        {
            foreach (var m in members) await m.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_manager_cut_off_in_the_middle_of_allocations_and_network_creates_leaves_every_address_one_owner_and_no_half_made_network()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var survivor = await ConnectAsync([etcd]);
        var m2 = new ClusterManager(survivor);
        var victim = await ConnectAsync([etcd]);
        var m1 = new ClusterManager(victim);
        await m1.InitializeAsync(Spec());
        var net = await m2.CreateNetworkAsync(new NetworkCreateRequest { Name = "blue", Subnet = "198.18.9.0/24", Attachable = true });
        int ok = 0, cut = 0, netsMade = 0;
        using var kill = new CancellationTokenSource();
        using var gate = new SemaphoreSlim(8); // eight requests in flight at a time, as a busy manager's
        var work = Enumerable.Range(0, 80).Select(i => Task.Run(async () =>
        {
            await gate.WaitAsync();
            try
            {
                if (i % 8 == 0)
                {
                    await m1.CreateNetworkAsync(new NetworkCreateRequest { Name = $"n{i}", Attachable = true });
                    Interlocked.Increment(ref netsMade);
                }
                else
                {
                    await m1.AllocateAsync(Alloc("blue", $"ep{i}"));
                    Interlocked.Increment(ref ok);
                }
            }
            catch (Exception e) when (e is StoreException or ControlException or ObjectDisposedException) { Interlocked.Increment(ref cut); }
            finally { gate.Release(); }
        })).ToList();
        // The manager dies mid-flight: its connection is torn down with requests in it (some may have applied, unanswered).
        var until = Stopwatch.StartNew();
        while (Volatile.Read(ref ok) + Volatile.Read(ref netsMade) < 20 && until.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(1);
        await victim.DisposeAsync();
        Assert.True(work.Any(t => !t.IsCompleted) || cut > 0, "the manager was cut off with work in flight");
        await Task.WhenAll(work);
        var held = await AssertOneOwnerEachAsync(survivor, net.Id);
        await AssertNetworksWholeAsync(survivor);
        // The nodes retry through the surviving manager: each endpoint ends with exactly one address.
        int retriedFound = 0;
        foreach (int i in Enumerable.Range(0, 80).Where(i => i % 8 != 0))
        {
            bool had = held.Any(a => a.EndpointId == $"ep{i}");
            var a = await m2.AllocateAsync(Alloc("blue", $"ep{i}"));
            if (had) { retriedFound++; Assert.Equal(held.Single(h => h.EndpointId == $"ep{i}").Address, a.Address); }
        }
        var final = await AssertOneOwnerEachAsync(survivor, net.Id);
        Assert.Equal(70, final.Count);
        await AssertNetworksWholeAsync(survivor);
        Figure($"manager cut off mid-flight: {ok} allocations and {netsMade} creates answered, {cut} cut off; {held.Count} addresses held afterwards, all one owner; {held.Count - ok} of them applied though their answer was lost; retried through another manager, each endpoint got the address it held or a new one; networks whole");
    }
}
