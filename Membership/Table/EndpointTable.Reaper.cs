// Tombstone reaping: deleted records, network leaves and held-back events of owners that never joined.

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    private async Task ReapLoopAsync()
    {
        var ct = _stop.Token;
        try
        {
            using var timer = new PeriodicTimer(_opt.ReapInterval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
                Reap();
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Drops tombstones (deleted records, network leaves) older than TombstoneTtl.</summary>
    internal int Reap()
    {
        long cutoff = Now - (long)_opt.TombstoneTtl.TotalMilliseconds;
        int n = 0;
        lock (_lock)
        {
            foreach (var key in _endpoints.Where(e => e.Value.Record.Deleted && e.Value.StoredAt < cutoff).Select(e => e.Key).ToList()) { _endpoints.Remove(key); n++; }
            foreach (var key in _attachments.Where(a => a.Value.Att.Left && a.Value.StoredAt < cutoff).Select(a => a.Key).ToList()) { _attachments.Remove(key); n++; }
            long pendingCutoff = Now - (long)_opt.PendingTtl.TotalMilliseconds;
            foreach (var node in _pending.Where(p => p.Value.Since < pendingCutoff).Select(p => p.Key).ToList()) _pending.Remove(node);
        }
        return n;
    }

    /// <summary>Number of tombstones held (deleted records and network leaves).</summary>
    public int TombstoneCount
    {
        get { lock (_lock) return _endpoints.Values.Count(e => e.Record.Deleted) + _attachments.Values.Count(a => a.Att.Left); }
    }
}
