namespace UserOverlay.Membership.Wire;

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
