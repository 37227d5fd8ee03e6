using System.Text;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// What every <see cref="IClusterStore"/> must do, as its doc comments say (etcd v3's semantics): one suite, run by a
/// subclass per backend — the embedded store over each log, and later etcd. A subclass provides
/// <see cref="CreateAsync"/> and, where it can, the hooks below (a restart that keeps the state, time that passes
/// for leases, a repeated request id); a test whose hook is missing is skipped, saying which.
/// </summary>
public abstract class StoreConformanceTests : IAsyncLifetime
{
    /// <summary>A started, empty store.</summary>
    protected abstract Task<IClusterStore> CreateAsync();

    /// <summary>Stops <paramref name="store"/> and opens its state again (null: this backend cannot restart).</summary>
    protected virtual Task<IClusterStore>? RestartAsync(IClusterStore store) => null;

    /// <summary>
    /// Makes <paramref name="time"/> pass on the clock the store's leases are counted with, and returns once every
    /// lease that expired meanwhile has been revoked (false: this backend's time cannot be moved).
    /// </summary>
    protected virtual Task<bool> PassTimeAsync(TimeSpan time) => Task.FromResult(false);

    /// <summary>Runs <paramref name="request"/> twice under one request id, returning both answers (null: not possible through this backend).</summary>
    protected virtual Task<(TxnResult First, TxnResult Second)?> TxnTwiceAsync(TxnRequest request) => Task.FromResult<(TxnResult, TxnResult)?>(null);

    /// <summary>How many revisions of history the store keeps for watches (subclasses configure their stores so).</summary>
    protected virtual int HistoryKept => 64;

    /// <summary>The store under test.</summary>
    protected IClusterStore Store { get; set; } = null!;

    public virtual async ValueTask InitializeAsync() => Store = await CreateAsync();

    public virtual async ValueTask DisposeAsync()
    {
        if (Store is not null) await Store.DisposeAsync();
    }

    protected static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    protected static string S(KeyValue kv) => Encoding.UTF8.GetString(kv.Value);

    protected async Task<TxnResult> PutAsync(string key, string value, long lease = 0) =>
        await Store.TxnAsync(new TxnRequest([], [Op.Put(key, V(value), lease)]));

    protected static async Task<StoreException> Refused(Func<Task> action) => await Assert.ThrowsAsync<StoreException>(action);

    protected static CancellationToken Timeout(int seconds = 10) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task Revisions_start_at_1_and_advance_once_per_changing_transaction()
    {
        Assert.Equal(1, Store.Revision);
        var r = await PutAsync("k", "1");
        Assert.Equal(2, r.Revision);
        var kv = Assert.Single((await Store.GetAsync("k")).Kvs);
        Assert.Equal((2L, 2L, 1L, 0L), (kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease));
        await PutAsync("k", "2");
        kv = (await Store.GetAsync("k")).Kvs[0];
        Assert.Equal((2L, 3L, 2L), (kv.CreateRevision, kv.ModRevision, kv.Version));

        var two = await Store.TxnAsync(new TxnRequest([], [Op.Put("a", V("x")), Op.Put("b", V("y"))]));
        Assert.Equal(4, two.Revision);
        Assert.All((await Store.RangeAsync("")).Kvs.Where(k => k.Key != "k"), k => Assert.Equal(4, k.ModRevision));

        var failed = await Store.TxnAsync(new TxnRequest([Compare.Missing("k")], [Op.Put("z", V("no"))]));
        Assert.False(failed.Succeeded);
        Assert.Equal(4, failed.Revision);
        var reads = await Store.TxnAsync(new TxnRequest([], [Op.Get("k"), Op.GetPrefix("")]));
        Assert.Equal(4, reads.Revision);
        Assert.Equal(3, reads.Responses[1].Kvs.Count);
        var nothing = await Store.TxnAsync(new TxnRequest([], [Op.Delete("missing")]));
        Assert.Equal((4L, 0L), (nothing.Revision, nothing.Responses[0].Deleted));

        var deleted = await Store.TxnAsync(new TxnRequest([], [Op.Delete("k")]));
        Assert.Equal((5L, 1L), (deleted.Revision, deleted.Responses[0].Deleted));
        Assert.Empty((await Store.GetAsync("k")).Kvs);
        await PutAsync("k", "again");
        kv = (await Store.GetAsync("k")).Kvs[0];
        Assert.Equal((6L, 6L, 1L), (kv.CreateRevision, kv.ModRevision, kv.Version)); // created anew
        Assert.Equal(6, Store.Revision);
        Assert.Equal(6, (await Store.GetAsync("k")).Revision);
    }

    [Fact]
    public async Task A_put_returns_the_previous_value_and_a_range_in_a_transaction_sees_its_earlier_writes()
    {
        await PutAsync("k", "old");
        var r = await Store.TxnAsync(new TxnRequest([], [Op.Put("k", V("new")), Op.Get("k"), Op.Put("j", V("j"))]));
        Assert.Equal("old", S(r.Responses[0].Previous!));
        Assert.Equal("new", S(Assert.Single(r.Responses[1].Kvs)));
        Assert.Null((await Store.TxnAsync(new TxnRequest([], [Op.Put("fresh", V("1"))]))).Responses[0].Previous);
    }

    public static TheoryData<string, bool> CompareCases() => new()
    {
        // name, expected to hold (against "k" = "m" written at revision 2, version 2 after the second put at 3)
        { "missing-on-existing", false }, { "missing-on-absent", true }, { "exists", true }, { "exists-on-absent", false },
        { "modified-at-current", true }, { "modified-at-old", false }, { "modified-at-0-absent", true },
        { "version-equal-2", true }, { "version-greater-1", true }, { "version-less-2", false }, { "version-not-equal-2", false },
        { "create-equal-2", true }, { "create-less-3", true },
        { "value-equal", true }, { "value-not-equal", false }, { "value-less-n", true }, { "value-greater-a", true }, { "value-greater-z", false },
        { "value-absent-not-equal", true }, { "value-absent-equal", false },
        { "lease-equal-0", true }, { "lease-greater-0", false },
        { "modrevision-greater-2", true }, { "modrevision-less-3", false },
    };

    private static Compare CompareFor(string name) => name switch
    {
        "missing-on-existing" => Compare.Missing("k"),
        "missing-on-absent" => Compare.Missing("absent"),
        "exists" => Compare.Exists("k"),
        "exists-on-absent" => Compare.Exists("absent"),
        "modified-at-current" => Compare.ModifiedAt("k", 3),
        "modified-at-old" => Compare.ModifiedAt("k", 2),
        "modified-at-0-absent" => Compare.ModifiedAt("absent", 0),
        "version-equal-2" => new("k", CompareTarget.Version, CompareResult.Equal, 2),
        "version-greater-1" => new("k", CompareTarget.Version, CompareResult.Greater, 1),
        "version-less-2" => new("k", CompareTarget.Version, CompareResult.Less, 2),
        "version-not-equal-2" => new("k", CompareTarget.Version, CompareResult.NotEqual, 2),
        "create-equal-2" => new("k", CompareTarget.CreateRevision, CompareResult.Equal, 2),
        "create-less-3" => new("k", CompareTarget.CreateRevision, CompareResult.Less, 3),
        "value-equal" => new("k", CompareTarget.Value, CompareResult.Equal, Value: V("m")),
        "value-not-equal" => new("k", CompareTarget.Value, CompareResult.NotEqual, Value: V("m")),
        "value-less-n" => new("k", CompareTarget.Value, CompareResult.Less, Value: V("n")),
        "value-greater-a" => new("k", CompareTarget.Value, CompareResult.Greater, Value: V("a")),
        "value-greater-z" => new("k", CompareTarget.Value, CompareResult.Greater, Value: V("z")),
        "value-absent-not-equal" => new("absent", CompareTarget.Value, CompareResult.NotEqual, Value: V("m")),
        "value-absent-equal" => new("absent", CompareTarget.Value, CompareResult.Equal, Value: V("m")),
        "lease-equal-0" => new("k", CompareTarget.Lease, CompareResult.Equal, 0),
        "lease-greater-0" => new("k", CompareTarget.Lease, CompareResult.Greater, 0),
        "modrevision-greater-2" => new("k", CompareTarget.ModRevision, CompareResult.Greater, 2),
        "modrevision-less-3" => new("k", CompareTarget.ModRevision, CompareResult.Less, 3),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(CompareCases))]
    public async Task Each_compare_chooses_the_branch(string name, bool holds)
    {
        await PutAsync("k", "a");
        await PutAsync("k", "m"); // k: create 2, mod 3, version 2, value "m"
        long before = Store.Revision;
        var r = await Store.TxnAsync(new TxnRequest([CompareFor(name)],
            [Op.Put("branch", V("success")), Op.Get("k")],
            [Op.Put("branch", V("failure")), Op.Get("branch")]));
        Assert.Equal(holds, r.Succeeded);
        Assert.Equal(before + 1, r.Revision);
        Assert.Equal(holds ? "success" : "failure", S((await Store.GetAsync("branch")).Kvs[0]));
        Assert.Equal(2, r.Responses.Count);
        Assert.Equal(holds ? "k" : "branch", Assert.Single(r.Responses[1].Kvs).Key);
    }

    [Fact]
    public async Task All_compares_must_hold()
    {
        await PutAsync("k", "v");
        var r = await Store.TxnAsync(new TxnRequest([Compare.Exists("k"), Compare.Exists("nope")], [Op.Put("x", V("1"))]));
        Assert.False(r.Succeeded);
        Assert.Empty(r.Responses);
        Assert.Empty((await Store.GetAsync("x")).Kvs);
    }

    [Fact]
    public async Task Ranges_are_by_prefix_in_ordinal_order_with_a_limit()
    {
        foreach (string k in new[] { "a/3", "a/1", "b/1", "a", "a/B", "a/a", "a/2", "ab" })
            await PutAsync(k, k);
        Assert.Equal(["a/1", "a/2", "a/3", "a/B", "a/a"], (await Store.RangeAsync("a/")).Kvs.Select(kv => kv.Key));
        Assert.Equal(["a", "a/1", "a/2", "a/3", "a/B", "a/a", "ab", "b/1"], (await Store.RangeAsync("")).Kvs.Select(kv => kv.Key));
        var two = await Store.RangeAsync("a/", limit: 2);
        Assert.Equal(["a/1", "a/2"], two.Kvs.Select(kv => kv.Key));
        Assert.True(two.More);
        Assert.Equal(Store.Revision, two.Revision);
        var five = await Store.RangeAsync("a/", limit: 5);
        Assert.False(five.More);
        Assert.Equal(5, five.Kvs.Count);
        Assert.Empty((await Store.RangeAsync("c")).Kvs);
        Assert.Empty((await Store.RangeAsync("zzz")).Kvs);
        Assert.Empty((await Store.GetAsync("a/")).Kvs);
        Assert.Equal("a/B", Assert.Single((await Store.GetAsync("a/B")).Kvs).Key);
    }

    [Fact]
    public async Task Deleting_a_prefix_is_one_revision()
    {
        foreach (string k in new[] { "n/1", "n/2", "n/3", "n", "o/1" })
            await PutAsync(k, "v");
        long before = Store.Revision;
        var r = await Store.TxnAsync(new TxnRequest([], [Op.DeletePrefix("n/")]));
        Assert.Equal((before + 1, 3L), (r.Revision, r.Responses[0].Deleted));
        Assert.Equal(["n", "o/1"], (await Store.RangeAsync("")).Kvs.Select(kv => kv.Key));
        var events = await TakeAsync(Store.WatchAsync("n/", before + 1, Timeout()), 3);
        Assert.All(events, e => Assert.Equal((WatchEventType.Delete, before + 1), (e.Type, e.Revision)));
        Assert.Equal(["n/1", "n/2", "n/3"], events.Select(e => e.Kv.Key));
        Assert.All(events, e => Assert.Equal("v", S(e.PrevKv!)));
        Assert.All(events, e => Assert.Empty(e.Kv.Value));
    }

    protected static async Task<List<WatchEvent>> TakeAsync(IAsyncEnumerable<WatchEvent> watch, int count)
    {
        var got = new List<WatchEvent>();
        await foreach (var e in watch)
        {
            got.Add(e);
            if (got.Count == count) break;
        }
        Assert.Equal(count, got.Count);
        return got;
    }

    [Fact]
    public async Task A_watch_replays_from_an_old_revision_streams_live_and_resumes_exactly_once()
    {
        await PutAsync("w/a", "1");   // 2
        await PutAsync("other", "x"); // 3
        await PutAsync("w/b", "2");   // 4
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<WatchEvent>();
        var firstTwo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = Task.Run(async () =>
        {
            await foreach (var e in Store.WatchAsync("w/", 2, stop.Token))
            {
                lock (seen) seen.Add(e);
                if (seen.Count == 2) firstTwo.TrySetResult();
                if (seen.Count == 4) break; // the stream is "lost" here
            }
        });
        await firstTwo.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var live = await Store.TxnAsync(new TxnRequest([], [Op.Put("w/c", V("3")), Op.Delete("w/a")])); // 5: two events
        await PutAsync("w/d", "4"); // 6
        await PutAsync("w/e", "5"); // 7
        await watcher.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([(2L, "w/a"), (4L, "w/b"), (5L, "w/c"), (5L, "w/a")], seen.Select(e => (e.Revision, e.Kv.Key)));
        Assert.Equal(live.Revision, seen[2].Revision);
        Assert.Equal(WatchEventType.Delete, seen[3].Type);
        Assert.Equal("1", S(seen[3].PrevKv!));
        Assert.Null(seen[0].PrevKv);
        Assert.Equal("2", S(seen[1].Kv));

        // Resume from the last seen + 1: every later change, none twice.
        var resumed = await TakeAsync(Store.WatchAsync("w/", seen[^1].Revision + 1, Timeout()), 2);
        Assert.Equal([(6L, "w/d"), (7L, "w/e")], resumed.Select(e => (e.Revision, e.Kv.Key)));
    }

    [Fact]
    public async Task A_cancelled_watch_ends_without_an_exception()
    {
        using var cts = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            int n = 0;
            await foreach (var _ in Store.WatchAsync("", Store.Revision + 1, cts.Token)) n++;
            return n;
        });
        await PutAsync("k", "v");
        await Task.Delay(50);
        cts.Cancel();
        Assert.InRange(await watching.WaitAsync(TimeSpan.FromSeconds(10)), 0, 1);
    }

    [Fact]
    public async Task A_watch_from_a_revision_older_than_the_history_is_compacted()
    {
        for (int i = 0; i < HistoryKept + 10; i++) await PutAsync("h/k", $"{i}");
        var e = await Refused(async () =>
        {
            await foreach (var _ in Store.WatchAsync("h/", 2, Timeout())) { }
        });
        Assert.Equal(StoreErrorCode.Compacted, e.Code);
        Assert.True(e.CompactRevision > 2 && e.CompactRevision <= Store.Revision, $"compact revision {e.CompactRevision}");
        // The oldest revision kept can still be watched from.
        var oldest = await TakeAsync(Store.WatchAsync("h/", e.CompactRevision, Timeout()), 1);
        Assert.Equal(e.CompactRevision, oldest[0].Revision);
        // As the contract says: read, then watch from the read's revision + 1.
        var read = await Store.RangeAsync("h/");
        var next = Task.Run(() => TakeAsync(Store.WatchAsync("h/", read.Revision + 1, Timeout()), 1));
        await PutAsync("h/k", "after");
        Assert.Equal("after", S((await next).Single().Kv));
    }

    [Fact]
    public async Task Limits_and_malformed_requests_are_refused_and_change_nothing()
    {
        long before = Store.Revision;
        var cases = new (TxnRequest Request, StoreErrorCode Code)[]
        {
            (new([], [Op.Put(new string('k', StoreLimits.MaxKeyBytes + 1), V("v"))]), StoreErrorCode.TooLarge),
            (new([], [Op.Put("k", new byte[StoreLimits.MaxTxnBytes + 1])]), StoreErrorCode.TooLarge),
            (new([], [.. Enumerable.Range(0, StoreLimits.MaxTxnOps + 1).Select(i => Op.Put($"k{i}", V("v")))]), StoreErrorCode.TooLarge),
            (new([.. Enumerable.Range(0, StoreLimits.MaxTxnOps + 1).Select(i => Compare.Missing($"k{i}"))], []), StoreErrorCode.TooLarge),
            (new([], [Op.Put("", V("v"))]), StoreErrorCode.InvalidArgument),
            (new([], [new Op(OpKind.Put, "k")]), StoreErrorCode.InvalidArgument),
        };
        foreach (var (request, code) in cases)
            Assert.Equal(code, (await Refused(() => Store.TxnAsync(request).AsTask())).Code);
        Assert.Equal(StoreErrorCode.InvalidArgument, (await Refused(() => Store.GrantLeaseAsync(TimeSpan.FromMilliseconds(500)).AsTask())).Code);
        Assert.Equal(before, Store.Revision);
        Assert.Empty((await Store.RangeAsync("")).Kvs);
        // The largest that fits is accepted.
        await Store.TxnAsync(new TxnRequest([], [Op.Put("big", new byte[StoreLimits.MaxTxnBytes - 3])]));
        Assert.Equal(StoreLimits.MaxTxnBytes - 3, (await Store.GetAsync("big")).Kvs[0].Value.Length);
    }

    [Fact]
    public async Task Leases_are_granted_kept_alive_and_revoked_with_their_keys_in_one_revision()
    {
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(10));
        var other = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(1.5));
        Assert.NotEqual(0, lease.Id);
        Assert.NotEqual(lease.Id, other.Id);
        Assert.Equal(TimeSpan.FromSeconds(10), lease.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(2), other.Ttl); // whole seconds, rounded up
        await Store.TxnAsync(new TxnRequest([], [Op.Put("l/1", V("a"), lease.Id), Op.Put("l/2", V("b"), lease.Id), Op.Put("l/3", V("c"))]));
        Assert.Equal(lease.Id, (await Store.GetAsync("l/1")).Kvs[0].Lease);
        Assert.Equal(TimeSpan.FromSeconds(10), await Store.KeepAliveAsync(lease.Id));

        long before = Store.Revision;
        await Store.RevokeLeaseAsync(lease.Id);
        Assert.Equal(before + 1, Store.Revision);
        Assert.Equal(["l/3"], (await Store.RangeAsync("l/")).Kvs.Select(kv => kv.Key));
        Assert.Equal(StoreErrorCode.LeaseNotFound, (await Refused(() => Store.KeepAliveAsync(lease.Id).AsTask())).Code);
        await Store.RevokeLeaseAsync(lease.Id); // unknown: not an error
        await Store.RevokeLeaseAsync(123456789);
        Assert.Equal(before + 1, Store.Revision);

        var unknown = await Refused(() => Store.TxnAsync(new TxnRequest([], [Op.Put("l/4", V("d"), lease.Id)])).AsTask());
        Assert.Equal(StoreErrorCode.LeaseNotFound, unknown.Code);
        Assert.Equal(StoreErrorCode.LeaseNotFound, (await Refused(() => Store.KeepAliveAsync(987654321).AsTask())).Code);
        Assert.Empty((await Store.GetAsync("l/4")).Kvs);
        // A key moved to another lease leaves the first one.
        await PutAsync("l/5", "e", other.Id);
        await PutAsync("l/5", "e2");
        await Store.RevokeLeaseAsync(other.Id);
        Assert.Equal("e2", S((await Store.GetAsync("l/5")).Kvs[0]));
    }

    [Fact]
    public async Task A_lease_not_kept_alive_expires_and_takes_its_keys()
    {
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(10));
        await PutAsync("e/1", "v", lease.Id);
        await PutAsync("e/2", "v", lease.Id);
        if (!await PassTimeAsync(TimeSpan.FromSeconds(6))) Assert.Skip("this backend's clock cannot be moved");
        Assert.Equal(TimeSpan.FromSeconds(10), await Store.KeepAliveAsync(lease.Id));
        await PassTimeAsync(TimeSpan.FromSeconds(6)); // 12 s since the grant, 6 since the renewal
        Assert.Equal(2, (await Store.RangeAsync("e/")).Kvs.Count);
        long before = Store.Revision;
        var deletes = Task.Run(() => TakeAsync(Store.WatchAsync("e/", before + 1, Timeout()), 2));
        await PassTimeAsync(TimeSpan.FromSeconds(5)); // 11 s since the renewal
        Assert.Empty((await Store.RangeAsync("e/")).Kvs);
        Assert.Equal(before + 1, Store.Revision);
        Assert.All(await deletes, e => Assert.Equal((WatchEventType.Delete, before + 1), (e.Type, e.Revision)));
        Assert.Equal(StoreErrorCode.LeaseNotFound, (await Refused(() => Store.KeepAliveAsync(lease.Id).AsTask())).Code);
        Assert.Equal(StoreErrorCode.LeaseNotFound, (await Refused(() => PutAsync("e/3", "v", lease.Id))).Code);
    }

    [Fact]
    public async Task Eight_concurrent_compare_and_swap_incrementers_lose_no_update()
    {
        await PutAsync("counter", "0");
        const int Workers = 8, Each = 20;
        int conflicts = 0;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < Each;)
            {
                var kv = (await Store.GetAsync("counter")).Kvs[0];
                int next = int.Parse(S(kv)) + 1;
                var r = await Store.TxnAsync(new TxnRequest([Compare.ModifiedAt("counter", kv.ModRevision)], [Op.Put("counter", V($"{next}"))]));
                if (r.Succeeded) i++;
                else Interlocked.Increment(ref conflicts);
            }
        })));
        var final = (await Store.GetAsync("counter")).Kvs[0];
        Assert.Equal($"{Workers * Each}", S(final));
        Assert.Equal(Workers * Each + 1, final.Version);
    }

    [Fact]
    public async Task A_repeated_request_id_is_applied_once()
    {
        await PutAsync("n", "0");
        var twice = await TxnTwiceAsync(new TxnRequest([Compare.ModifiedAt("n", 2)], [Op.Put("n", V("1")), Op.Put("log/1", V("x"))]));
        if (twice is not { } t) { Assert.Skip("this backend does not expose request ids"); return; }
        Assert.True(t.First.Succeeded);
        Assert.Equal(t.First.Succeeded, t.Second.Succeeded); // the first answer again, not a failed compare
        Assert.Equal(t.First.Revision, t.Second.Revision);
        Assert.Equal(3, Store.Revision);
        Assert.Equal(2, (await Store.GetAsync("n")).Kvs[0].Version);
    }

    [Fact]
    public async Task A_restart_keeps_keys_revision_and_leases()
    {
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(60));
        await PutAsync("r/1", "one", lease.Id);
        await Store.TxnAsync(new TxnRequest([], [Op.Put("r/2", V("two")), Op.Put("r/3", V("three"))]));
        await Store.TxnAsync(new TxnRequest([], [Op.Delete("r/3")]));
        long revision = Store.Revision;
        var restarted = RestartAsync(Store);
        if (restarted is null) { Assert.Skip("this backend cannot restart"); return; }
        Store = await restarted;
        Assert.Equal(revision, Store.Revision);
        Assert.Equal(["r/1", "r/2"], (await Store.RangeAsync("r/")).Kvs.Select(kv => kv.Key));
        Assert.Equal(lease.Id, (await Store.GetAsync("r/1")).Kvs[0].Lease);
        Assert.Equal(TimeSpan.FromSeconds(60), await Store.KeepAliveAsync(lease.Id));
        Assert.Equal(revision + 1, (await PutAsync("r/4", "four")).Revision);
        await Store.RevokeLeaseAsync(lease.Id);
        Assert.Empty((await Store.GetAsync("r/1")).Kvs);
    }

    [Fact]
    public async Task A_disposed_store_ends_watches_and_refuses_calls_as_closed()
    {
        var watching = Task.Run(async () =>
        {
            await foreach (var _ in Store.WatchAsync("", Store.Revision + 1, Timeout())) { }
        });
        await Task.Delay(50);
        await Store.DisposeAsync();
        var ended = await Assert.ThrowsAsync<StoreException>(() => watching.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StoreErrorCode.Closed, ended.Code);
        Assert.Equal(StoreErrorCode.Closed, (await Refused(() => PutAsync("k", "v"))).Code);
        Assert.Equal(StoreErrorCode.Closed, (await Refused(() => Store.GetAsync("k").AsTask())).Code);
        Assert.Equal(StoreErrorCode.Closed, (await Refused(() => Store.GrantLeaseAsync(TimeSpan.FromSeconds(5)).AsTask())).Code);
        await Store.DisposeAsync(); // twice is fine
    }
}
