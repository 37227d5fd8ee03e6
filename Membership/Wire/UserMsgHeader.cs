namespace UserOverlay.Membership.Wire;

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
