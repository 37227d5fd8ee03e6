namespace UserOverlay.Membership.Wire;

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
