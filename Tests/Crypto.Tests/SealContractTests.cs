namespace UserOverlay.Crypto.Tests;

/// <summary>The buffer contract of Seal: 16 bytes of headroom, up to 21 of tailroom, in place, nothing outside.</summary>
public class SealContractTests
{
    private static readonly EspSaParameters P = new() { Spi = 0x1234, Key = new byte[16], Salt = new byte[4] };

    [Fact]
    public void Too_little_headroom_or_tailroom_is_a_programming_error()
    {
        using var sa = new OutboundSa(P);
        Assert.Throws<ArgumentOutOfRangeException>(() => sa.Seal(new byte[200], 15, 100, 17, out _));
        // 100 bytes: pad 2 + trailer 2 + ICV 16 → 120 bytes from the payload start; 101 bytes: pad 1 → 120 too.
        Assert.Throws<ArgumentException>(() => sa.Seal(new byte[16 + 119], 16, 100, 17, out _));
        Assert.Throws<ArgumentException>(() => sa.Seal(new byte[16 + 119], 16, 101, 17, out _));
        Assert.Equal(EspSealStatus.Ok, sa.Seal(new byte[16 + 120], 16, 100, 17, out int n1));
        Assert.Equal(EspSealStatus.Ok, sa.Seal(new byte[16 + 120], 16, 101, 17, out int n2));
        Assert.Equal(136, n1);
        Assert.Equal(136, n2);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(1446)]
    public void Writes_exactly_the_sealed_range_and_nothing_else(int length)
    {
        using var sa = new OutboundSa(P);
        const int head = 40;
        int sealedLength = Esp.SealedLength(length);
        byte[] buf = new byte[head + length + Esp.MaxTrailerLength + 10];
        buf.AsSpan().Fill(0xCC);
        Assert.Equal(EspSealStatus.Ok, sa.Seal(buf, head, length, 17, out int n));
        Assert.Equal(sealedLength, n);
        Assert.True(sealedLength - length - Esp.HeaderLength - Esp.IcvLength <= 2 + Esp.MaxPadLength);
        Assert.All(buf.AsSpan(0, head - Esp.HeaderLength).ToArray(), b => Assert.Equal(0xCC, b));
        Assert.All(buf.AsSpan(head - Esp.HeaderLength + n).ToArray(), b => Assert.Equal(0xCC, b));
    }

    [Fact]
    public void Extended_sequence_numbers_work_through_the_database()
    {
        using var pair = new Pair(new EspOptions { ExtendedSequenceNumbers = true });
        Assert.True(pair.AtoB.CurrentOutbound!.ExtendedSequenceNumbers);
        for (int i = 0; i < 10; i++)
        {
            byte[] payload = Packets.VxlanIcmp(5, (ushort)i);
            byte[] buf = Packets.InBuffer(payload);
            Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(buf, 64, payload.Length, 17, out int n));
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(buf.AsSpan(48, n), out int off, out int len, out _, out _));
            Assert.Equal(payload, buf.AsSpan(48 + off, len).ToArray());
        }
        // ESN and 32-bit hosts derive different SPIs: a mismatch shows as unknown SPI, not as failing ICVs.
        using var plain = new Pair();
        Assert.NotEqual(plain.AtoB.CurrentOutbound!.Spi, pair.AtoB.CurrentOutbound!.Spi);
    }
}
