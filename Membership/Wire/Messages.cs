// memberlist's message bodies: msgpack maps with Go field names, keys written in alphabetical
// order (as go-msgpack does for these structs), omitempty fields left out. Decoders match keys by
// name, skip unknown keys and take any integer/raw form, so newer peers' extra fields are harmless.

namespace UserOverlay.Membership.Wire;

/// <summary>ping (0). Node is the intended target; Source* say where to send the ack.</summary>
internal sealed record PingMessage(uint SeqNo, string Node, byte[]? SourceAddr = null, ushort SourcePort = 0, string? SourceNode = null)
{
    public void Write(MsgPackWriter w)
    {
        bool src = SourceAddr is { Length: > 0 }, port = SourcePort != 0, srcNode = !string.IsNullOrEmpty(SourceNode);
        w.WriteMapHeader(2 + (src ? 1 : 0) + (port ? 1 : 0) + (srcNode ? 1 : 0));
        w.WriteKey("Node"); w.WriteString(Node);
        w.WriteKey("SeqNo"); w.WriteUInt(SeqNo);
        if (src) { w.WriteKey("SourceAddr"); w.WriteRaw(SourceAddr); }
        if (srcNode) { w.WriteKey("SourceNode"); w.WriteString(SourceNode!); }
        if (port) { w.WriteKey("SourcePort"); w.WriteUInt(SourcePort); }
    }

    public static PingMessage Read(ref MsgPackReader r)
    {
        uint seq = 0; string node = ""; byte[]? addr = null; ushort port = 0; string? srcNode = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "SeqNo": seq = r.ReadUInt32(); break;
                case "Node": node = r.ReadString(); break;
                case "SourceAddr": addr = r.ReadBytes(); break;
                case "SourcePort": port = r.ReadUInt16(); break;
                case "SourceNode": srcNode = r.ReadString(); break;
                default: r.Skip(); break;
            }
        }
        return new PingMessage(seq, node, addr, port, srcNode);
    }
}

/// <summary>indirectPing (1): probe Target:Port (named Node) for us; Nack asks for a nack on timeout.</summary>
internal sealed record IndirectPingMessage(uint SeqNo, byte[] Target, ushort Port, string Node, bool Nack, byte[]? SourceAddr = null, ushort SourcePort = 0, string? SourceNode = null)
{
    public void Write(MsgPackWriter w)
    {
        bool src = SourceAddr is { Length: > 0 }, port = SourcePort != 0, srcNode = !string.IsNullOrEmpty(SourceNode);
        w.WriteMapHeader(5 + (src ? 1 : 0) + (port ? 1 : 0) + (srcNode ? 1 : 0));
        w.WriteKey("Nack"); w.WriteBool(Nack);
        w.WriteKey("Node"); w.WriteString(Node);
        w.WriteKey("Port"); w.WriteUInt(Port);
        w.WriteKey("SeqNo"); w.WriteUInt(SeqNo);
        if (src) { w.WriteKey("SourceAddr"); w.WriteRaw(SourceAddr); }
        if (srcNode) { w.WriteKey("SourceNode"); w.WriteString(SourceNode!); }
        if (port) { w.WriteKey("SourcePort"); w.WriteUInt(SourcePort); }
        w.WriteKey("Target"); w.WriteRaw(Target);
    }

    public static IndirectPingMessage Read(ref MsgPackReader r)
    {
        uint seq = 0; byte[]? target = null; ushort tport = 0; string node = ""; bool nack = false;
        byte[]? addr = null; ushort port = 0; string? srcNode = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "SeqNo": seq = r.ReadUInt32(); break;
                case "Target": target = r.ReadBytes(); break;
                case "Port": tport = r.ReadUInt16(); break;
                case "Node": node = r.ReadString(); break;
                case "Nack": nack = r.ReadBool(); break;
                case "SourceAddr": addr = r.ReadBytes(); break;
                case "SourcePort": port = r.ReadUInt16(); break;
                case "SourceNode": srcNode = r.ReadString(); break;
                default: r.Skip(); break;
            }
        }
        return new IndirectPingMessage(seq, target ?? [], tport, node, nack, addr, port, srcNode);
    }
}

/// <summary>ackResp (2). Payload is the ping delegate's (serf: a Vivaldi coordinate); nil when none.</summary>
internal sealed record AckRespMessage(uint SeqNo, byte[]? Payload)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(2);
        w.WriteKey("Payload"); w.WriteBytesOrNil(Payload);
        w.WriteKey("SeqNo"); w.WriteUInt(SeqNo);
    }

    public static AckRespMessage Read(ref MsgPackReader r)
    {
        uint seq = 0; byte[]? payload = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "SeqNo": seq = r.ReadUInt32(); break;
                case "Payload": payload = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        return new AckRespMessage(seq, payload);
    }
}

/// <summary>nackResp (11).</summary>
internal sealed record NackRespMessage(uint SeqNo)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(1);
        w.WriteKey("SeqNo"); w.WriteUInt(SeqNo);
    }

    public static NackRespMessage Read(ref MsgPackReader r)
    {
        uint seq = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            if (r.ReadString() == "SeqNo") seq = r.ReadUInt32();
            else r.Skip();
        }
        return new NackRespMessage(seq);
    }
}

/// <summary>err (13), TCP only.</summary>
internal sealed record ErrRespMessage(string Error)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(1);
        w.WriteKey("Error"); w.WriteString(Error);
    }

    public static ErrRespMessage Read(ref MsgPackReader r)
    {
        string e = "";
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            if (r.ReadString() == "Error") e = r.ReadString();
            else r.Skip();
        }
        return new ErrRespMessage(e);
    }
}

/// <summary>suspect (3) and dead (5) share a layout: {From, Incarnation, Node}. Dead with From == Node means "left".</summary>
internal sealed record SuspectOrDeadMessage(uint Incarnation, string Node, string From)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(3);
        w.WriteKey("From"); w.WriteString(From);
        w.WriteKey("Incarnation"); w.WriteUInt(Incarnation);
        w.WriteKey("Node"); w.WriteString(Node);
    }

    public static SuspectOrDeadMessage Read(ref MsgPackReader r)
    {
        uint inc = 0; string node = "", from = "";
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Incarnation": inc = r.ReadUInt32(); break;
                case "Node": node = r.ReadString(); break;
                case "From": from = r.ReadString(); break;
                default: r.Skip(); break;
            }
        }
        return new SuspectOrDeadMessage(inc, node, from);
    }
}

/// <summary>alive (4). Vsn = pmin, pmax, pcur, dmin, dmax, dcur (a 6-byte raw on the wire).</summary>
internal sealed record AliveMessage(uint Incarnation, string Node, byte[] Addr, ushort Port, byte[]? Meta, byte[]? Vsn)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(6);
        w.WriteKey("Addr"); w.WriteRaw(Addr);
        w.WriteKey("Incarnation"); w.WriteUInt(Incarnation);
        w.WriteKey("Meta"); w.WriteBytesOrNil(Meta);
        w.WriteKey("Node"); w.WriteString(Node);
        w.WriteKey("Port"); w.WriteUInt(Port);
        w.WriteKey("Vsn"); w.WriteBytesOrNil(Vsn);
    }

    public static AliveMessage Read(ref MsgPackReader r)
    {
        uint inc = 0; string node = ""; byte[]? addr = null, meta = null, vsn = null; ushort port = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Incarnation": inc = r.ReadUInt32(); break;
                case "Node": node = r.ReadString(); break;
                case "Addr": addr = r.ReadBytes(); break;
                case "Port": port = r.ReadUInt16(); break;
                case "Meta": meta = r.ReadBytes(); break;
                case "Vsn": vsn = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        return new AliveMessage(inc, node, addr ?? [], port, meta, vsn);
    }
}

/// <summary>pushPull (6) header; followed by Nodes × <see cref="PushNodeState"/> and UserStateLen bytes.</summary>
internal sealed record PushPullHeader(int Nodes, int UserStateLen, bool Join)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(3);
        w.WriteKey("Join"); w.WriteBool(Join);
        w.WriteKey("Nodes"); w.WriteInt(Nodes);
        w.WriteKey("UserStateLen"); w.WriteInt(UserStateLen);
    }

    public static PushPullHeader Read(ref MsgPackReader r)
    {
        int nodes = 0, len = 0; bool join = false;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Nodes": nodes = r.ReadInt32(); break;
                case "UserStateLen": len = r.ReadInt32(); break;
                case "Join": join = r.ReadBool(); break;
                default: r.Skip(); break;
            }
        }
        return new PushPullHeader(nodes, len, join);
    }
}

/// <summary>One node in a push/pull. Note the key is Name here (Node in alive/suspect/dead). State: 0 alive, 1 suspect, 2 dead, 3 left.</summary>
internal sealed record PushNodeState(string Name, byte[] Addr, ushort Port, byte[]? Meta, uint Incarnation, MemberState State, byte[]? Vsn)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(7);
        w.WriteKey("Addr"); w.WriteRaw(Addr);
        w.WriteKey("Incarnation"); w.WriteUInt(Incarnation);
        w.WriteKey("Meta"); w.WriteBytesOrNil(Meta);
        w.WriteKey("Name"); w.WriteString(Name);
        w.WriteKey("Port"); w.WriteUInt(Port);
        w.WriteKey("State"); w.WriteInt((int)State);
        w.WriteKey("Vsn"); w.WriteBytesOrNil(Vsn);
    }

    public static PushNodeState Read(ref MsgPackReader r)
    {
        string name = ""; byte[]? addr = null, meta = null, vsn = null; ushort port = 0; uint inc = 0; int state = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Name": name = r.ReadString(); break;
                case "Addr": addr = r.ReadBytes(); break;
                case "Port": port = r.ReadUInt16(); break;
                case "Meta": meta = r.ReadBytes(); break;
                case "Incarnation": inc = r.ReadUInt32(); break;
                case "State": state = r.ReadInt32(); break;
                case "Vsn": vsn = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        if (state is < 0 or > 3) throw new MsgPackException($"push/pull: unknown node state {state}");
        return new PushNodeState(name, addr ?? [], port, meta, inc, (MemberState)state, vsn);
    }
}

/// <summary>user (8) over TCP: header {UserMsgLen} then the bytes.</summary>
internal sealed record UserMsgHeader(int UserMsgLen)
{
    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(1);
        w.WriteKey("UserMsgLen"); w.WriteInt(UserMsgLen);
    }

    public static UserMsgHeader Read(ref MsgPackReader r)
    {
        int len = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            if (r.ReadString() == "UserMsgLen") len = r.ReadInt32();
            else r.Skip();
        }
        return new UserMsgHeader(len);
    }
}

/// <summary>compress (9): {Algo: 0 (LZW), Buf}.</summary>
internal sealed record CompressMessage(int Algo, byte[] Buf)
{
    public const int AlgoLzw = 0;

    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(2);
        w.WriteKey("Algo"); w.WriteInt(Algo);
        w.WriteKey("Buf"); w.WriteRaw(Buf);
    }

    public static CompressMessage Read(ref MsgPackReader r)
    {
        int algo = 0; byte[]? buf = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Algo": algo = r.ReadInt32(); break;
                case "Buf": buf = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        return new CompressMessage(algo, buf ?? []);
    }
}

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
