namespace UserOverlay.Crypto.Tests;

public class MtuTests
{
    [Fact]
    public void Worst_case_overhead_is_pad_3_header_8_iv_8_trailer_2_icv_16_plus_udp_8()
    {
        Assert.Equal(37, EspOverhead.WorstCase(EspEncapsulation.Transport));
        Assert.Equal(45, EspOverhead.WorstCase(EspEncapsulation.Udp));
        Assert.Equal(Esp.HeaderLength, 16);
        Assert.Equal(Esp.MaxTrailerLength, 21);
    }

    [Theory]
    [InlineData(1500, EspEncapsulation.Transport, 1416)]
    [InlineData(1500, EspEncapsulation.Udp, 1408)]
    [InlineData(9000, EspEncapsulation.Transport, 8916)]
    [InlineData(1280, EspEncapsulation.Transport, 1196)]
    public void Inner_mtu_is_the_largest_that_fits_and_every_shorter_frame_fits_too(int underlay, EspEncapsulation encap, int expected)
    {
        int mtu = EspOverhead.InnerMtu(underlay, encap);
        Assert.Equal(expected, mtu);
        int udp = encap == EspEncapsulation.Udp ? 8 : 0;
        for (int inner = 0; inner <= mtu; inner++)
            Assert.True(20 + udp + Esp.SealedLength(EspOverhead.EncapsulatedHeaders + inner) <= underlay, $"inner {inner}");
        Assert.True(20 + udp + Esp.SealedLength(EspOverhead.EncapsulatedHeaders + mtu + 1) > underlay);
        // The worst-case formula is a safe, slightly smaller bound.
        Assert.InRange(underlay - EspOverhead.VxlanOverhead - EspOverhead.WorstCase(encap), mtu - 3, mtu);
    }

    [Fact]
    public void A_configured_mtu_that_does_not_fit_is_an_error_that_says_why()
    {
        Assert.True(EspOverhead.TryValidateInnerMtu(1416, 1500, EspEncapsulation.Transport, out string? none));
        Assert.Null(none);
        Assert.False(EspOverhead.TryValidateInnerMtu(1450, 1500, EspEncapsulation.Transport, out string? error));
        Assert.Contains("mtu 1450 does not fit", error);
        Assert.Contains("1416", error);
        Assert.Contains("ICV", error);
        Assert.False(EspOverhead.TryValidateInnerMtu(1416, 1500, EspEncapsulation.Udp, out string? udpError));
        Assert.Contains("ESP-in-UDP", udpError);
    }
}
