using System.Buffers.Binary;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Transport;

/// <summary>
/// Reads memberlist stream messages from a TCP (or in-memory) stream. memberlist has no framing on
/// plain streams: the reader decodes msgpack values one after another, and the peer keeps the
/// connection open for the reply. So this buffers and hands out exactly one complete msgpack value
/// (or N raw bytes) at a time, never reading past what it needs more than one buffer ahead.
/// Not thread-safe; one reader per exchange. Every read is bounded by <c>maxTotal</c>.
/// </summary>
internal sealed class StreamMessageReader(Stream stream, int maxTotal = ProtocolConstants.MaxPushStateBytes + 1024 * 1024)
{
    private byte[] _buf = new byte[4096];
    private int _start, _end;
    private long _consumed;

    /// <summary>A reader over bytes already in memory (a decrypted or decompressed stream message).</summary>
    public static StreamMessageReader FromMemory(ReadOnlyMemory<byte> data) =>
        new(new MemoryStream(data.ToArray(), writable: false), Math.Max(data.Length, 1));

    private async ValueTask<bool> FillAsync(int needed, CancellationToken ct)
    {
        while (_end - _start < needed)
        {
            if (_consumed + needed > maxTotal) throw new StreamProtocolException(DropReason.Oversized, "stream message too large");
            if (_start > 0 && _end - _start < _buf.Length / 2)
            {
                Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_buf.Length - _end < Math.Max(needed - (_end - _start), 1024))
            {
                int size = Math.Max(_buf.Length * 2, needed + 1024);
                var nb = new byte[size];
                Buffer.BlockCopy(_buf, _start, nb, 0, _end - _start);
                _end -= _start;
                _start = 0;
                _buf = nb;
            }
            int n = await stream.ReadAsync(_buf.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0) return false;
            _end += n;
        }
        return true;
    }

    private ReadOnlyMemory<byte> Consume(int n)
    {
        var m = _buf.AsMemory(_start, n).ToArray();
        _start += n;
        _consumed += n;
        return m;
    }

    /// <summary>Reads one byte; throws EndOfStreamException at end of stream.</summary>
    public async ValueTask<byte> ReadByteAsync(CancellationToken ct)
    {
        if (!await FillAsync(1, ct).ConfigureAwait(false)) throw new EndOfStreamException();
        _consumed++;
        return _buf[_start++];
    }

    /// <summary>Reads exactly <paramref name="n"/> bytes (a copy).</summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadExactAsync(int n, CancellationToken ct)
    {
        if (n < 0 || n > maxTotal) throw new StreamProtocolException(DropReason.Oversized, "stream message too large");
        if (!await FillAsync(n, ct).ConfigureAwait(false)) throw new StreamProtocolException(DropReason.Truncated, "stream ended early");
        return Consume(n);
    }

    public async ValueTask<uint> ReadUInt32BigEndianAsync(CancellationToken ct)
    {
        var b = await ReadExactAsync(4, ct).ConfigureAwait(false);
        return BinaryPrimitives.ReadUInt32BigEndian(b.Span);
    }

    /// <summary>Reads the bytes of exactly one complete msgpack value.</summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadValueAsync(CancellationToken ct)
    {
        int want = 1;
        while (true)
        {
            if (!await FillAsync(want, ct).ConfigureAwait(false)) throw new StreamProtocolException(DropReason.Truncated, "stream ended inside a message");
            int len;
            try
            {
                len = MsgPackReader.MeasureValue(_buf.AsSpan(_start, _end - _start));
            }
            catch (MsgPackException e)
            {
                throw new StreamProtocolException(DropReason.Malformed, e.Message);
            }
            if (len > 0) return Consume(len);
            want = _end - _start + 1;
        }
    }
}
