// The write half of the hand-written msgpack codec; MsgPackReader.cs says why it is hand-written.

using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace UserOverlay.Membership.Wire;

/// <summary>
/// Writes old-spec msgpack (raw strings/bytes, smallest integer forms) into a growable buffer.
/// Not thread-safe; one writer per message being built.
/// </summary>
internal sealed class MsgPackWriter
{
    private readonly ArrayBufferWriter<byte> _buf;

    public MsgPackWriter(int initialCapacity = 256) => _buf = new ArrayBufferWriter<byte>(initialCapacity);

    public int Length => _buf.WrittenCount;
    public ReadOnlySpan<byte> WrittenSpan => _buf.WrittenSpan;
    public ReadOnlyMemory<byte> WrittenMemory => _buf.WrittenMemory;
    public byte[] ToArray() => _buf.WrittenSpan.ToArray();

    public void WriteByte(byte b) { _buf.GetSpan(1)[0] = b; _buf.Advance(1); }

    public void WriteRawBytes(ReadOnlySpan<byte> bytes) => _buf.Write(bytes);

    public void WriteMapHeader(int count)
    {
        if (count < 16) WriteByte((byte)(0x80 | count));
        else if (count <= ushort.MaxValue) { WriteByte(0xde); WriteBE16((ushort)count); }
        else { WriteByte(0xdf); WriteBE32((uint)count); }
    }

    public void WriteArrayHeader(int count)
    {
        if (count < 16) WriteByte((byte)(0x90 | count));
        else if (count <= ushort.MaxValue) { WriteByte(0xdc); WriteBE16((ushort)count); }
        else { WriteByte(0xdd); WriteBE32((uint)count); }
    }

    public void WriteNil() => WriteByte(0xc0);
    public void WriteBool(bool v) => WriteByte(v ? (byte)0xc3 : (byte)0xc2);

    /// <summary>Non-negative integers in the smallest form (positive fixint, cc, cd, ce, cf), as go-msgpack writes them.</summary>
    public void WriteUInt(ulong v)
    {
        if (v < 128) WriteByte((byte)v);
        else if (v <= byte.MaxValue) { WriteByte(0xcc); WriteByte((byte)v); }
        else if (v <= ushort.MaxValue) { WriteByte(0xcd); WriteBE16((ushort)v); }
        else if (v <= uint.MaxValue) { WriteByte(0xce); WriteBE32((uint)v); }
        else { WriteByte(0xcf); Span<byte> s = _buf.GetSpan(8); BinaryPrimitives.WriteUInt64BigEndian(s, v); _buf.Advance(8); }
    }

    /// <summary>Signed integers: non-negative values as <see cref="WriteUInt"/>, negative ones in the smallest signed form.</summary>
    public void WriteInt(long v)
    {
        if (v >= 0) { WriteUInt((ulong)v); return; }
        if (v >= -32) WriteByte((byte)(sbyte)v);
        else if (v >= sbyte.MinValue) { WriteByte(0xd0); WriteByte((byte)(sbyte)v); }
        else if (v >= short.MinValue) { WriteByte(0xd1); WriteBE16((ushort)(short)v); }
        else if (v >= int.MinValue) { WriteByte(0xd2); WriteBE32((uint)(int)v); }
        else { WriteByte(0xd3); Span<byte> s = _buf.GetSpan(8); BinaryPrimitives.WriteInt64BigEndian(s, v); _buf.Advance(8); }
    }

    /// <summary>A raw (old-spec string/bytes): a0..bf, da (16-bit length), db (32-bit length).</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        int n = bytes.Length;
        if (n < 32) WriteByte((byte)(0xa0 | n));
        else if (n <= ushort.MaxValue) { WriteByte(0xda); WriteBE16((ushort)n); }
        else { WriteByte(0xdb); WriteBE32((uint)n); }
        _buf.Write(bytes);
    }

    /// <summary>A Go []byte: nil as c0 (what go-msgpack writes for a nil slice), otherwise raw.</summary>
    public void WriteBytesOrNil(byte[]? bytes)
    {
        if (bytes is null) WriteNil();
        else WriteRaw(bytes);
    }

    public void WriteString(string s)
    {
        int max = Encoding.UTF8.GetMaxByteCount(s.Length);
        byte[]? rented = null;
        Span<byte> tmp = max <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(max));
        int n = Encoding.UTF8.GetBytes(s, tmp);
        WriteRaw(tmp[..n]);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }

    /// <summary>Writes a map key (a field name) as raw.</summary>
    public void WriteKey(string key) => WriteString(key);

    private void WriteBE16(ushort v) { BinaryPrimitives.WriteUInt16BigEndian(_buf.GetSpan(2), v); _buf.Advance(2); }
    private void WriteBE32(uint v) { BinaryPrimitives.WriteUInt32BigEndian(_buf.GetSpan(4), v); _buf.Advance(4); }
}
