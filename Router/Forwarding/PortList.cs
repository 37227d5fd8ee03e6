namespace UserOverlay.Router.Forwarding;

/// <summary>
/// A network's local ports as the data path reads them: <see cref="Current"/> is one volatile read of an immutable
/// <see cref="View"/> (an array and the count of its slots in use), iterated without a lock or an allocation; a slot
/// may be null (a port detached), which readers skip.
/// <para>
/// Writers (attach and detach, serialised by the caller's lock) are amortized O(1): an add writes the next free slot
/// of the current array — beyond the count any published view covers, so no reader sees it half made — and publishes
/// a new view with the count one larger (a release, so the slot's write is visible to whoever reads the view). A removal
/// nulls the port's slot in place: a reader sees the port or null, and a port it still saw stays usable until the
/// router's quiesce handshake (<see cref="OverlayRouter.DetachEndpoint"/>) has let every worker finish its round.
/// Only when the array is full, or fewer than a quarter of its used slots still hold a port, are the ports copied into
/// a new array of twice their number; a view's array is never written below its count after that, so old views stay
/// valid. Each copy of n ports follows at least n/2 adds or removals since the last one.
/// </para>
/// </summary>
internal sealed class PortList
{
    /// <summary>An immutable view: slots 0 to <see cref="Count"/> − 1 of <see cref="Items"/> (some may be null).</summary>
    internal sealed class View(LocalPort?[] items, int count)
    {
        public readonly LocalPort?[] Items = items;
        public readonly int Count = count;
    }

    private static readonly View Empty = new([], 0);
    private View _view = Empty;
    private int _live;

    /// <summary>The current view (one volatile read); iterate <c>Items[0..Count]</c> and skip nulls.</summary>
    public View Current => Volatile.Read(ref _view);

    /// <summary>Ports in the list.</summary>
    public int Live => Volatile.Read(ref _live);

    /// <summary>The ports, in slot order (allocates; for status and tests).</summary>
    public List<LocalPort> ToList()
    {
        var v = Current;
        var list = new List<LocalPort>(v.Count);
        for (int i = 0; i < v.Count; i++) if (Volatile.Read(ref v.Items[i]) is { } p) list.Add(p);
        return list;
    }

    /// <summary>Adds a port (caller holds the writers' lock).</summary>
    public void Add(LocalPort port)
    {
        var v = _view;
        LocalPort?[] items = v.Items;
        int count = v.Count;
        if (count == items.Length)
        {
            items = Compacted(v, Math.Max(4, 2 * (_live + 1)), out count);
        }
        port.ListSlot = count;
        items[count] = port;
        Volatile.Write(ref _live, _live + 1);
        Volatile.Write(ref _view, new View(items, count + 1));
    }

    /// <summary>Removes a port; false when it is not in the list (caller holds the writers' lock).</summary>
    public bool Remove(LocalPort port)
    {
        var v = _view;
        int slot = port.ListSlot;
        if ((uint)slot >= (uint)v.Count || v.Items[slot] != port) return false;
        Volatile.Write(ref v.Items[slot], null);
        port.ListSlot = -1;
        int live = _live - 1;
        Volatile.Write(ref _live, live);
        if (v.Count > 8 && live < v.Count / 4)
        {
            var items = Compacted(v, Math.Max(4, 2 * live), out int count);
            Volatile.Write(ref _view, new View(items, count));
        }
        return true;
    }

    /// <summary>A new array of <paramref name="capacity"/> slots holding the view's ports from slot 0, their slots updated.</summary>
    private static LocalPort?[] Compacted(View v, int capacity, out int count)
    {
        var items = new LocalPort?[capacity];
        count = 0;
        for (int i = 0; i < v.Count; i++)
        {
            if (v.Items[i] is not { } p) continue;
            p.ListSlot = count;
            items[count++] = p;
        }
        return items;
    }
}
