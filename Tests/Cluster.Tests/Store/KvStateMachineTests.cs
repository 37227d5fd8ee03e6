using System.Text;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>The state machine alone, fed commands by index as a log would.</summary>
public class KvStateMachineTests
{
    private static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    private static byte[] Put(Guid id, string key, string value, long lease = 0) =>
        KvCommandCodec.Encode(new TxnCommand(id, new TxnRequest([], [Op.Put(key, V(value), lease)])));

    private static byte[] Snapshot(KvStateMachine m)
    {
        using var s = new MemoryStream();
        m.WriteSnapshot(s);
        return s.ToArray();
    }

    [Fact]
    public async Task A_malformed_command_is_answered_with_a_failure_and_changes_nothing()
    {
        var m = new KvStateMachine();
        var id = Guid.NewGuid();
        var wait = m.Expect(id);
        var bad = Put(id, "k", "v");
        bad[^1] ^= 0xff;
        byte[] truncated = [.. bad.AsSpan(0, bad.Length - 3)];
        m.Apply(1, truncated);
        var result = await wait.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(StoreErrorCode.InvalidArgument, result.Error);
        Assert.Contains("index 1", result.Message);
        m.Apply(2, []);
        m.Apply(3, [1, 2, 3]);
        Assert.Equal(3, m.MalformedCommands);
        Assert.Equal(1, m.Revision);
        Assert.Equal(3, m.AppliedIndex);
    }

    [Fact]
    public async Task A_repeated_request_id_gets_the_first_result_even_after_a_snapshot()
    {
        var m = new KvStateMachine();
        var id = Guid.NewGuid();
        var first = m.Expect(id);
        m.Apply(1, Put(id, "k", "one"));
        Assert.Equal(2, (await first).Txn!.Revision);
        var copy = new KvStateMachine();
        copy.ReadSnapshot(new MemoryStream(Snapshot(m)));
        foreach (var machine in new[] { m, copy })
        {
            var again = machine.Expect(id); // remembered: answered at once
            Assert.True(again.IsCompleted);
            machine.Forget(id);
            machine.Apply(2, Put(id, "k", "two"));
            Assert.Equal(2, machine.Revision);
            Assert.Equal("one", Encoding.UTF8.GetString(machine.Get("k").Kvs[0].Value));
            Assert.Equal(1, machine.DuplicateRequests);
        }
    }

    [Fact]
    public void The_dedup_table_evicts_the_oldest_first()
    {
        var m = new KvStateMachine(new KvStateMachineOptions { DedupEntries = 2 });
        Guid[] ids = [Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid()];
        for (int i = 0; i < 3; i++) m.Apply(i + 1, Put(ids[i], "k", $"v{i}"));
        Assert.Equal(4, m.Revision);
        m.Apply(4, Put(ids[0], "k", "again")); // evicted: applied as new
        Assert.Equal(5, m.Revision);
        m.Apply(5, Put(ids[2], "k", "again")); // kept: not applied
        Assert.Equal(5, m.Revision);
    }

    [Fact]
    public void Same_commands_same_state_and_a_snapshot_round_trips_exactly()
    {
        var a = new KvStateMachine();
        var b = new KvStateMachine();
        var commands = new List<byte[]>
        {
            KvCommandCodec.Encode(new LeaseGrantCommand(Guid.NewGuid(), 30)),
            Put(Guid.NewGuid(), "n/1", "x", lease: 1),
            Put(Guid.NewGuid(), "n/2", "y"),
            KvCommandCodec.Encode(new TxnCommand(Guid.NewGuid(), new TxnRequest([Compare.Exists("n/2")], [Op.Delete("n/2"), Op.Put("m", V("z"))]))),
            Put(Guid.NewGuid(), "n/3", "w", lease: 99), // unknown lease: refused
        };
        for (int i = 0; i < commands.Count; i++)
        {
            a.Apply(i + 1, commands[i]);
            b.Apply(i + 1, commands[i]);
        }
        Assert.Equal(Snapshot(a), Snapshot(b));
        Assert.Equal(4, a.Revision);
        Assert.Equal([(1L, 30L)], a.Leases());
        var c = new KvStateMachine();
        c.ReadSnapshot(new MemoryStream(Snapshot(a)));
        Assert.Equal(Snapshot(a)[..21], Snapshot(c)[..21]); // magic, version, index, revision
        Assert.Equal(Snapshot(a)[29..], Snapshot(c)[29..]); // keys, leases, dedup (the compact revision is the snapshot's revision + 1)
        Assert.Equal(5, c.CompactRevision);
        var d = new KvStateMachine();
        d.ReadSnapshot(new MemoryStream(Snapshot(c)));
        Assert.Equal(Snapshot(c), Snapshot(d));
        Assert.Equal(5, c.AppliedIndex);
        c.Apply(5, commands[4]); // an index already in the snapshot is ignored
        c.Apply(6, KvCommandCodec.Encode(new LeaseRevokeCommand(Guid.NewGuid(), 1)));
        Assert.Equal(["m"], c.Range("").Kvs.Select(kv => kv.Key));
        Assert.Equal(5, c.Revision);

        var corrupt = Snapshot(a);
        corrupt[^1] ^= 1;
        Array.Resize(ref corrupt, corrupt.Length - 2);
        Assert.Throws<InvalidDataException>(() => c.ReadSnapshot(new MemoryStream(corrupt)));
        Assert.Equal(5, c.Revision); // unchanged
    }

    [Fact]
    public void History_is_bounded_and_older_revisions_are_compacted()
    {
        var m = new KvStateMachine(new KvStateMachineOptions { HistoryRevisions = 5 });
        for (int i = 1; i <= 20; i++) m.Apply(i, Put(Guid.NewGuid(), "k", $"{i}"));
        Assert.Equal(21, m.Revision);
        Assert.Equal(17, m.CompactRevision);
        var e = Assert.Throws<StoreException>(() => m.ReadHistory("", 16, 100));
        Assert.Equal((StoreErrorCode.Compacted, 17), (e.Code, e.CompactRevision));
        var read = m.ReadHistory("", 17, 100);
        Assert.Equal([17L, 18, 19, 20, 21], read.Events.Select(ev => ev.Revision));
        Assert.Equal(22, read.Next);
        Assert.NotNull(read.Changed);
    }
}
