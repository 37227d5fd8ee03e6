namespace UserOverlay.Membership.Wire;

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
