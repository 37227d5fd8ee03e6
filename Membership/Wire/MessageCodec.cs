// memberlist's message bodies: msgpack maps with Go field names, keys written in alphabetical
// order (as go-msgpack does for these structs), omitempty fields left out. Decoders match keys by
// name, skip unknown keys and take any integer/raw form, so newer peers' extra fields are harmless.

namespace UserOverlay.Membership.Wire;

/// <summary>Helpers to build complete messages (type byte + body).</summary>
internal static class MessageCodec
{
    public static byte[] Encode(MessageType type, Action<MsgPackWriter> body)
    {
        var w = new MsgPackWriter();
        w.WriteByte((byte)type);
        body(w);
        return w.ToArray();
    }

    public static byte[] Encode(PingMessage m) => Encode(MessageType.Ping, m.Write);
    public static byte[] Encode(IndirectPingMessage m) => Encode(MessageType.IndirectPing, m.Write);
    public static byte[] Encode(AckRespMessage m) => Encode(MessageType.AckResp, m.Write);
    public static byte[] Encode(NackRespMessage m) => Encode(MessageType.NackResp, m.Write);
    public static byte[] Encode(AliveMessage m) => Encode(MessageType.Alive, m.Write);
    public static byte[] EncodeSuspect(SuspectOrDeadMessage m) => Encode(MessageType.Suspect, m.Write);
    public static byte[] EncodeDead(SuspectOrDeadMessage m) => Encode(MessageType.Dead, m.Write);
    public static byte[] Encode(ErrRespMessage m) => Encode(MessageType.Err, m.Write);

    /// <summary>A UDP user message: type byte then the embedder's bytes, no length.</summary>
    public static byte[] EncodeUserPacket(ReadOnlySpan<byte> payload)
    {
        var b = new byte[payload.Length + 1];
        b[0] = (byte)MessageType.User;
        payload.CopyTo(b.AsSpan(1));
        return b;
    }

    /// <summary>A TCP user message: type byte, {UserMsgLen}, then the bytes.</summary>
    public static byte[] EncodeUserStream(ReadOnlySpan<byte> payload)
    {
        var w = new MsgPackWriter(payload.Length + 32);
        w.WriteByte((byte)MessageType.User);
        new UserMsgHeader(payload.Length).Write(w);
        w.WriteRawBytes(payload);
        return w.ToArray();
    }

    /// <summary>Wraps <paramref name="payload"/> (a whole message) in compress(LZW).</summary>
    public static byte[] Compress(ReadOnlySpan<byte> payload)
    {
        var buf = Lzw.Compress(payload);
        return Encode(MessageType.Compress, new CompressMessage(CompressMessage.AlgoLzw, buf).Write);
    }

    /// <summary>Decompresses the body of a compress message (after its type byte). Throws <see cref="MsgPackException"/> or <see cref="InvalidDataException"/>.</summary>
    public static byte[] Decompress(ReadOnlySpan<byte> body, int maxOutput = ProtocolConstants.MaxDecompressedSize)
    {
        var r = new MsgPackReader(body);
        var c = CompressMessage.Read(ref r);
        if (c.Algo != CompressMessage.AlgoLzw) throw new InvalidDataException($"unknown compression algorithm {c.Algo}");
        byte[] plain = Lzw.Decompress(c.Buf, maxOutput);
        if (plain.Length == 0) throw new InvalidDataException("empty decompressed payload");
        return plain;
    }
}
