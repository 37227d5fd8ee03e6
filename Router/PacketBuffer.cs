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
