namespace UserOverlay.Membership.Wire;

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
