using System.Numerics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using UserOverlay.Router.Forwarding;

namespace UserOverlay.Bench.Router;

/// <summary>
/// The forwarding table (<see cref="ForwardingTable{T}"/>, written in place) against the
/// clone-per-write table it replaced (<see cref="CloneOnWriteTableBaseline{T}"/>), in the Ratio
/// column: lookups, which must stay as fast and allocate 0 B, and adding entries one at a time as
/// attaching endpoints, learning and gossip do, which used to cost O(N²). Both tables are filled the
/// way the router fills them, one Set per entry.
/// Run: dotnet run -c Release --project Bench -- --filter '*ForwardingTable*'
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class ForwardingTableLookupBenchmarks
{
    private const int Lookups = 256;
    private sealed class Entry(ulong v) { public readonly ulong V = v; }
    private readonly ForwardingTable<Entry> _table = new();
    private readonly CloneOnWriteTableBaseline<Entry> _baseline = new();
    private ulong[] _hits = null!;
    private ulong[] _misses = null!;

    [Params(16, 4096)]
    public int Entries;

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(1);
        var keys = new ulong[Entries];
        for (int i = 0; i < Entries; i++)
        {
            keys[i] = 0x0200_0000_0000UL | (ulong)rnd.NextInt64(1L << 40); // MAC-like
            _table.Set(keys[i], new Entry(keys[i]));
            _baseline.Set(keys[i], new Entry(keys[i]));
        }
        _hits = Enumerable.Range(0, Lookups).Select(i => keys[(i * 7919) % keys.Length]).ToArray();
        _misses = Enumerable.Range(0, Lookups).Select(i => 0x0600_0000_0000UL | (uint)i).ToArray();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Lookups, Description = "TryGet hit, clone-on-write (old)"), BenchmarkCategory("Hit")]
    public int HitBaseline()
    {
        int n = 0;
        foreach (ulong k in _hits) if (_baseline.TryGet(k, out _)) n++;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Lookups, Description = "TryGet hit, in place (new)"), BenchmarkCategory("Hit")]
    public int Hit()
    {
        int n = 0;
        foreach (ulong k in _hits) if (_table.TryGet(k, out _)) n++;
        return n;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Lookups, Description = "TryGet miss, clone-on-write (old)"), BenchmarkCategory("Miss")]
    public int MissBaseline()
    {
        int n = 0;
        foreach (ulong k in _misses) if (_baseline.TryGet(k, out _)) n++;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Lookups, Description = "TryGet miss, in place (new)"), BenchmarkCategory("Miss")]
    public int Miss()
    {
        int n = 0;
        foreach (ulong k in _misses) if (_table.TryGet(k, out _)) n++;
        return n;
    }
}

/// <summary>
/// Filling an empty table with N entries one at a time, through Set (attach, static entries) and
/// through a one-entry Update (learning and gossip). Per invocation: the whole fill; the Allocated
/// column is the bytes for all N writes.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class ForwardingTableInsertBenchmarks
{
    private sealed class Entry(ulong v) { public readonly ulong V = v; }
    private Entry[] _entries = null!;

    [Params(1000, 4096)]
    public int Entries;

    [GlobalSetup]
    public void Setup() => _entries = Enumerable.Range(0, Entries).Select(i => new Entry(0x0200_0000_0000UL + (ulong)i * 0x1_0000UL)).ToArray();

    [Benchmark(Baseline = true, Description = "Set x N, clone-on-write (old)"), BenchmarkCategory("Set")]
    public int SetBaseline()
    {
        var t = new CloneOnWriteTableBaseline<Entry>();
        foreach (var e in _entries) t.Set(e.V, e);
        return t.Count;
    }

    [Benchmark(Description = "Set x N, in place (new)"), BenchmarkCategory("Set")]
    public int Set()
    {
        var t = new ForwardingTable<Entry>();
        foreach (var e in _entries) t.Set(e.V, e);
        return t.Count;
    }

    [Benchmark(Baseline = true, Description = "Update(one Set) x N, clone-on-write (old)"), BenchmarkCategory("Update")]
    public int UpdateBaseline()
    {
        var t = new CloneOnWriteTableBaseline<Entry>();
        foreach (var e in _entries) t.Update(b => b.Set(e.V, e));
        return t.Count;
    }

    [Benchmark(Description = "Update(one Set) x N, in place (new)"), BenchmarkCategory("Update")]
    public int Update()
    {
        var t = new ForwardingTable<Entry>();
        foreach (var e in _entries) t.Update(b => b.Set(e.V, e));
        return t.Count;
    }
}

/// <summary>
/// The table as it was before writes went in place (commit c6fdafe, Router/Forwarding/ForwardingTable.cs),
/// kept here only as the benchmarks' baseline: every Set clones the whole snapshot, every Update
/// rebuilds it. Set, TryGet, Count and Update only; not for use outside Bench.
/// </summary>
internal sealed class CloneOnWriteTableBaseline<T> where T : class
{
    private readonly Lock _writeLock = new();
    private Snapshot _current = Snapshot.Empty;

    public int Count => Volatile.Read(ref _current).Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ulong key, out T value) => Volatile.Read(ref _current).TryGet(key, out value);

    public void Set(ulong key, T value)
    {
        lock (_writeLock)
        {
            var s = _current;
            var next = s.CloneWithCapacity(s.Count + 1);
            next.Insert(key, value);
            Volatile.Write(ref _current, next);
        }
    }

    public void Update(Action<Snapshot.Builder> change)
    {
        lock (_writeLock)
        {
            var builder = new Snapshot.Builder(_current);
            change(builder);
            if (builder.Changed) Volatile.Write(ref _current, builder.Build());
        }
    }

    internal sealed class Snapshot
    {
        public static readonly Snapshot Empty = Create(0);
        private readonly ulong[] _keys;
        private readonly T?[] _values;
        private readonly int _shift;

        private Snapshot(int capacity)
        {
            _keys = new ulong[capacity];
            _values = new T?[capacity];
            _shift = 64 - BitOperations.Log2((uint)capacity);
        }

        public int Count { get; private set; }

        public static Snapshot Create(int entries) =>
            new((int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, entries * 2)));

        public Snapshot CloneWithCapacity(int entries)
        {
            var next = Create(Math.Max(entries, Count));
            for (int i = 0; i < _keys.Length; i++)
                if (_values[i] is { } v) next.Insert(_keys[i], v);
            return next;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Slot(ulong key) => (int)((key * 0x9E37_79B9_7F4A_7C15UL) >> _shift);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TryGet(ulong key, out T value)
        {
            ulong[] keys = _keys;
            T?[] values = _values;
            int mask = keys.Length - 1;
            for (int i = Slot(key); ; i = (i + 1) & mask)
            {
                T? v = values[i];
                if (v is null) { value = null!; return false; }
                if (keys[i] == key) { value = v; return true; }
            }
        }

        internal void Insert(ulong key, T value)
        {
            int mask = _keys.Length - 1;
            for (int i = Slot(key); ; i = (i + 1) & mask)
            {
                if (_values[i] is null) { _keys[i] = key; _values[i] = value; Count++; return; }
                if (_keys[i] == key) { _values[i] = value; return; }
            }
        }

        public List<KeyValuePair<ulong, T>> ToList()
        {
            var list = new List<KeyValuePair<ulong, T>>(Count);
            for (int i = 0; i < _keys.Length; i++)
                if (_values[i] is { } v) list.Add(new(_keys[i], v));
            return list;
        }

        public sealed class Builder(Snapshot basis)
        {
            private readonly Dictionary<ulong, T?> _changes = new();
            public bool Changed => _changes.Count > 0;
            public void Set(ulong key, T value) => _changes[key] = value;

            private IEnumerable<KeyValuePair<ulong, T>> Current()
            {
                foreach (var kv in basis.ToList())
                    if (!_changes.ContainsKey(kv.Key)) yield return kv;
                foreach (var kv in _changes)
                    if (kv.Value is not null) yield return new(kv.Key, kv.Value);
            }

            public Snapshot Build()
            {
                var list = Current().ToList();
                var next = Create(list.Count);
                foreach (var kv in list) next.Insert(kv.Key, kv.Value);
                return next;
            }
        }
    }
}
