using System.Text;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Store;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Replication;

/// <summary>A machine that records what it is fed: (index, command) in order, and snapshots that record.</summary>
internal sealed class RecordingMachine : IReplicatedStateMachine
{
    private readonly Lock _lock = new();
    private readonly List<(long Index, string Command)> _applied = [];
    public int Snapshots;

    public List<(long Index, string Command)> Applied { get { lock (_lock) return [.. _applied]; } }

    public void Apply(long index, ReadOnlySpan<byte> command)
    {
        lock (_lock) _applied.Add((index, Encoding.UTF8.GetString(command)));
    }

    public void WriteSnapshot(Stream destination)
    {
        using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
        lock (_lock)
        {
            w.Write(_applied.Count);
            foreach (var (i, c) in _applied)
            {
                w.Write(i);
                w.Write(c);
            }
        }
    }

    public void ReadSnapshot(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        lock (_lock)
        {
            _applied.Clear();
            int n = r.ReadInt32();
            for (int i = 0; i < n; i++) _applied.Add((r.ReadInt64(), r.ReadString()));
            Snapshots++;
        }
    }
}

public sealed class LocalLogTests : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uo-log-" + Guid.NewGuid().ToString("N"));

    public ValueTask DisposeAsync()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        return ValueTask.CompletedTask;
    }

    private static byte[] C(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Every_entry_is_applied_once_in_order_across_restarts_and_snapshots()
    {
        var expected = new List<string>();
        for (int run = 0; run < 3; run++)
        {
            var machine = new RecordingMachine();
            await using var log = new LocalLog(_dir, new LocalLogOptions { SnapshotEvery = 7 });
            await log.StartAsync(machine);
            Assert.Equal(expected, machine.Applied.Select(a => a.Command));
            Assert.Equal(Enumerable.Range(1, expected.Count).Select(i => (long)i), machine.Applied.Select(a => a.Index));
            Assert.Equal(run > 0 ? 1 : 0, machine.Snapshots);
            // Concurrent proposals: each returns after its own entry was applied.
            await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(async () =>
            {
                string c = $"run{run}-{i}";
                await log.ProposeAsync(C(c));
                Assert.Contains(machine.Applied, a => a.Command == c);
            })));
            var applied = machine.Applied;
            Assert.Equal(expected.Count + 10, applied.Count);
            expected = [.. applied.Select(a => a.Command)];
            Assert.Equal(expected.Count, log.Index);
            Assert.InRange(log.SnapshotIndex, log.Index - 7 - 9, log.Index); // one every 7 entries (or a batch's end after that)
        }
    }

    [Fact]
    public async Task A_memory_log_is_always_leader_and_refuses_after_disposal()
    {
        var log = new LocalLog(null);
        var changes = new List<bool>();
        log.LeadershipChanged += changes.Add;
        var machine = new RecordingMachine();
        var early = await Assert.ThrowsAsync<StoreException>(() => log.ProposeAsync(C("x")).AsTask());
        Assert.Equal(StoreErrorCode.Unavailable, early.Code);
        await log.StartAsync(machine);
        Assert.True(log.IsLeader);
        await log.ProposeAsync(C("a"));
        Assert.Equal([(1L, "a")], machine.Applied);
        await log.DisposeAsync();
        Assert.False(log.IsLeader);
        Assert.Equal([true, false], changes);
        var late = await Assert.ThrowsAsync<StoreException>(() => log.ProposeAsync(C("b")).AsTask());
        Assert.Equal(StoreErrorCode.Closed, late.Code);
        Assert.Equal(StoreErrorCode.TooLarge, (await Assert.ThrowsAsync<StoreException>(async () =>
        {
            await using var small = new LocalLog(null, new LocalLogOptions { MaxEntryBytes = 4 });
            await small.StartAsync(new RecordingMachine());
            await small.ProposeAsync(C("12345"));
        })).Code);
    }
}

public sealed class InMemoryLogGroupTests
{
    private static byte[] C(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Every_member_applies_the_same_entries_in_the_same_order()
    {
        await using var group = InMemoryLogGroup.Create(3);
        var machines = new[] { new RecordingMachine(), new RecordingMachine(), new RecordingMachine() };
        for (int i = 0; i < 3; i++) await group.Members[i].StartAsync(machines[i]);
        await Task.WhenAll(Enumerable.Range(0, 30).Select(i => Task.Run(async () =>
        {
            var member = group.Members[i % 3];
            await member.ProposeAsync(C($"{i}"));
        })));
        await Eventually.True(() => machines.All(m => m.Applied.Count == 30), TimeSpan.FromSeconds(10), "every member applied 30 entries");
        Assert.Equal(machines[0].Applied, machines[1].Applied);
        Assert.Equal(machines[0].Applied, machines[2].Applied);
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), machines[0].Applied.Select(a => a.Index));
        Assert.Equal(30, machines[0].Applied.Select(a => a.Command).Distinct().Count());
    }

    [Fact]
    public async Task Leadership_moves_with_events_on_the_old_and_the_new_leader()
    {
        await using var group = InMemoryLogGroup.Create(3);
        var events = Enumerable.Range(0, 3).Select(_ => new List<bool>()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            int n = i;
            group.Members[i].LeadershipChanged += b => { lock (events[n]) events[n].Add(b); };
            await group.Members[i].StartAsync(new RecordingMachine());
        }
        Assert.True(group.Members[0].IsLeader);
        group.SetLeader(2);
        Assert.Equal([true, false], events[0]);
        Assert.Empty(events[1]);
        Assert.Equal([true], events[2]);
        Assert.True(group.Members[2].IsLeader);
        Assert.False(group.Members[0].IsLeader);
        Assert.Equal("memory-group:2", group.Members[1].Leader);
    }

    [Fact]
    public async Task An_isolated_leader_blocks_every_proposal_until_leadership_moves()
    {
        await using var group = InMemoryLogGroup.Create(3, new InMemoryLogGroupOptions { ProposeTimeout = TimeSpan.FromMilliseconds(200) });
        var machines = new[] { new RecordingMachine(), new RecordingMachine(), new RecordingMachine() };
        for (int i = 0; i < 3; i++) await group.Members[i].StartAsync(machines[i]);
        group.Isolate(0);
        var e = await Assert.ThrowsAsync<StoreException>(() => group.Members[1].ProposeAsync(C("x")).AsTask());
        Assert.Equal(StoreErrorCode.Unavailable, e.Code);
        group.SetLeader(1);
        await group.Members[2].ProposeAsync(C("y"));
        Assert.Empty(machines[0].Applied);
        group.Heal(0);
        await Eventually.True(() => machines[0].Applied.Count == 1, TimeSpan.FromSeconds(10), "the healed member caught up");
        Assert.Equal((1L, "y"), machines[0].Applied[0]);
    }
}
