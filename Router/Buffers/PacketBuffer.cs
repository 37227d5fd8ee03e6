using System.Runtime.CompilerServices;

namespace UserOverlay.Router;

/// <summary>
/// One packet's memory: a pinned array of <see cref="Constants.PacketBufferSize"/> bytes,
/// allocated once, with <see cref="Constants.Headroom"/> bytes in front of the frame so outer
/// headers are written in place (as the kernel's skb does) and decapsulation only moves an offset.
/// A buffer belongs to one pipeline stage at a time; it is not thread-safe.
/// </summary>
public sealed unsafe class PacketBuffer
{
    private readonly byte[] _array;

    /// <summary>Creates a pinned buffer of <paramref name="size"/> bytes (default <see cref="Constants.PacketBufferSize"/>).</summary>
    public PacketBuffer(int size = Constants.PacketBufferSize)
    {
        _array = GC.AllocateUninitializedArray<byte>(size, pinned: true);
        Pointer = (byte*)Unsafe.AsPointer(ref _array[0]);
        Capacity = size;
    }

    /// <summary>The whole buffer.</summary>
    public Span<byte> Span
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _array;
    }

    /// <summary>The underlying pinned array (for APIs that take arrays or Memory).</summary>
    public byte[] Array => _array;

    /// <summary>Address of byte 0; stable for the buffer's life because the array is pinned.</summary>
    public byte* Pointer { get; }

    /// <summary>
    /// Capacity in bytes. A field, not the array's length: a receive prepares a whole batch of buffers, and reading
    /// each array's header would touch one more page per buffer (their arrays are tens of KB apart) — pages the
    /// packet itself never uses, each a TLB miss after every context switch and, where the host tracks accessed
    /// bits expensively (see README, "Where the round-trip time goes"), a few microseconds more.
    /// </summary>
    public int Capacity { get; }
}

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
