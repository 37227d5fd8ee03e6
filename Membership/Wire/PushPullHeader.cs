namespace UserOverlay.Membership.Wire;

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
