using UserOverlay.Control.Networks;
using UserOverlay.Router;
using static UserOverlay.Control.Networks.ControlErrorCodes;

namespace UserOverlay.Control.Tests;

/// <summary>Every refusal of <see cref="NetworkValidator"/>, table-driven, and the defaults it fills in.</summary>
public class NetworkValidatorTests
{
    private static readonly NetworkManagerOptions Options = new() { MaxMtu = 1450 };
    private static readonly NetworkCreateRequest Blue = new() { Name = "blue", Subnet = "198.18.0.0/24" };

    // An existing network: red, 198.18.1.0/24, VNI 4096.
    private static readonly NetworkDefinition Red =
        NetworkValidator.Validate(new() { Name = "red", Subnet = "198.18.1.0/24" }, [], Options);

    private static Dictionary<string, string> Map(params string[] kv) => KeyValueList.Parse("test", kv, valueOptional: true);

    private static readonly Dictionary<string, (NetworkCreateRequest Request, string Code, string Field)> Refusals = new()
    {
        ["name empty"] = (Blue with { Name = "" }, InvalidArgument, "name"),
        ["name starts with a dash"] = (Blue with { Name = "-blue" }, InvalidArgument, "name"),
        ["name with a slash"] = (Blue with { Name = "a/b" }, InvalidArgument, "name"),
        ["name taken"] = (Blue with { Name = "red" }, Conflict, "name"),
        ["driver not overlay"] = (Blue with { Driver = "bridge" }, InvalidArgument, "driver"),
        ["subnet without a length"] = (Blue with { Subnet = "198.18.0.0" }, InvalidArgument, "subnet"),
        ["subnet with host bits"] = (Blue with { Subnet = "198.18.0.5/24" }, InvalidArgument, "subnet"),
        ["subnet length 33"] = (Blue with { Subnet = "198.18.0.0/33" }, InvalidArgument, "subnet"),
        ["subnet IPv6"] = (Blue with { Subnet = "2001:db8::/64" }, InvalidArgument, "subnet"),
        ["subnet /31 too small"] = (Blue with { Subnet = "198.18.0.0/31" }, InvalidArgument, "subnet"),
        ["subnet /7 too large"] = (Blue with { Subnet = "198.0.0.0/7" }, InvalidArgument, "subnet"),
        ["subnet overlaps a larger one"] = (Blue with { Subnet = "198.18.0.0/16" }, Conflict, "subnet"),
        ["subnet inside another"] = (Blue with { Subnet = "198.18.1.128/25" }, Conflict, "subnet"),
        ["gateway not an address"] = (Blue with { Gateway = "gw" }, InvalidArgument, "gateway"),
        ["gateway outside the subnet"] = (Blue with { Gateway = "198.18.2.1" }, InvalidArgument, "gateway"),
        ["gateway the network address"] = (Blue with { Gateway = "198.18.0.0" }, InvalidArgument, "gateway"),
        ["gateway the broadcast address"] = (Blue with { Gateway = "198.18.0.255" }, InvalidArgument, "gateway"),
        ["ip-range malformed"] = (Blue with { IpRange = "198.18.0.128" }, InvalidArgument, "ip-range"),
        ["ip-range outside the subnet"] = (Blue with { IpRange = "198.18.2.0/25" }, InvalidArgument, "ip-range"),
        ["ip-range larger than the subnet"] = (Blue with { IpRange = "198.18.0.0/23" }, InvalidArgument, "ip-range"),
        ["aux address outside the subnet"] = (Blue with { AuxAddresses = Map("host=198.18.2.5") }, InvalidArgument, "aux-address"),
        ["aux address not an address"] = (Blue with { AuxAddresses = Map("host=five") }, InvalidArgument, "aux-address"),
        ["aux address the broadcast address"] = (Blue with { AuxAddresses = Map("host=198.18.0.255") }, InvalidArgument, "aux-address"),
        ["aux address the gateway"] = (Blue with { AuxAddresses = Map("host=198.18.0.1") }, InvalidArgument, "aux-address"),
        ["aux address twice"] = (Blue with { AuxAddresses = Map("a=198.18.0.5", "b=198.18.0.5") }, InvalidArgument, "aux-address"),
        ["aux name with a space"] = (Blue with { AuxAddresses = Map("my host=198.18.0.5") }, InvalidArgument, "aux-address"),
        ["vni 0"] = (Blue with { Vni = 0 }, InvalidArgument, "vni"),
        ["vni 2^24"] = (Blue with { Vni = 16_777_216 }, InvalidArgument, "vni"),
        ["vni taken"] = (Blue with { Vni = 4096 }, Conflict, "vni"),
        ["vni taken through the option"] = (Blue with { Options = Map("com.docker.network.driver.overlay.vxlanid_list=4096") }, Conflict, "vni"),
        ["mtu 575 (below the data path's 576)"] = (Blue with { Mtu = 575 }, InvalidArgument, "mtu"),
        ["mtu above the data path's"] = (Blue with { Mtu = 1451 }, InvalidArgument, "mtu"),
        ["mtu option above the data path's"] = (Blue with { Options = Map("com.docker.network.driver.mtu=9000") }, InvalidArgument, "mtu"),
        ["mtu option not a number"] = (Blue with { Options = Map("com.docker.network.driver.mtu=big") }, InvalidArgument, "opt"),
        ["mtu option contradicts mtu"] = (Blue with { Mtu = 1400, Options = Map("com.docker.network.driver.mtu=1300") }, InvalidArgument, "opt"),
        ["vxlanid_list contradicts vni"] = (Blue with { Vni = 5000, Options = Map("com.docker.network.driver.overlay.vxlanid_list=5001") }, InvalidArgument, "opt"),
        ["vxlanid_list above 2^32"] = (Blue with { Options = Map("com.docker.network.driver.overlay.vxlanid_list=99999999999") }, InvalidArgument, "vni"),
        ["vxlanid_list of two"] = (Blue with { Options = Map("com.docker.network.driver.overlay.vxlanid_list=4097,4098") }, InvalidArgument, "opt"),
        ["encrypted with a value"] = (Blue with { Options = Map("encrypted=false") }, InvalidArgument, "opt"),
        ["unknown option"] = (Blue with { Options = Map("encrypt") }, InvalidArgument, "opt"),
        ["key_file without encrypted"] = (Blue with { Options = Map("key_file=/etc/useroverlay/secret.key") }, InvalidArgument, "opt"),
        ["key_file a relative path"] = (Blue with { Options = Map("encrypted", "key_file=secret.key") }, InvalidArgument, "opt"),
        ["key_file empty"] = (Blue with { Options = Map("encrypted", "key_file=") }, InvalidArgument, "opt"),
        ["key_file with a control character"] = (Blue with { Options = Map("encrypted", "key_file=/etc/a\nb") }, InvalidArgument, "opt"),
        ["label with an empty key"] = (Blue with { Labels = new Dictionary<string, string> { [""] = "x" } }, InvalidArgument, "label"),
        ["label key with a space"] = (Blue with { Labels = new Dictionary<string, string> { ["a b"] = "x" } }, InvalidArgument, "label"),
        ["label key with a newline"] = (Blue with { Labels = new Dictionary<string, string> { ["a\nb"] = "x" } }, InvalidArgument, "label"),
        ["label value with a newline"] = (Blue with { Labels = new Dictionary<string, string> { ["a"] = "x\ny" } }, InvalidArgument, "label"),
    };

    public static TheoryData<string> RefusalNames => [.. Refusals.Keys];

    [Theory]
    [MemberData(nameof(RefusalNames))]
    public void Refuses_with_the_field_and_code(string refusal)
    {
        var (request, code, field) = Refusals[refusal];
        var e = Assert.Throws<ControlException>(() => NetworkValidator.Validate(request, [Red], Options));
        Assert.Equal((code, field), (e.Code, e.Field));
        Assert.StartsWith(field + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("198.18.0.0", "is the network address")]
    [InlineData("198.18.0.255", "is the broadcast address")]
    public void A_gateway_on_the_network_or_broadcast_address_is_named_as_such(string gateway, string says)
    {
        var e = Assert.Throws<ControlException>(() => NetworkValidator.Validate(Blue with { Gateway = gateway }, [], Options));
        Assert.Equal($"gateway: {gateway} {says} of 198.18.0.0/24", e.Message);
    }

    [Fact]
    public void The_unchanged_request_is_accepted_so_each_refusal_is_caused_by_its_change()
    {
        var def = NetworkValidator.Validate(Blue, [Red], Options);
        Assert.Equal("blue", def.Name);
    }

    [Fact]
    public void Fills_in_gateway_vni_id_scope_and_docker_options()
    {
        var def = NetworkValidator.Validate(Blue with { Encrypted = true, Mtu = 1400, Labels = new Dictionary<string, string> { ["team"] = "a" } }, [Red], Options);
        Assert.Equal("198.18.0.1", VtepEndpoint.FormatAddress(def.Gateway!.Value));
        Assert.Equal(4097u, def.Vni);   // red has 4096
        Assert.True(ObjectIds.IsValid(def.Id));
        Assert.NotEqual(Red.Id, def.Id);
        Assert.Equal(("overlay", "local"), (def.Driver, def.Scope));
        Assert.Equal(new Dictionary<string, string>
        {
            ["com.docker.network.driver.overlay.vxlanid_list"] = "4097",
            ["encrypted"] = "",
            ["com.docker.network.driver.mtu"] = "1400",
        }, def.Options);
        Assert.Equal("a", def.Labels["team"]);
    }

    [Fact]
    public void Keeps_key_file_as_an_option_of_an_encrypted_network_so_only_its_path_is_stored()
    {
        var def = NetworkValidator.Validate(Blue with { Options = Map("encrypted", "key_file=/etc/useroverlay/secret.key") }, [Red], Options);
        Assert.True(def.Encrypted);
        Assert.Equal("/etc/useroverlay/secret.key", def.Options["key_file"]);
        var flag = NetworkValidator.Validate(Blue with { Encrypted = true, Options = Map("key_file=/k") }, [Red], Options);
        Assert.Equal("/k", flag.Options["key_file"]);
    }

    [Fact]
    public void Takes_the_options_as_docker_does()
    {
        var def = NetworkValidator.Validate(Blue with
        {
            Options = Map("encrypted", "com.docker.network.driver.mtu=1300", "com.docker.network.driver.overlay.vxlanid_list=42"),
            Gateway = "198.18.0.254",
            IpRange = "198.18.0.128/25",
            AuxAddresses = Map("router=198.18.0.2"),
        }, [Red], Options);
        Assert.Equal((true, 1300, 42u), (def.Encrypted, def.Mtu, def.Vni));
        Assert.Equal("198.18.0.254", VtepEndpoint.FormatAddress(def.Gateway!.Value));
        Assert.Equal("198.18.0.128/25", def.IpRange.ToString());
        Assert.Equal(new AuxAddress("router", 0xC612_0002), Assert.Single(def.AuxAddresses));
    }

    [Fact]
    public void Automatic_vni_is_the_lowest_free_from_4096()
    {
        var pinned = NetworkValidator.Validate(new() { Name = "p", Subnet = "198.18.2.0/24", Vni = 4098 }, [Red], Options);
        var low = NetworkValidator.Validate(new() { Name = "low", Subnet = "198.18.3.0/24", Vni = 7 }, [Red, pinned], Options);
        var a = NetworkValidator.Validate(new() { Name = "a", Subnet = "198.18.4.0/24" }, [Red, pinned, low], Options);
        var b = NetworkValidator.Validate(new() { Name = "b", Subnet = "198.18.5.0/24" }, [Red, pinned, low, a], Options);
        Assert.Equal((4097u, 4099u), (a.Vni, b.Vni));
    }

    [Fact]
    public void Without_a_subnet_takes_the_first_free_slash24_of_the_default_pool_or_needs_one()
    {
        var pools = Options with { DefaultAddressPools = [new Ipv4Prefix(0xC612_0000, 15)] };
        var first = NetworkValidator.Validate(new() { Name = "a" }, [Red], pools);
        Assert.Equal("198.18.0.0/24", first.Subnet.ToString());
        var second = NetworkValidator.Validate(new() { Name = "b" }, [Red, first], pools);
        Assert.Equal("198.18.2.0/24", second.Subnet.ToString());   // .1 is red's

        var e = Assert.Throws<ControlException>(() => NetworkValidator.Validate(new() { Name = "c" }, [], Options));
        Assert.Equal((InvalidArgument, "subnet"), (e.Code, e.Field));
    }

    [Theory]
    [InlineData("novalue")]
    [InlineData("=value")]
    public void Key_value_flags_need_a_key_and_an_equals_sign(string item)
    {
        var e = Assert.Throws<ControlException>(() => KeyValueList.Parse("label", [item]));
        Assert.Equal((InvalidArgument, "label"), (e.Code, e.Field));
    }

    [Fact]
    public void Key_value_flags_split_at_the_first_equals_and_refuse_a_repeated_key()
    {
        Assert.Equal("b=c", KeyValueList.Parse("label", ["a=b=c"])["a"]);
        Assert.Equal("", KeyValueList.Parse("opt", ["encrypted"], valueOptional: true)["encrypted"]);
        Assert.Throws<ControlException>(() => KeyValueList.Parse("label", ["a=1", "a=2"]));
    }
}
