namespace UserOverlay.Router;

/// <summary>
/// A bounded pool of pinned <see cref="PacketBuffer"/>s. Pipeline workers rent their batch once at
/// start and return it at stop, so the per-packet path never touches the pool. Thread-safe.
/// </summary>
public class PacketBufferPool
{
    private readonly System.Collections.Concurrent.ConcurrentBag<PacketBuffer> _free = new();
    private readonly int _bufferSize;
    private int _outstanding;
    private int _created;

    /// <summary>Creates a pool of buffers of <paramref name="bufferSize"/> bytes, at most <paramref name="maxBuffers"/> alive at once.</summary>
    public PacketBufferPool(int bufferSize = Constants.PacketBufferSize, int maxBuffers = Constants.MaxPooledBuffers)
    {
        _bufferSize = bufferSize;
        MaxBuffers = maxBuffers;
    }

    /// <summary>The most buffers this pool will have alive at once.</summary>
    public int MaxBuffers { get; }

    /// <summary>Buffers rented and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Rents a buffer; throws when <see cref="MaxBuffers"/> are already out.</summary>
    public virtual PacketBuffer Rent()
    {
        if (!_free.TryTake(out var b))
        {
            if (Interlocked.Increment(ref _created) > MaxBuffers)
            {
                Interlocked.Decrement(ref _created);
                throw new InvalidOperationException($"packet buffer pool exhausted ({MaxBuffers} buffers out)");
            }
            b = new PacketBuffer(_bufferSize);
        }
        Interlocked.Increment(ref _outstanding);
        return b;
    }

    /// <summary>Returns a buffer rented from this pool.</summary>
    public virtual void Return(PacketBuffer buffer)
    {
        Interlocked.Decrement(ref _outstanding);
        _free.Add(buffer);
    }
}
