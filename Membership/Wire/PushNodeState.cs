namespace UserOverlay.Membership.Wire;

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
