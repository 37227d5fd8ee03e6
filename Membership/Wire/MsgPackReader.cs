// A small hand-written msgpack codec for memberlist's messages.
//
// Why not MessagePack-CSharp: memberlist (through go-msgpack) speaks the *old* msgpack spec, where
// strings and byte arrays are both "raw" (a0..bf, da, db) and there is no str8/bin family; messages
// are small maps keyed by Go field names, written in alphabetical key order, with omitempty fields
// absent. MessagePack-CSharp's OldSpec writer can produce that, but decoding still has to be tolerant
// (accept str8/bin from newer encoders, any integer width, nil for empty slices) and strictly bounded
// (every length checked against what is left, so a truncated or hostile datagram becomes a counted
// drop, never an exception escaping or a huge allocation). Doing that through a general serializer
// costs more code than MsgPackReader and MsgPackWriter together. Deliberately left out: extension
// types, timestamps, floats on the write side (memberlist's own messages carry none; floats are
// still skipped correctly on read).

using System.Buffers.Binary;
using System.Text;

namespace UserOverlay.Membership.Wire;

/// <summary>
/// Reads msgpack (old and new spec) from a span with every length bounds-checked. Throws
/// <see cref="MsgPackException"/> on malformed or truncated input. A ref struct: use and discard.
/// </summary>
internal ref struct MsgPackReader
{
    /// <summary>Nesting limit for Skip, so hostile input cannot blow the stack.</summary>
    public const int MaxDepth = 32;

    private readonly ReadOnlySpan<byte> _b;
    private int _pos;

    public MsgPackReader(ReadOnlySpan<byte> buffer) { _b = buffer; _pos = 0; }

    public readonly int Position => _pos;
    public readonly int Remaining => _b.Length - _pos;
    public readonly bool End => _pos >= _b.Length;
    public readonly ReadOnlySpan<byte> Rest => _b[_pos..];

    private byte Next()
    {
        if (_pos >= _b.Length) throw Truncated();
        return _b[_pos++];
    }

    private readonly byte PeekByte()
    {
        if (_pos >= _b.Length) throw Truncated();
        return _b[_pos];
    }

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _b.Length - _pos) throw Truncated();
        var s = _b.Slice(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    private ushort BE16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));
    private uint BE32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));
    private ulong BE64() => BinaryPrimitives.ReadUInt64BigEndian(Take(8));

    private static MsgPackException Truncated() => new("msgpack: unexpected end of input", truncated: true);
    private static MsgPackException Bad(string what, byte b) => new($"msgpack: expected {what}, found 0x{b:x2}");

    public readonly bool IsNil => _pos < _b.Length && _b[_pos] == 0xc0;

    public bool TryReadNil()
    {
        if (PeekByte() != 0xc0) return false;
        _pos++;
        return true;
    }

    public int ReadMapHeader()
    {
        byte b = Next();
        long n = b switch
        {
            >= 0x80 and <= 0x8f => b & 0x0f,
            0xde => BE16(),
            0xdf => BE32(),
            _ => throw Bad("map", b),
        };
        // Every entry needs at least 2 bytes: a cheap bound that stops absurd counts early.
        if (n * 2 > Remaining) throw Truncated();
        return (int)n;
    }

    public int ReadArrayHeader()
    {
        byte b = Next();
        long n = b switch
        {
            >= 0x90 and <= 0x9f => b & 0x0f,
            0xdc => BE16(),
            0xdd => BE32(),
            _ => throw Bad("array", b),
        };
        if (n > Remaining) throw Truncated();
        return (int)n;
    }

    public bool ReadBool()
    {
        byte b = Next();
        return b switch
        {
            0xc2 => false,
            0xc3 => true,
            0xc0 => false,
            _ => throw Bad("bool", b),
        };
    }

    /// <summary>Any integer form (nil reads as 0, as go-msgpack decodes it into a zero value).</summary>
    public long ReadInt64()
    {
        byte b = Next();
        switch (b)
        {
            case <= 0x7f: return b;
            case >= 0xe0: return (sbyte)b;
            case 0xc0: return 0;
            case 0xcc: return Next();
            case 0xcd: return BE16();
            case 0xce: return BE32();
            case 0xcf:
                ulong u = BE64();
                if (u > long.MaxValue) throw new MsgPackException("msgpack: integer out of range");
                return (long)u;
            case 0xd0: return (sbyte)Next();
            case 0xd1: return (short)BE16();
            case 0xd2: return (int)BE32();
            case 0xd3: return (long)BE64();
            default: throw Bad("integer", b);
        }
    }

    public ulong ReadUInt64()
    {
        byte b = PeekByte();
        if (b == 0xcf) { _pos++; return BE64(); }
        long v = ReadInt64();
        if (v < 0) throw new MsgPackException("msgpack: negative value for an unsigned field");
        return (ulong)v;
    }

    public uint ReadUInt32()
    {
        ulong v = ReadUInt64();
        if (v > uint.MaxValue) throw new MsgPackException("msgpack: value out of range for uint32");
        return (uint)v;
    }

    public ushort ReadUInt16()
    {
        ulong v = ReadUInt64();
        if (v > ushort.MaxValue) throw new MsgPackException("msgpack: value out of range for uint16");
        return (ushort)v;
    }

    public byte ReadUInt8()
    {
        ulong v = ReadUInt64();
        if (v > byte.MaxValue) throw new MsgPackException("msgpack: value out of range for uint8");
        return (byte)v;
    }

    public int ReadInt32()
    {
        long v = ReadInt64();
        if (v is < int.MinValue or > int.MaxValue) throw new MsgPackException("msgpack: value out of range for int");
        return (int)v;
    }

    /// <summary>Reads any string/raw/bin form as a borrowed span (nil reads as empty). Borrowed: valid as long as the input.</summary>
    public ReadOnlySpan<byte> ReadRawSpan()
    {
        byte b = Next();
        long n = b switch
        {
            >= 0xa0 and <= 0xbf => b & 0x1f,
            0xc0 => 0,
            0xd9 or 0xc4 => Next(),
            0xda or 0xc5 => BE16(),
            0xdb or 0xc6 => BE32(),
            _ => throw Bad("raw/str/bin", b),
        };
        return Take(n);
    }

    /// <summary>Reads a Go []byte: nil gives null, any raw/str/bin gives a copy. Also accepts an array of small integers.</summary>
    public byte[]? ReadBytes()
    {
        byte b = PeekByte();
        if (b == 0xc0) { _pos++; return null; }
        if (b is (>= 0x90 and <= 0x9f) or 0xdc or 0xdd)
        {
            int n = ReadArrayHeader();
            var arr = new byte[n];
            for (int i = 0; i < n; i++) arr[i] = ReadUInt8();
            return arr;
        }
        return ReadRawSpan().ToArray();
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadRawSpan());

    /// <summary>Skips one complete value of any type.</summary>
    public void Skip() => Skip(0);

    private void Skip(int depth)
    {
        if (depth > MaxDepth) throw new MsgPackException("msgpack: nesting too deep");
        byte b = Next();
        switch (b)
        {
            case <= 0x7f or >= 0xe0 or 0xc0 or 0xc2 or 0xc3: return;
            case >= 0x80 and <= 0x8f: SkipN((b & 0x0f) * 2L, depth); return;
            case >= 0x90 and <= 0x9f: SkipN(b & 0x0f, depth); return;
            case >= 0xa0 and <= 0xbf: Take(b & 0x1f); return;
            case 0xc4 or 0xd9: Take(Next()); return;
            case 0xc5 or 0xda: Take(BE16()); return;
            case 0xc6 or 0xdb: Take(BE32()); return;
            case 0xc7: { int n = Next(); Take(1 + n); return; }
            case 0xc8: { int n = BE16(); Take(1 + n); return; }
            case 0xc9: { long n = BE32(); Take(1 + n); return; }
            case 0xca: Take(4); return;
            case 0xcb: Take(8); return;
            case 0xcc or 0xd0: Take(1); return;
            case 0xcd or 0xd1: Take(2); return;
            case 0xce or 0xd2: Take(4); return;
            case 0xcf or 0xd3: Take(8); return;
            case 0xd4: Take(2); return;
            case 0xd5: Take(3); return;
            case 0xd6: Take(5); return;
            case 0xd7: Take(9); return;
            case 0xd8: Take(17); return;
            case 0xdc: SkipN(BE16(), depth); return;
            case 0xdd: SkipN(BE32(), depth); return;
            case 0xde: SkipN(BE16() * 2L, depth); return;
            case 0xdf: SkipN(BE32() * 2L, depth); return;
            default: throw Bad("a msgpack value", b); // 0xc1 is never used
        }
    }

    private void SkipN(long n, int depth)
    {
        if (n > Remaining) throw Truncated();
        for (long i = 0; i < n; i++) Skip(depth + 1);
    }

    /// <summary>
    /// Length of the first complete value in <paramref name="buffer"/>, or -1 when the buffer ends
    /// before the value does (read more and retry). Throws on malformed input.
    /// </summary>
    public static int MeasureValue(ReadOnlySpan<byte> buffer)
    {
        var r = new MsgPackReader(buffer);
        try
        {
            r.Skip();
            return r._pos;
        }
        catch (MsgPackException e) when (e.Truncated)
        {
            return -1;
        }
    }
}
