namespace UserOverlay.Router.Forwarding;

/// <summary>Adds learned FDB entries within the per-network bound. Off the common path (only on a new or moved MAC).</summary>
internal static class Learner
{
    public static void Learn(NetworkState net, FdbEntry entry, TrafficCounters c)
    {
        if (Volatile.Read(ref net.LearnedCount) >= Constants.MaxLearnedEntriesPerNetwork)
        {
            c.Drops[(int)DropReason.LearningTableFull]++;
            return;
        }
        bool added = false, set = false;
        net.Fdb.Update(b =>
        {
            bool existed = b.TryGet(entry.Mac, out var old);
            if (existed && old.Source is EntrySource.Static or EntrySource.Local or EntrySource.Gossip) return; // never override configuration or gossip
            b.Set(entry.Mac, entry);
            set = true;
            added = !existed;
        });
        if (added) Interlocked.Increment(ref net.LearnedCount);
        if (set && entry.Port is { } port) Interlocked.Increment(ref port.LearnedEntries); // so detaching it knows to look for them
    }

    public static void LearnNeighbor(NetworkState net, uint ip, ulong mac, long now, TrafficCounters c)
    {
        if (net.Neighbors.TryGet(ip, out var n))
        {
            if (n.Mac == mac) { if (n.Source == EntrySource.Learned) Volatile.Write(ref n.LastSeen, now); return; }
            if (n.Source != EntrySource.Learned) return;
        }
        if (net.Neighbors.Count >= Constants.MaxLearnedEntriesPerNetwork) { c.Drops[(int)DropReason.LearningTableFull]++; return; }
        net.Neighbors.SetUnless(ip, new NeighborEntry(ip, mac, EntrySource.Learned, now), old => old.Source != EntrySource.Learned);
    }
}
