using System.Numerics;
using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Forwarding;

/// <summary>
/// A map from 64-bit keys to entries, read on every packet and written rarely. Readers take the
/// current immutable snapshot (one volatile read, open addressing, no locks, no allocation);
/// writers serialise on a lock, build a new snapshot and publish it. Entries are reference
/// objects so a reader may update an entry's mutable "last seen" stamp without republishing.
/// Thread-safety: any number of concurrent readers and writers.
/// </summary>
internal sealed class CopyOnWriteTable<T> where T : class
{
    private readonly Lock _writeLock = new();
    private Snapshot _current = Snapshot.Empty;

    /// <summary>Number of entries in the current snapshot.</summary>
    public int Count => Volatile.Read(ref _current).Count;

    /// <summary>Looks a key up in the current snapshot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ulong key, out T value) => Volatile.Read(ref _current).TryGet(key, out value);

    /// <summary>The current snapshot's entries (allocates; for status and tests).</summary>
    public List<KeyValuePair<ulong, T>> ToList() => Volatile.Read(ref _current).ToList();

    /// <summary>Adds or replaces one entry.</summary>
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

    /// <summary>
    /// Adds an entry unless <paramref name="keep"/> says the existing one stays. Returns the entry
    /// that is in the table afterwards.
    /// </summary>
    public T SetUnless(ulong key, T value, Func<T, bool> keep)
    {
        lock (_writeLock)
        {
            var s = _current;
            if (s.TryGet(key, out var existing) && keep(existing)) return existing;
            var next = s.CloneWithCapacity(s.Count + 1);
            next.Insert(key, value);
            Volatile.Write(ref _current, next);
            return value;
        }
    }

    /// <summary>Removes one entry; false when absent.</summary>
    public bool Remove(ulong key) => RemoveWhere((k, _) => k == key) > 0;

    /// <summary>Removes every entry matching <paramref name="predicate"/>; returns how many.</summary>
    public int RemoveWhere(Func<ulong, T, bool> predicate)
    {
        lock (_writeLock)
        {
            var s = _current;
            int removed = 0;
            foreach (var kv in s.ToList())
                if (predicate(kv.Key, kv.Value)) removed++;
            if (removed == 0) return 0;
            var next = Snapshot.Create(s.Count - removed);
            foreach (var kv in s.ToList())
                if (!predicate(kv.Key, kv.Value)) next.Insert(kv.Key, kv.Value);
            Volatile.Write(ref _current, next);
            return removed;
        }
    }

    /// <summary>Applies several changes under one lock and one publication (bulk loads, gossip sync).</summary>
    public void Update(Action<Snapshot.Builder> change)
    {
        lock (_writeLock)
        {
            var builder = new Snapshot.Builder(_current);
            change(builder);
            if (builder.Changed) Volatile.Write(ref _current, builder.Build());
        }
    }

    /// <summary>An immutable open-addressing table (linear probing, power-of-two capacity, load ≤ 1/2).</summary>
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

        /// <summary>Inserts or replaces; only while the snapshot is being built (before publication).</summary>
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

        /// <summary>Collects changes against a snapshot and builds the next one.</summary>
        public sealed class Builder(Snapshot basis)
        {
            private readonly Dictionary<ulong, T?> _changes = new();
            public bool Changed => _changes.Count > 0;

            public bool TryGet(ulong key, out T value)
            {
                if (_changes.TryGetValue(key, out var c)) { value = c!; return c is not null; }
                return basis.TryGet(key, out value);
            }

            public void Set(ulong key, T value) => _changes[key] = value;
            public void Remove(ulong key) => _changes[key] = null;
            public IEnumerable<KeyValuePair<ulong, T>> Current()
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
