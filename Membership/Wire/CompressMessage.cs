namespace UserOverlay.Membership.Wire;

/// <summary>compress (9): {Algo: 0 (LZW), Buf}.</summary>
internal sealed record CompressMessage(int Algo, byte[] Buf)
{
    public const int AlgoLzw = 0;

    public void Write(MsgPackWriter w)
    {
        w.WriteMapHeader(2);
        w.WriteKey("Algo"); w.WriteInt(Algo);
        w.WriteKey("Buf"); w.WriteRaw(Buf);
    }

    public static CompressMessage Read(ref MsgPackReader r)
    {
        int algo = 0; byte[]? buf = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            switch (r.ReadString())
            {
                case "Algo": algo = r.ReadInt32(); break;
                case "Buf": buf = r.ReadBytes(); break;
                default: r.Skip(); break;
            }
        }
        return new CompressMessage(algo, buf ?? []);
    }
}
