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
