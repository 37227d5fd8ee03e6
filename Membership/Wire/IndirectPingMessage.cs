namespace UserOverlay.Membership.Wire;

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
