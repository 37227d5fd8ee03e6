using UserOverlay.Control.Networks;

namespace UserOverlay.Control.Tests;

/// <summary>Docker's derived MACs and the check of a given one.</summary>
public class EndpointMacTests
{
    [Theory]
    [InlineData(0xC612_0002u, "02:00:c6:12:00:02")]
    [InlineData(0xC000_02FEu, "02:00:c0:00:02:fe")]
    public void Derives_02_42_and_the_four_octets(uint address, string mac)
    {
        var m = EndpointMac.FromAddress(address);
        Assert.Equal(mac, m.ToString());
        Assert.False(m.IsMulticast);
    }

    [Theory]
    [InlineData("02:00:c6:12:00:02", true)]
    [InlineData("02-42-C6-12-00-02", true)]
    [InlineData("01:00:5e:00:00:01", false)]   // multicast
    [InlineData("ff:ff:ff:ff:ff:ff", false)]   // broadcast
    [InlineData("00:00:00:00:00:00", false)]
    [InlineData("02:00:c6:12:00", false)]
    [InlineData("not a mac", false)]
    public void Accepts_only_unicast_macs(string text, bool accepted)
    {
        var e = Record.Exception(() => EndpointMac.ParseUnicast(text));
        Assert.Equal(accepted, e is null);
        if (e is not null) Assert.Equal("mac", Assert.IsType<ControlException>(e).Field);
    }
}
