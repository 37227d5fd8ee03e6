using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router.Tests;

/// <summary>The copy-on-write table against a naive reference model (a Dictionary) over random operations.</summary>
public class FdbModelTests
{
    private sealed class Box(int v) { public readonly int V = v; }

    [Theory]
    [InlineData(1, 20_000, 64)]     // dense: few keys, many overwrites and removals
    [InlineData(2, 20_000, 5_000)]  // sparse: table grows large
    [InlineData(3, 5_000, 1 << 20)] // mostly misses
    public void Matches_reference_model(int seed, int operations, int keySpace)
    {
        var rnd = new Random(seed);
        var table = new ForwardingTable<Box>();
        var model = new Dictionary<ulong, int>();
        // Keys look like MACs: 48-bit values with clustered prefixes, the case a weak hash gets wrong.
        ulong Key() => 0x0200_0000_0000UL | (ulong)rnd.Next(keySpace) * (rnd.Next(2) == 0 ? 1UL : 0x1_0000UL);

        for (int i = 0; i < operations; i++)
        {
            ulong k = Key();
            switch (rnd.Next(10))
            {
                case < 4:
                    int v = rnd.Next();
                    table.Set(k, new Box(v));
                    model[k] = v;
                    break;
                case 4:
                    Assert.Equal(model.Remove(k), table.Remove(k));
                    break;
                case 5 when i % 97 == 0:
                    int mod = rnd.Next(2, 5);
                    int removed = table.RemoveWhere((key, b) => b.V % mod == 0);
                    int expected = 0;
                    foreach (var kv in model.Where(kv => kv.Value % mod == 0).ToList()) { model.Remove(kv.Key); expected++; }
                    Assert.Equal(expected, removed);
                    break;
                case 6:
                    table.Update(b =>
                    {
                        for (int j = 0; j < 5; j++)
                        {
                            ulong kk = Key();
                            if (rnd.Next(3) == 0) { b.Remove(kk); model.Remove(kk); }
                            else { int vv = rnd.Next(); b.Set(kk, new Box(vv)); model[kk] = vv; }
                        }
                    });
                    break;
                default:
                    bool found = table.TryGet(k, out var got);
                    Assert.Equal(model.TryGetValue(k, out int want), found);
                    if (found) Assert.Equal(want, got.V);
                    break;
            }
            if (i % 1000 == 0)
            {
                Assert.Equal(model.Count, table.Count);
                var all = table.ToList().ToDictionary(kv => kv.Key, kv => kv.Value.V);
                Assert.Equal(model.OrderBy(kv => kv.Key), all.OrderBy(kv => kv.Key));
            }
        }
        foreach (var kv in model)
        {
            Assert.True(table.TryGet(kv.Key, out var b));
            Assert.Equal(kv.Value, b.V);
        }
    }

    [Fact]
    public void Readers_see_consistent_snapshots_while_writers_publish()
    {
        var table = new ForwardingTable<Box>();
        for (ulong k = 1; k <= 1000; k++) table.Set(k, new Box((int)k));
        // Work counts, not a time window: on a loaded machine a thread may not run at all for a second.
        // Dedicated threads (not the thread pool, which other tests keep busy); the reader makes 200 passes
        // over the keys, and counts only those made while the writer had already published.
        const int Passes = 200;
        long misses = 0, writes = 0;
        int passesWhileWriting = 0;
        bool done = false;
        var writer = new Thread(() =>
        {
            ulong next = 1_000_000;
            while (!Volatile.Read(ref done))
            {
                table.Set(next, new Box(1));
                table.Remove(next - 10);
                next++;
                Interlocked.Increment(ref writes);
            }
        })
        { IsBackground = true };
        var reader = new Thread(() =>
        {
            while (passesWhileWriting < Passes)
            {
                bool writing = Interlocked.Read(ref writes) > 0;
                for (ulong k = 1; k <= 1000; k++)
                {
                    // Keys 1..1000 are never removed: every read must find them, with the right value.
                    if (!table.TryGet(k, out var b) || b.V != (int)k) Interlocked.Increment(ref misses);
                }
                if (writing) passesWhileWriting++;
            }
            Volatile.Write(ref done, true);
        })
        { IsBackground = true };
        writer.Start();
        reader.Start();
        Assert.True(reader.Join(TimeSpan.FromMinutes(2)), "reader did not finish 200 passes in 2 minutes");
        Assert.True(writer.Join(TimeSpan.FromSeconds(30)), "writer did not stop");
        Assert.Equal(Passes, passesWhileWriting);
        Assert.True(Interlocked.Read(ref writes) > 0);
        Assert.Equal(0, misses);
    }
}
