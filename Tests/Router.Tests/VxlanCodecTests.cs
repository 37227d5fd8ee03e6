using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Tests;

public class VxlanCodecTests
{
    private static readonly byte[] Inner = Packets.Udp4(Packets.Mac("02:00:00:00:00:01"), Packets.Mac("02:00:00:00:00:02"), "198.18.0.1", "198.18.0.2");

    public static TheoryData<string, byte[], string, uint> Cases => new()
    {
        { "valid, VNI 4097", Packets.Vxlan(4097, Inner), "Ok", 4097 },
        { "valid, smallest VNI", Packets.Vxlan(1, Inner), "Ok", 1 },
        { "valid, largest VNI", Packets.Vxlan(0xFFFFFF, Inner), "Ok", 0xFFFFFF },
        { "reserved bits set are ignored", Packets.Vxlan(42, Inner, flags: 0xFF, reserved: 0xFF), "Ok", 42 },
        { "other flag bits with I are ignored", Packets.Vxlan(42, Inner, flags: 0x88), "Ok", 42 },
        { "I flag missing", Packets.Vxlan(42, Inner, flags: 0x00), "MissingIFlag", 0 },
        { "only other flags", Packets.Vxlan(42, Inner, flags: 0xF7), "MissingIFlag", 0 },
        { "empty", [], "Truncated", 0 },
        { "header only", Packets.Vxlan(42, []), "Truncated", 0 },
        { "header + 13 bytes of Ethernet", Packets.Vxlan(42, Inner[..13]), "Truncated", 0 },
        { "header + bare Ethernet header", Packets.Vxlan(42, Inner[..14]), "Ok", 42 },
        { "7 bytes", Packets.Vxlan(42, Inner)[..7], "Truncated", 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode(string name, byte[] datagram, string expected, uint expectedVni)
    {
        var status = VxlanHeader.TryDecode(datagram, out uint vni);
        Assert.True(expected == status.ToString(), $"{name}: expected {expected}, got {status}");
        if (status == VxlanHeader.DecodeStatus.Ok) Assert.Equal(expectedVni, vni);
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(4097u)]
    [InlineData(0xABCDEFu)]
    [InlineData(0xFFFFFFu)]
    public void Write_sets_I_flag_zero_reserved_and_VNI(uint vni)
    {
        var b = new byte[8];
        Array.Fill(b, (byte)0xAA);
        VxlanHeader.Write(b, vni);
        Assert.Equal(new byte[] { 0x08, 0, 0, 0, (byte)(vni >> 16), (byte)(vni >> 8), (byte)vni, 0 }, b);
        var whole = b.Concat(Inner).ToArray();
        Assert.Equal(VxlanHeader.DecodeStatus.Ok, VxlanHeader.TryDecode(whole, out uint back));
        Assert.Equal(vni, back);
    }

    [Fact]
    public void Mac_parse_format_roundtrip_and_derivation()
    {
        var m = MacAddress.Parse("02:00:c6:12:00:0b");
        Assert.Equal(0x0200_c612_000bUL, m.Value);
        Assert.Equal("02:00:c6:12:00:0b", m.ToString());
        Assert.Equal(m, MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11")));
        Assert.False(m.IsMulticast);
        Assert.True(MacAddress.Broadcast.IsMulticast);
        Assert.True(MacAddress.Parse("01:00:5e:00:00:01").IsMulticast);
        Assert.False(MacAddress.TryParse("02:00:c6:12:00", out _));
        Assert.False(MacAddress.TryParse("02:00:c6:12:00:zz", out _));
        Assert.False(MacAddress.TryParse("0200c612000b00000", out _));
    }

    [Theory]
    [InlineData("198.18.0.0/24", true, "198.18.0.0/24")]
    [InlineData("198.18.0.0/15", true, "198.18.0.0/15")]
    [InlineData("198.19.0.0/15", false, "")]
    [InlineData("198.18.0.0/33", false, "")]
    [InlineData("198.18.0.1/24", false, "")]
    [InlineData("198.18.0.0", false, "")]
    [InlineData("198.18.0/24", false, "")]
    [InlineData("nonsense", false, "")]
    [InlineData("0.0.0.0/0", true, "0.0.0.0/0")]
    public void Cidr_parsing(string text, bool ok, string canonical)
    {
        bool parsed = Ipv4Prefix.TryParse(text, out var p, out string error);
        Assert.Equal(ok, parsed);
        if (ok) Assert.Equal(canonical, p.ToString());
        else Assert.NotEmpty(error);
    }
}
