using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UserOverlay.Router.Offload;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
/// big-endian words. <see cref="Sum"/> accumulates 32-bit words into a 64-bit register (no carry
/// handling inside the loop), which is several times faster than a 16-bit loop; only the final
/// fold cares about byte order. Allocation-free, thread-safe.
/// </summary>
internal static class Checksum
{
    /// <summary>
    /// Adds <paramref name="data"/> to a running sum. The result is a partial sum in "memory order"
    /// (as if words were read little-endian); use <see cref="Fold"/> to get the big-endian 16-bit sum.
    /// Spans of odd length are padded with a zero byte (only valid as the last span).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong Sum(ReadOnlySpan<byte> data, ulong initial = 0)
    {
        ulong sum = initial;
        ref byte p = ref MemoryMarshal.GetReference(data);
        nint n = data.Length, i = 0;
        for (; i + 32 <= n; i += 32)
        {
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 4));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 8));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 12));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 16));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 20));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 24));
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i + 28));
        }
        for (; i + 4 <= n; i += 4) sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i));
        if (i + 2 <= n) { sum += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, i)); i += 2; }
        if (i < n) sum += Unsafe.Add(ref p, i); // the odd byte is the high byte of a big-endian word: low byte in memory order
        return sum;
    }

    /// <summary>Adds a big-endian 16-bit value (e.g. a length in the pseudo-header) to a memory-order sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong AddWord(ulong sum, ushort bigEndianValue) =>
        sum + (BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(bigEndianValue) : bigEndianValue);

    /// <summary>Folds a memory-order sum to the 16-bit ones' complement sum, as a big-endian value (not complemented).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Fold(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        uint s = (uint)sum;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        ushort folded = (ushort)s;
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>The pseudo-header sum of TCP/UDP over IPv4 (source, destination, protocol, L4 length).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PseudoHeaderV4(ReadOnlySpan<byte> src4, ReadOnlySpan<byte> dst4, byte protocol, int l4Length)
    {
        ulong sum = Sum(src4) + Sum(dst4);
        sum = AddWord(sum, protocol);
        return AddWord(sum, (ushort)l4Length);
    }

    /// <summary>The pseudo-header sum of TCP/UDP over IPv6 (RFC 8200 §8.1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PseudoHeaderV6(ReadOnlySpan<byte> src16, ReadOnlySpan<byte> dst16, byte protocol, int l4Length)
    {
        ulong sum = Sum(src16) + Sum(dst16);
        sum = AddWord(sum, (ushort)(l4Length >> 16));
        sum = AddWord(sum, (ushort)l4Length);
        return AddWord(sum, protocol);
    }

    /// <summary>The checksum to store: the complement of the folded sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Complement(ulong sum) => (ushort)~Fold(sum);
}
