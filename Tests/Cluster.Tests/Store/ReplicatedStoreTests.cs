using System.Buffers.Binary;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Store;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>The conformance suite's hooks for <see cref="ReplicatedClusterStore"/>: a fake lease clock and request ids.</summary>
public abstract class ReplicatedStoreConformance : StoreConformanceTests
{
    internal ManualTime Time { get; } = new();

    protected ReplicatedStoreOptions Options => new()
    {
        Time = Time,
        Machine = new KvStateMachineOptions { HistoryRevisions = HistoryKept },
    };

    /// <summary>The store whose member counts lease time now.</summary>
    protected virtual ReplicatedClusterStore LeaderStore => (ReplicatedClusterStore)Store;

    protected async Task<ReplicatedClusterStore> StartedAsync(IReplicatedLog log)
    {
        var store = new ReplicatedClusterStore(log, Options);
        await store.StartAsync();
        return store;
    }

    protected override async Task<bool> PassTimeAsync(TimeSpan time)
    {
        Time.Advance(time);
        await LeaderStore.ExpireLeasesOnceAsync();
        return true;
    }

    protected override async Task<(TxnResult First, TxnResult Second)?> TxnTwiceAsync(TxnRequest request)
    {
        var store = (ReplicatedClusterStore)Store;
        var command = new TxnCommand(Guid.NewGuid(), request);
        var first = await store.ProposeAsync(command);
        var second = await store.ProposeAsync(command);
        Assert.Equal(1, store.Machine.DuplicateRequests);
        return (first.Txn!, second.Txn!);
    }
}

/// <summary>The suite over a <see cref="LocalLog"/> in memory.</summary>
public sealed class LocalMemoryStoreTests : ReplicatedStoreConformance
{
    protected override async Task<IClusterStore> CreateAsync() => await StartedAsync(new LocalLog(null));

    [Fact]
    public void The_location_says_memory() => Assert.Equal("memory", Store.Location);

    [Fact]
    public async Task The_leaders_background_clock_expires_leases_on_its_own()
    {
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(3));
        await PutAsync("bg", "v", lease.Id);
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Single((await Store.GetAsync("bg")).Kvs);
        // No explicit expiry round here: the store's own loop (a timer on the same clock) must notice.
        await Eventually.True(async () =>
        {
            Time.Advance(TimeSpan.FromMilliseconds(250));
            return (await Store.GetAsync("bg")).Kvs.Count == 0;
        }, TimeSpan.FromSeconds(10), "the lease's key removed by the background expiry");
        Assert.Equal(StoreErrorCode.LeaseNotFound, (await Refused(() => Store.KeepAliveAsync(lease.Id).AsTask())).Code);
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_the_history_is_compacted_and_writers_never_wait_for_it()
    {
        await using var e = Store.WatchAsync("s/", 2, Timeout()).GetAsyncEnumerator();
        await PutAsync("s/k", "0");
        Assert.True(await e.MoveNextAsync());
        Assert.Equal(2, e.Current.Revision);
        for (int i = 1; i <= HistoryKept * 2; i++) await PutAsync("s/k", $"{i}"); // the watcher reads nothing meanwhile
        var behind = await Assert.ThrowsAsync<StoreException>(async () =>
        {
            while (await e.MoveNextAsync()) { }
        });
        Assert.Equal(StoreErrorCode.Compacted, behind.Code);
        Assert.Equal(Store.Revision - HistoryKept + 1, behind.CompactRevision);
    }
}

/// <summary>The suite over a durable <see cref="LocalLog"/> in a temporary directory, with restarts and damaged files.</summary>
public sealed class LocalDiskStoreTests : ReplicatedStoreConformance
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uo-store-" + Guid.NewGuid().ToString("N"));

    private LocalLogOptions LogOptions { get; set; } = new();

    protected override async Task<IClusterStore> CreateAsync() => await StartedAsync(new LocalLog(_dir, LogOptions));

    protected override async Task<IClusterStore>? RestartAsync(IClusterStore store)
    {
        await store.DisposeAsync();
        return await CreateAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string Wal => Path.Combine(_dir, "wal");

    private LocalLog Log => (LocalLog)((ReplicatedClusterStore)Store).Log;

    [Fact]
    public async Task A_torn_last_entry_is_cut_off_and_the_store_starts()
    {
        for (int i = 0; i < 5; i++) await PutAsync($"t/{i}", $"{i}");
        long revision = Store.Revision;
        await Store.DisposeAsync();
        long good = new FileInfo(Wal).Length;
        // A crash mid-write: a frame header that promises more than was written.
        var torn = new byte[16 + 10];
        BinaryPrimitives.WriteUInt32LittleEndian(torn, 100);
        BinaryPrimitives.WriteInt64LittleEndian(torn.AsSpan(8), 99);
        await using (var f = new FileStream(Wal, FileMode.Append)) f.Write(torn);
        Store = await CreateAsync();
        Assert.Equal(1, Log.TornEntriesRecovered);
        Assert.Contains("cut short", Log.Recovery);
        Assert.Equal(good, new FileInfo(Wal).Length);
        Assert.Equal(revision, Store.Revision);
        Assert.Equal(5, (await Store.RangeAsync("t/")).Kvs.Count);
        await PutAsync("t/5", "5");
        Store = await RestartAsync(Store)!;
        Assert.Equal(0, Log.TornEntriesRecovered);
        Assert.Equal(revision + 1, Store.Revision);

        // A last frame whose bytes were not all written (bad CRC, nothing after it) is torn too.
        await Store.DisposeAsync();
        var bytes = await File.ReadAllBytesAsync(Wal);
        bytes[^1] ^= 0x55;
        await File.WriteAllBytesAsync(Wal, bytes);
        Store = await CreateAsync();
        Assert.Equal(1, Log.TornEntriesRecovered);
        Assert.Equal(revision, Store.Revision); // the last put is gone: it was never acknowledged durable in this story
        Assert.Empty((await Store.GetAsync("t/5")).Kvs);
    }

    [Fact]
    public async Task A_damaged_entry_in_the_middle_stops_the_start_with_a_clear_message()
    {
        for (int i = 0; i < 5; i++) await PutAsync($"c/{i}", $"{i}");
        await Store.DisposeAsync();
        var bytes = await File.ReadAllBytesAsync(Wal);
        bytes[16 + 5] ^= 0x01; // inside the first frame's command
        await File.WriteAllBytesAsync(Wal, bytes);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => CreateAsync());
        Assert.Contains(Wal, e.Message);
        Assert.Contains("offset 0", e.Message);
        Assert.Contains("CRC", e.Message);
        Assert.Equal(bytes.Length, new FileInfo(Wal).Length); // nothing cut
        Store = null!;
    }

    [Fact]
    public async Task A_second_log_on_the_same_directory_is_refused()
    {
        var second = new LocalLog(_dir);
        var e = await Assert.ThrowsAsync<IOException>(() => second.StartAsync(new KvStateMachine()).AsTask());
        Assert.Contains("in use", e.Message);
        await second.DisposeAsync();
        await PutAsync("still", "works");
    }

    [Fact]
    public async Task Another_process_cannot_take_the_directory_while_the_log_holds_it()
    {
        string flock = Requires.Tool("flock", "util-linux");
        string lockFile = Path.Combine(_dir, "lock");
        var held = Shell.Run(flock, ["--nonblock", "--exclusive", lockFile, "true"], TimeSpan.FromSeconds(10));
        Assert.NotEqual(0, held.ExitCode);
        await Store.DisposeAsync();
        var free = Shell.Run(flock, ["--nonblock", "--exclusive", lockFile, "true"], TimeSpan.FromSeconds(10));
        Assert.Equal(0, free.ExitCode);
    }

    [Fact]
    public async Task Snapshots_empty_the_wal_and_a_restart_rebuilds_from_snapshot_and_wal()
    {
        await Store.DisposeAsync();
        LogOptions = new LocalLogOptions { SnapshotEvery = 4 };
        Store = await CreateAsync();
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 9; i++) await PutAsync($"s/{i}", $"{i}", i == 0 ? lease.Id : 0);
        Assert.Equal(8, Log.SnapshotIndex);
        long revision = Store.Revision;
        await Store.DisposeAsync();
        Assert.True(File.Exists(Path.Combine(_dir, "snapshot")));
        Assert.Equal([9L, 10L], await WalIndexesAsync()); // the snapshot holds the rest
        Store = await CreateAsync();
        Assert.Equal(revision, Store.Revision);
        Assert.Equal(10, Log.Index);
        Assert.Equal(9, (await Store.RangeAsync("s/")).Kvs.Count);
        await Store.RevokeLeaseAsync(lease.Id);
        Assert.Empty((await Store.GetAsync("s/0")).Kvs);

        // A damaged snapshot stops the start.
        await Store.DisposeAsync();
        var snap = Path.Combine(_dir, "snapshot");
        var bytes = await File.ReadAllBytesAsync(snap);
        bytes[^1] ^= 1;
        await File.WriteAllBytesAsync(snap, bytes);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => CreateAsync());
        Assert.Contains("snapshot", e.Message);
        Store = null!;
    }

    private async Task<List<long>> WalIndexesAsync()
    {
        var bytes = await File.ReadAllBytesAsync(Wal);
        var indexes = new List<long>();
        for (int at = 0; at + 16 <= bytes.Length; at += 16 + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)))
            indexes.Add(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 8)));
        return indexes;
    }

    [Fact]
    public async Task Concurrent_proposals_are_all_durable()
    {
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => PutAsync($"p/{i}", $"{i}"))));
        Assert.InRange(Log.Fsyncs, 1, 50);
        Store = await RestartAsync(Store)!;
        Assert.Equal(50, (await Store.RangeAsync("p/")).Kvs.Count);
        Assert.Equal(51, Store.Revision);
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value() =>
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
}

/// <summary>The suite over three members of one <see cref="InMemoryLogGroup"/> (tests talk to member 0), and what a group adds.</summary>
public sealed class LogGroupStoreTests : ReplicatedStoreConformance
{
    private InMemoryLogGroup _group = null!;
    private ReplicatedClusterStore[] _stores = [];

    protected override async Task<IClusterStore> CreateAsync()
    {
        _group = InMemoryLogGroup.Create(3, new InMemoryLogGroupOptions { ProposeTimeout = TimeSpan.FromMilliseconds(300) });
        _stores = await Task.WhenAll(_group.Members.Select(StartedAsync));
        return _stores[0];
    }

    protected override ReplicatedClusterStore LeaderStore => _stores[_group.LeaderIndex];

    /// <summary>Restarts member 0: a fresh machine rebuilt from the whole log.</summary>
    protected override async Task<IClusterStore>? RestartAsync(IClusterStore store)
    {
        await store.DisposeAsync();
        _stores[0] = await StartedAsync(await _group.RestartAsync(0));
        return _stores[0];
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var s in _stores) await s.DisposeAsync();
    }

    private async Task ConvergedAsync()
    {
        bool Converged()
        {
            long committed = _group.CommittedIndex;
            return _stores.Select((_, i) => _group.AppliedIndex(i)).All(a => a == committed) && _stores.All(s => s.Revision == _stores[0].Revision);
        }
        await Eventually.True(Converged, TimeSpan.FromSeconds(10), "every member applied every entry, at one revision");
    }

    [Fact]
    public async Task A_write_is_read_back_by_its_writer_at_once_and_the_others_converge()
    {
        for (int i = 0; i < 20; i++)
        {
            var r = await PutAsync("k", $"{i}");
            Assert.Equal($"{i}", S((await Store.GetAsync("k")).Kvs[0])); // read-your-write on the writer
            Assert.True(Store.Revision >= r.Revision);
        }
        await ConvergedAsync();
        foreach (var s in _stores) Assert.Equal("19", S((await s.GetAsync("k")).Kvs[0]));
        // A follower's write is forwarded and read back by the follower.
        var f = await _stores[2].TxnAsync(new TxnRequest([Compare.Exists("k")], [Op.Put("from-2", V("x"))]));
        Assert.True(f.Succeeded);
        Assert.Single((await _stores[2].GetAsync("from-2")).Kvs);
        await ConvergedAsync();
    }

    [Fact]
    public async Task A_sync_lets_a_follower_read_every_write_made_before_it()
    {
        for (int i = 0; i < 10; i++)
        {
            var w = await PutAsync("s", $"{i}");
            long revision = await _stores[1 + i % 2].SyncAsync();
            Assert.True(revision >= w.Revision);
            Assert.Equal($"{i}", S((await _stores[1 + i % 2].GetAsync("s")).Kvs[0]));
        }
    }

    [Fact]
    public async Task A_new_leader_gives_every_lease_its_full_ttl_and_then_expires_them()
    {
        var lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(10));
        await PutAsync("l/k", "v", lease.Id);
        await ConvergedAsync();
        Assert.Equal(1, _stores[0].LeasesTimed);
        Assert.Equal(0, _stores[1].LeasesTimed); // followers keep no deadlines
        Time.Advance(TimeSpan.FromSeconds(8));
        _group.SetLeader(1);
        Assert.Equal(0, _stores[0].LeasesTimed);
        await PassTimeAsync(TimeSpan.FromSeconds(8)); // 16 s since the grant, 8 since the new leader started counting
        Assert.Single((await _stores[1].GetAsync("l/k")).Kvs);
        // A keep-alive sent through a follower renews it on the leader.
        await _stores[2].KeepAliveAsync(lease.Id);
        await ConvergedAsync(); // the leader has applied it too
        await PassTimeAsync(TimeSpan.FromSeconds(9));
        Assert.Single((await _stores[1].GetAsync("l/k")).Kvs);
        await PassTimeAsync(TimeSpan.FromSeconds(2));
        Assert.Empty((await _stores[1].GetAsync("l/k")).Kvs);
        await ConvergedAsync();
        Assert.Empty((await _stores[0].GetAsync("l/k")).Kvs);
    }

    [Fact]
    public async Task An_isolated_member_is_unavailable_and_catches_up_when_healed()
    {
        await PutAsync("a", "1");
        _group.Isolate(2);
        var e = await Refused(() => _stores[2].TxnAsync(new TxnRequest([], [Op.Put("b", V("2"))])).AsTask());
        Assert.Equal(StoreErrorCode.Unavailable, e.Code);
        for (int i = 0; i < 10; i++) await _stores[i % 2].TxnAsync(new TxnRequest([], [Op.Put($"m/{i}", V("x"))]));
        await Task.Delay(50);
        Assert.Empty((await _stores[2].RangeAsync("m/")).Kvs); // it saw none of them
        Assert.True(_stores[2].Revision < _stores[0].Revision);
        _group.Heal(2);
        await ConvergedAsync();
        Assert.Equal(10, (await _stores[2].RangeAsync("m/")).Kvs.Count);
        Assert.Empty((await _stores[2].GetAsync("b")).Kvs); // the refused write was never applied
        await _stores[2].TxnAsync(new TxnRequest([], [Op.Put("b", V("2"))]));
        await ConvergedAsync();
    }

    [Fact]
    public async Task Concurrent_writers_on_every_member_lose_no_update()
    {
        await PutAsync("counter", "0");
        await ConvergedAsync();
        await Task.WhenAll(_stores.Select(s => Task.Run(async () =>
        {
            for (int i = 0; i < 15;)
            {
                var kv = (await s.GetAsync("counter")).Kvs[0];
                var r = await s.TxnAsync(new TxnRequest([Compare.ModifiedAt("counter", kv.ModRevision)], [Op.Put("counter", V($"{int.Parse(S(kv)) + 1}"))]));
                if (r.Succeeded) i++;
            }
        })));
        await ConvergedAsync();
        foreach (var s in _stores) Assert.Equal("45", S((await s.GetAsync("counter")).Kvs[0]));
    }
}
