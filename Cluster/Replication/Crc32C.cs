using System.Buffers.Binary;
using System.Numerics;

namespace UserOverlay.Cluster.Replication;

/// <summary>CRC-32C (Castagnoli, as iSCSI and ext4), hardware-accelerated where the CPU has it (<see cref="BitOperations.Crc32C(uint, ulong)"/>).</summary>
internal static class Crc32C
{
    /// <summary>Continues <paramref name="crc"/> (start with <see cref="Start"/>) over <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return crc;
    }

    /// <summary>The initial value.</summary>
    public const uint Start = uint.MaxValue;

    /// <summary>The final value of a running <paramref name="crc"/>.</summary>
    public static uint Finish(uint crc) => ~crc;

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Start, data));
}
