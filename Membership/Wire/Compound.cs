using System.Buffers.Binary;
using System.IO.Hashing;

namespace UserOverlay.Membership.Wire;

/// <summary>compound (7) and hasCrc (12) framing. Stateless and thread-safe.</summary>
internal static class Compound
{
    /// <summary>Most parts in one compound (the count is one byte).</summary>
    public const int MaxParts = 255;

    /// <summary>Builds <c>07 n len16[n] msg[n]</c>. At most <see cref="MaxParts"/> parts, each shorter than 64 KiB.</summary>
    public static byte[] Make(IReadOnlyList<byte[]> msgs)
    {
        if (msgs.Count > MaxParts) throw new ArgumentException("too many parts for one compound message", nameof(msgs));
        int total = 2 + msgs.Count * 2;
        foreach (var m in msgs) total += m.Length;
        var b = new byte[total];
        b[0] = (byte)MessageType.Compound;
        b[1] = (byte)msgs.Count;
        int off = 2;
        foreach (var m in msgs)
        {
            if (m.Length > ushort.MaxValue) throw new ArgumentException("compound part too large", nameof(msgs));
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(off), (ushort)m.Length);
            off += 2;
        }
        foreach (var m in msgs)
        {
            m.CopyTo(b, off);
            off += m.Length;
        }
        return b;
    }

    /// <summary>Splits <paramref name="msgs"/> into compounds of at most 255 parts each.</summary>
    public static List<byte[]> MakeMany(IReadOnlyList<byte[]> msgs)
    {
        var result = new List<byte[]>();
        for (int i = 0; i < msgs.Count; i += MaxParts)
            result.Add(Make(msgs.Skip(i).Take(MaxParts).ToList()));
        return result;
    }

    /// <summary>
    /// Splits a compound body (after the type byte). Returns false when the header is truncated.
    /// <paramref name="truncated"/> counts parts whose declared length ran past the end (they are dropped, the rest kept, as memberlist does).
    /// </summary>
    public static bool TrySplit(ReadOnlyMemory<byte> body, List<ReadOnlyMemory<byte>> parts, out int truncated)
    {
        truncated = 0;
        var span = body.Span;
        if (span.Length < 1) return false;
        int n = span[0];
        if (span.Length < 1 + n * 2) return false;
        int off = 1 + n * 2;
        for (int i = 0; i < n; i++)
        {
            int len = BinaryPrimitives.ReadUInt16BigEndian(span[(1 + i * 2)..]);
            if (body.Length - off < len)
            {
                truncated = n - i;
                return true;
            }
            parts.Add(body.Slice(off, len));
            off += len;
        }
        return true;
    }

    /// <summary>Prefixes <c>0c crc32be</c> (CRC-32/IEEE of <paramref name="msg"/>).</summary>
    public static byte[] AddCrc(ReadOnlySpan<byte> msg)
    {
        var b = new byte[msg.Length + 5];
        b[0] = (byte)MessageType.HasCrc;
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(1), Crc32.HashToUInt32(msg));
        msg.CopyTo(b.AsSpan(5));
        return b;
    }

    /// <summary>Verifies a hasCrc message (including its type byte); on success <paramref name="inner"/> is the message after the checksum.</summary>
    public static bool TryCheckCrc(ReadOnlyMemory<byte> msg, out ReadOnlyMemory<byte> inner)
    {
        inner = default;
        if (msg.Length < 5) return false;
        uint expected = BinaryPrimitives.ReadUInt32BigEndian(msg.Span[1..]);
        inner = msg[5..];
        return Crc32.HashToUInt32(inner.Span) == expected;
    }
}
