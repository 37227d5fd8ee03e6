using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UserOverlay.Router.Forwarding;

/// <summary>
/// A map from 64-bit keys to entries, read on every packet and written rarely but one entry at a
/// time (attach, learning, gossip). Readers take the current slot array with one volatile read and
/// probe it without locks or allocation. Writers serialise on a lock and change that array in
/// place; only growth (and the occasional clean-up of deleted slots) copies it, once, into a new
/// array that is then published. Set and Remove are amortized O(1).
/// Entries are reference objects so a reader may update an entry's mutable "last seen" stamp
/// without republishing: the table stores the caller's object, and a rebuild moves that same object.
/// Thread-safety: any number of concurrent readers and writers. Callbacks (predicates, the Update
/// delegate) run under the write lock and must not write to the same table.
/// </summary>
/// <remarks>
/// The name is historical: writes used to clone the whole table. What a reader sees now:
/// <list type="bullet">
/// <item>Per key, linearizable: a lookup returns the value before or after a concurrent write, never
/// a key paired with another key's value, and a key present throughout is always found.</item>
/// <item>Across keys, no atomicity: a reader may see some of the changes of one
/// <see cref="Update"/> or <see cref="RemoveWhere"/> before the others.</item>
/// </list>
/// Layout: open addressing with linear probing in a power-of-two array of references to immutable
/// <see cref="Entry"/> nodes (key and value together, so one reference read gives a consistent
/// pair). A slot is null (never used: a probe stops), a live entry, or a tombstone (an entry whose
/// value is null: a probe goes on). Slots only ever go null → entry, entry → entry of the same key
/// (replace), entry → tombstone (remove) and tombstone → entry (re-use); none of these turns a
/// non-null slot back into null, so the run of non-null slots from a key's home to the key never
/// breaks while a reader walks it. Deletion is therefore by tombstone, not backward shift (shifting
/// moves a live entry behind a reader mid-probe, which would then miss it). Live entries plus
/// tombstones stay at or under half the array; when an insert would pass that, the live entries
/// are copied into a new array sized for 1/6–1/3 load (so it usually doubles, drops the tombstones,
/// or shrinks) and the new array is published. An array is never written again once replaced, so a
/// reader still on it sees the table as it was at that moment.
/// Memory ordering (.NET memory model, docs/design/specs/Memory-model.md in dotnet/runtime):
/// an <see cref="Entry"/>'s fields are written by its constructor before the writer stores the
/// reference with <see cref="Volatile.Write{T}(ref T, T)"/> (a release), so the fields are visible
/// to any thread that sees the reference. The same holds for a new array's contents, written before
/// the array is published with a release. The reader uses one acquire (<c>Volatile.Read</c>
/// of <c>_slots</c>); its later loads (a slot, then the entry's fields) are each through a
/// reference obtained by the load before, and the model orders data-dependent reads, so none needs
/// a barrier of its own.
/// </remarks>
internal sealed class ForwardingTable<T> where T : class
{
    private const int MinCapacity = 8;
    private static readonly Entry Tombstone = new(0, null);

    private readonly Lock _writeLock = new();
    private Entry?[] _slots = new Entry?[MinCapacity]; // published with Volatile.Write; readers read it once
    private int _count;        // live entries (written under the lock, read anywhere)
    private int _used;         // live entries plus tombstones in _slots (writers only)
    private bool _inCallback;  // a caller's delegate is running under the lock (writers only)

    /// <summary>Number of entries.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Slots in the current array (for tests: shows growth, shrinking and tombstone clean-up).</summary>
    internal int Capacity => Volatile.Read(ref _slots).Length;

    /// <summary>Looks a key up. Lock-free, allocation-free; safe against any concurrent write.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ulong key, out T value)
    {
        Entry?[] slots = Volatile.Read(ref _slots);
        ref Entry? first = ref MemoryMarshal.GetArrayDataReference(slots);
        int mask = slots.Length - 1;
        for (int i = Home(key, slots.Length); ; i = (i + 1) & mask)
        {
            Entry? e = Unsafe.Add(ref first, i); // i is masked to the array: no bounds check needed
            if (e is null) break;
            if (e.Key == key && e.Value is { } v) { value = v; return true; } // a tombstone's value is null: go on
        }
        value = null!;
        return false;
    }

    /// <summary>The entries, as one consistent set (takes the write lock, allocates; for status and tests).</summary>
    public List<KeyValuePair<ulong, T>> ToList()
    {
        lock (_writeLock)
        {
            var list = new List<KeyValuePair<ulong, T>>(_count);
            foreach (var e in _slots)
                if (e?.Value is { } v) list.Add(new(e.Key, v));
            return list;
        }
    }

    /// <summary>Adds or replaces one entry. Amortized O(1).</summary>
    public void Set(ulong key, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            ThrowIfInCallback();
            SetLocked(key, value);
        }
    }

    /// <summary>
    /// Adds an entry unless <paramref name="keep"/> says the existing one stays. Returns the entry
    /// that is in the table afterwards. Amortized O(1).
    /// </summary>
    public T SetUnless(ulong key, T value, Func<T, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            ThrowIfInCallback();
            int i = Find(_slots, key);
            if (i >= 0)
            {
                T existing = _slots[i]!.Value!;
                _inCallback = true;
                try { if (keep(existing)) return existing; }
                finally { _inCallback = false; }
            }
            SetLocked(key, value);
            return value;
        }
    }

    /// <summary>Removes one entry; false when absent. Amortized O(1).</summary>
    public bool Remove(ulong key)
    {
        lock (_writeLock)
        {
            ThrowIfInCallback();
            int i = Find(_slots, key);
            if (i < 0) return false;
            RemoveAt(i);
            ShrinkIfSparse();
            return true;
        }
    }

    /// <summary>
    /// Removes every entry matching <paramref name="predicate"/>; returns how many. One pass over the
    /// table; the predicate sees every entry before any is removed, so if it throws nothing is removed.
    /// </summary>
    public int RemoveWhere(Func<ulong, T, bool> predicate)
    {
        lock (_writeLock)
        {
            ThrowIfInCallback();
            var slots = _slots;
            List<int>? doomed = null;
            _inCallback = true;
            try
            {
                for (int i = 0; i < slots.Length; i++)
                {
                    var e = slots[i];
                    if (e?.Value is { } v && predicate(e.Key, v)) (doomed ??= []).Add(i);
                }
            }
            finally { _inCallback = false; }
            if (doomed is null) return 0;
            foreach (int i in doomed) RemoveAt(i);
            ShrinkIfSparse();
            return doomed.Count;
        }
    }

    /// <summary>
    /// Applies several changes under one lock. The delegate stages them on a <see cref="Builder"/>
    /// (nothing is applied if it throws); they are then written in place, each key going straight
    /// from its old to its new value (a key removed and set again is never absent), at amortized
    /// O(1) per changed key. Readers may see some keys changed before others.
    /// </summary>
    public void Update(Action<Builder> change)
    {
        lock (_writeLock)
        {
            ThrowIfInCallback();
            var builder = new Builder(this);
            _inCallback = true;
            try { change(builder); }
            finally { _inCallback = false; }
            foreach (var (key, value) in builder.Changes)
            {
                if (value is not null) { SetLocked(key, value); continue; }
                int i = Find(_slots, key);
                if (i >= 0) RemoveAt(i);
            }
            ShrinkIfSparse();
        }
    }

    /// <summary>Changes staged by <see cref="Update"/>, read back through <see cref="TryGet"/> and <see cref="Current"/>. Valid only inside the delegate.</summary>
    internal sealed class Builder
    {
        private readonly ForwardingTable<T> _table;
        private readonly Dictionary<ulong, T?> _changes = []; // null: removed
        internal Builder(ForwardingTable<T> table) => _table = table;

        internal Dictionary<ulong, T?> Changes => _changes;

        /// <summary>Whether anything was staged.</summary>
        public bool Changed => _changes.Count > 0;

        /// <summary>Looks a key up in the table with the staged changes applied.</summary>
        public bool TryGet(ulong key, out T value)
        {
            if (_changes.TryGetValue(key, out var c)) { value = c!; return c is not null; }
            int i = Find(_table._slots, key);
            value = i >= 0 ? _table._slots[i]!.Value! : null!;
            return i >= 0;
        }

        public void Set(ulong key, T value)
        {
            ArgumentNullException.ThrowIfNull(value);
            _changes[key] = value;
        }

        public void Remove(ulong key) => _changes[key] = null;

        /// <summary>The entries with the staged changes applied (lazily; take a list before staging more).</summary>
        public IEnumerable<KeyValuePair<ulong, T>> Current()
        {
            foreach (var e in _table._slots)
                if (e?.Value is { } v && !_changes.ContainsKey(e.Key)) yield return new(e.Key, v);
            foreach (var kv in _changes)
                if (kv.Value is not null) yield return new(kv.Key, kv.Value);
        }
    }

    /// <summary>An immutable key/value pair; a tombstone has a null value.</summary>
    private sealed class Entry(ulong key, T? value)
    {
        public readonly ulong Key = key;
        public readonly T? Value = value;
    }

    /// <summary>Fibonacci hashing: the top bits of key × 2⁶⁴/φ, so clustered MACs and addresses spread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Home(ulong key, int capacity) =>
        // capacity = 2^k; 64 − k = LeadingZeroCount((uint)capacity) + 33.
        (int)((key * 0x9E37_79B9_7F4A_7C15UL) >> (BitOperations.LeadingZeroCount((uint)capacity) + 33));

    /// <summary>The slot holding <paramref name="key"/>'s live entry, or −1.</summary>
    private static int Find(Entry?[] slots, ulong key)
    {
        int mask = slots.Length - 1;
        for (int i = Home(key, slots.Length); ; i = (i + 1) & mask)
        {
            var e = slots[i];
            if (e is null) return -1;
            if (e.Key == key && e.Value is not null) return i;
        }
    }

    private void SetLocked(ulong key, T value)
    {
        var slots = _slots;
        int mask = slots.Length - 1;
        int free = -1;
        int i = Home(key, slots.Length);
        for (; ; i = (i + 1) & mask)
        {
            var e = slots[i];
            if (e is null) break;
            if (e.Value is null) { if (free < 0) free = i; continue; }
            if (e.Key == key) { Volatile.Write(ref slots[i], new Entry(key, value)); return; } // replace: old or new, never neither
        }
        // Absent (the probe reached a null slot). Re-use the first tombstone on the way, else take the null slot.
        if (free < 0)
        {
            if ((_used + 1) * 2 > slots.Length)
            {
                Rebuild(_count + 1);
                slots = _slots;
                free = FreeSlot(slots, key);
            }
            else
            {
                free = i;
            }
            _used++;
        }
        Volatile.Write(ref slots[free], new Entry(key, value));
        Volatile.Write(ref _count, _count + 1);
    }

    private void RemoveAt(int i)
    {
        Volatile.Write(ref _slots[i], Tombstone); // the slot stays non-null, so probes for other keys go on past it
        Volatile.Write(ref _count, _count - 1);
    }

    /// <summary>After removals: a table whose live entries fill under 1/16 of it gets a smaller array.</summary>
    private void ShrinkIfSparse()
    {
        if (_slots.Length > MinCapacity && _count * 16 < _slots.Length) Rebuild(_count);
    }

    /// <summary>
    /// Copies the live entries into a new array sized for <paramref name="entries"/> at 1/6–1/3 load
    /// (no tombstones), then publishes it. At least capacity/6 inserts separate two rebuilds that
    /// grow it and capacity/16 removals two that shrink it, so the copy is amortized O(1) per write.
    /// </summary>
    private void Rebuild(int entries)
    {
        var next = new Entry?[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(MinCapacity, entries * 3))];
        int live = 0;
        foreach (var e in _slots)
        {
            if (e?.Value is null) continue;
            next[FreeSlot(next, e.Key)] = e; // not yet visible to anyone: plain stores
            live++;
        }
        Volatile.Write(ref _slots, next); // release: the contents above are visible to whoever reads the new array
        _used = live;
    }

    /// <summary>The first null slot on <paramref name="key"/>'s probe path (the array holds no tombstones and no such key).</summary>
    private static int FreeSlot(Entry?[] slots, ulong key)
    {
        int mask = slots.Length - 1;
        int i = Home(key, slots.Length);
        while (slots[i] is not null) i = (i + 1) & mask;
        return i;
    }

    private void ThrowIfInCallback()
    {
        if (_inCallback) ThrowReentrant();
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowReentrant() =>
        throw new InvalidOperationException("A table callback (predicate or Update delegate) must not write to the same table.");
}
