namespace UserOverlay.Crypto;

/// <summary>
/// The record keeping both stores share: reservations by SA record id, the epoch floor, and the rule that a
/// reservation only ever grows. A derived store makes each change durable in <see cref="Persist"/>, which runs under
/// the store's lock after every call that changed something.
/// </summary>
public abstract class SequenceStoreBase : ISequenceStore
{
    private readonly Lock _lock = new();

    /// <summary>The reservations: record id → (epoch, reserved through). Touch only under the lock (in <see cref="Persist"/> or the constructor).</summary>
    protected Dictionary<string, (long Epoch, ulong Through)> Records { get; } = new(StringComparer.Ordinal);

    /// <summary>The pruned-epoch floor (<see cref="long.MinValue"/> until the first prune).</summary>
    protected long FloorValue { get; set; } = long.MinValue;

    /// <summary>Number of changes made durable so far (each <see cref="Persist"/> call).</summary>
    public int Writes { get; private set; }

    /// <inheritdoc/>
    public long Floor
    {
        get
        {
            lock (_lock)
                return FloorValue;
        }
    }

    /// <inheritdoc/>
    public ulong GetReserved(string recordId)
    {
        lock (_lock)
            return Records.TryGetValue(recordId, out var r) ? r.Through : 0;
    }

    /// <inheritdoc/>
    public void Reserve(string recordId, long epoch, ulong through) => ReserveMany([new SequenceReservation(recordId, epoch, through)]);

    /// <inheritdoc/>
    public void ReserveMany(IReadOnlyList<SequenceReservation> reservations)
    {
        lock (_lock)
        {
            bool changed = false;
            foreach (SequenceReservation r in reservations)
            {
                if (Records.TryGetValue(r.RecordId, out var old) && old.Through >= r.Through)
                    continue;
                Records[r.RecordId] = (r.Epoch, r.Through);
                changed = true;
            }
            if (changed)
                Commit();
        }
    }

    /// <inheritdoc/>
    public void Prune(long minEpoch)
    {
        lock (_lock)
        {
            bool changed = minEpoch > FloorValue;
            FloorValue = Math.Max(FloorValue, minEpoch);
            foreach (var (id, r) in Records.ToArray())
            {
                if (r.Epoch < minEpoch)
                {
                    Records.Remove(id);
                    changed = true;
                }
            }
            if (changed)
                Commit();
        }
    }

    private void Commit()
    {
        Writes++;
        Persist();
    }

    /// <summary>Makes the current <see cref="Records"/> and <see cref="FloorValue"/> durable before returning; called under the lock.</summary>
    protected abstract void Persist();
}
