namespace UserOverlay.Membership.Wire;

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
