using System.Buffers.Binary;

namespace UserOverlay.Router.Capture;

/// <summary>
/// A bounded single-producer, single-consumer ring of captured frames in fixed slots of <see cref="SnapLength"/> bytes:
/// the producer is one pipeline worker, the consumer the capture's reader. The producer never waits: a full ring drops
/// the frame and counts it (<see cref="Dropped"/>). Allocated once, when the capture starts; nothing per frame.
/// </summary>
internal sealed class CaptureRing
{
    private readonly byte[] _data;
    private readonly int[] _lengths;
    private readonly int[] _original;
    private readonly long[] _stamps;
    private readonly byte[] _directions;
    private readonly int _mask;
    private long _head; // next slot the producer fills (written by the producer only)
    private long _tail; // next slot the consumer reads (written by the consumer only)
    /// <summary>Frames dropped because the ring was full (written by the producer).</summary>
    public long Dropped;
    /// <summary>Frames put into the ring (written by the producer).</summary>
    public long Captured;

    public CaptureRing(int slots, int snapLength)
    {
        if (slots <= 0 || (slots & (slots - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(slots), slots, "a power of two");
        SnapLength = snapLength;
        _data = GC.AllocateUninitializedArray<byte>(slots * snapLength);
        _lengths = new int[slots];
        _original = new int[slots];
        _stamps = new long[slots];
        _directions = new byte[slots];
        _mask = slots - 1;
    }

    public int SnapLength { get; }

    /// <summary>Producer: copies <paramref name="prefix"/> then <paramref name="payload"/> (cut at the snap length) into the next slot.</summary>
    public void Write(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> payload, CaptureDirection direction, long stamp)
    {
        long head = _head;
        if (head - Volatile.Read(ref _tail) > _mask) { Dropped++; return; }
        int slot = (int)(head & _mask);
        Span<byte> dest = _data.AsSpan(slot * SnapLength, SnapLength);
        int total = prefix.Length + payload.Length;
        int p = Math.Min(prefix.Length, SnapLength);
        prefix[..p].CopyTo(dest);
        int rest = Math.Min(payload.Length, SnapLength - p);
        payload[..rest].CopyTo(dest[p..]);
        _lengths[slot] = p + rest;
        _original[slot] = total;
        _stamps[slot] = stamp;
        _directions[slot] = (byte)direction;
        Captured++;
        Volatile.Write(ref _head, head + 1); // publishes the slot
    }

    /// <summary>Consumer: the stamp of the oldest frame waiting, or false when the ring is empty.</summary>
    public bool TryPeek(out long stamp)
    {
        long tail = _tail;
        if (tail == Volatile.Read(ref _head)) { stamp = 0; return false; }
        stamp = _stamps[(int)(tail & _mask)];
        return true;
    }

    /// <summary>Consumer: copies the oldest frame to <paramref name="destination"/> (at least <see cref="SnapLength"/> bytes) and frees its slot.</summary>
    public bool TryRead(Span<byte> destination, out int length, out int original, out long stamp, out CaptureDirection direction)
    {
        long tail = _tail;
        if (tail == Volatile.Read(ref _head)) { length = original = 0; stamp = 0; direction = default; return false; }
        int slot = (int)(tail & _mask);
        length = _lengths[slot];
        original = _original[slot];
        stamp = _stamps[slot];
        direction = (CaptureDirection)_directions[slot];
        _data.AsSpan(slot * SnapLength, length).CopyTo(destination);
        Volatile.Write(ref _tail, tail + 1); // the producer may reuse the slot
        return true;
    }

    /// <summary>Writes an IPv4 header (20 bytes, no options, checksum filled in) for an underlay capture.</summary>
    public static void WriteIpv4(Span<byte> b, int totalLength, byte protocol, uint source, uint destination)
    {
        b[0] = 0x45;
        b[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)Math.Min(totalLength, ushort.MaxValue));
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], 0x4000); // id 0, don't fragment
        b[8] = 64;
        b[9] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], destination);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], (ushort)~sum);
    }
}
