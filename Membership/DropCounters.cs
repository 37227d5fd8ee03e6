namespace UserOverlay.Membership;

/// <summary>Per-reason drop counters. Thread-safe; reads are a snapshot of each counter.</summary>
public sealed class DropCounters
{
    private readonly long[] _counts = new long[Enum.GetValues<DropReason>().Length];

    /// <summary>Count for one reason.</summary>
    public long this[DropReason reason] => Interlocked.Read(ref _counts[(int)reason]);

    /// <summary>Total over all reasons.</summary>
    public long Total { get { long t = 0; for (int i = 0; i < _counts.Length; i++) t += Interlocked.Read(ref _counts[i]); return t; } }

    /// <summary>Non-zero counters.</summary>
    public IReadOnlyDictionary<DropReason, long> Snapshot()
    {
        var d = new Dictionary<DropReason, long>();
        foreach (var r in Enum.GetValues<DropReason>())
            if (this[r] is > 0 and var c) d[r] = c;
        return d;
    }

    internal void Increment(DropReason reason) => Interlocked.Increment(ref _counts[(int)reason]);

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", Snapshot().Select(kv => $"{kv.Key}={kv.Value}"));
}
