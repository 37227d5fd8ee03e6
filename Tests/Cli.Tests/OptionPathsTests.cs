using UserOverlay.Cli.Config;
using UserOverlay.Crypto;
using UserOverlay.Router;

namespace UserOverlay.Cli.Tests;

/// <summary>The router library names its own property paths in errors; the CLI maps them to the YAML file's fields.</summary>
public class OptionPathsTests
{
    private static uint Ip(string dotted) => Ipv4Prefix.TryParseAddress(dotted, out uint a) ? a : throw new ArgumentException(dotted);

    [Fact]
    public void The_library_reports_property_paths_not_yaml_names()
    {
        var blue = new NetworkOptions { Name = "blue", Vni = 4097, Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 24) };
        var errors = new RouterOptions
        {
            Underlay = new VtepEndpoint(Ip("192.0.2.1"), 4789),
            Networks = [blue, blue with { Name = "red" }],
            Endpoints = [new EndpointOptions { Network = "blue", Netns = "c1", Address = Ip("198.19.0.11"), PrefixLength = 24 }],
            StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = MacAddress.Parse("02:42:c6:12:00:63"), Vtep = new VtepEndpoint(Ip("192.0.2.1"), 4789) }],
            BatchSize = 0,
            UnderlayMtu = 100,
            FdbAging = TimeSpan.Zero,
            Encryption = new EncryptionOptions { Keys = new StaticNetworkKeySource(), Esp = new EspOptions { RekeyInterval = TimeSpan.Zero } },
        }.Validate();
        var paths = errors.Select(e => e.Path).ToList();
        foreach (string p in new[] { "BatchSize", "UnderlayMtu", "FdbAging", "Networks[1].Vni", "Endpoints[0].Address", "StaticFdb[0].Vtep", "Encryption.Esp.RekeyInterval" })
            Assert.True(paths.Contains(p), $"no error at {p}; got: {string.Join(" | ", errors)}");
        Assert.DoesNotContain(errors, e => e.Path.Contains('_') || char.IsLower(e.Path[0]));
        Assert.Contains("Networks[0]", errors.Single(e => e.Path == "Networks[1].Vni").Message);
    }

    public static TheoryData<string, string> Paths => new()
    {
        { "BatchSize", "batch_size" },
        { "Queues", "queues" },
        { "FdbAging", "fdb_aging" },
        { "UnansweredAging", "fdb_unanswered" },
        { "IoUring", "io_uring" },
        { "TapOffload", "offload" },
        { "UnderlayMtu", "underlay.mtu" },
        { "Underlay.Address", "underlay.address" },
        { "Peers[2]", "peers[2]" },
        { "Networks[1].Vni", "networks[1].vni" },
        { "Networks[0].Key", "networks[0].key" },
        { "Endpoints[1].Mac", "endpoints[3].mac" },     // entry 1 of the parsed list is entry 3 of the file
        { "StaticFdb[0].Vtep", "fdb[2].vtep" },
        { "Encryption.Esp.RekeyInterval", "encryption.rekey_interval" },
        { "Encryption.Esp.Encapsulation", "encryption.esp" },
        { "Encryption.Esp.UdpPort", "encryption.udp_port" },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public void Property_paths_map_to_yaml_fields(string options, string yaml) =>
        Assert.Equal(yaml, new OptionPaths([0, 3], [2]).ToYaml(options));

    [Fact]
    public void References_to_other_entries_in_a_message_are_mapped_too() =>
        Assert.Equal("'blue' is already the name of networks[0]; see also endpoints[3] and fdb[2]",
            new OptionPaths([0, 3], [2]).ToYamlMessage("'blue' is already the name of Networks[0]; see also Endpoints[1] and StaticFdb[0]"));

    [Fact]
    public void A_library_error_in_a_file_names_the_yaml_field_and_its_line()
    {
        var errors = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("""
            underlay: { address: 192.0.2.1 }
            networks:
              - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
              - { name: red, vni: 4097, subnet: 198.18.2.0/24 }
            """, "host.yaml", checkNamespaces: false)).Errors;
        var e = Assert.Single(errors);
        Assert.Equal("networks[1].vni", e.Path);
        Assert.Equal(4, e.Line);
        Assert.Contains("networks[0] ('blue')", e.Message);
        Assert.DoesNotContain("Networks[", e.Message);
    }
}
