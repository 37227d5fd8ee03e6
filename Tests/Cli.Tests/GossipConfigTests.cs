using UserOverlay.Cli.Config;
using UserOverlay.Membership;

namespace UserOverlay.Cli.Tests;

/// <summary>The <c>gossip:</c> section: the documented example, defaults, serf-compatible keys, and errors naming file, line and field.</summary>
public class GossipConfigTests
{
    // A 32-byte key, as `serf keygen` prints one.
    private const string Key = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

    private const string Valid = """
        underlay: { address: 192.0.2.1 }
        gossip:
          bind: 192.0.2.1:7946
          join: [192.0.2.2, "192.0.2.3:7947", seed.example]
          key: T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=
          name: host1
          profile: local
          probe_interval: 500ms
          suspicion_mult: 3
          push_pull_interval: 10s
          reconnect_interval: 2s
        networks:
          - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
        endpoints:
          - { network: blue, netns: c1, address: 198.18.0.11/24 }
        """;

    private static HostConfig Parse(string yaml, string file = "host.yaml") => ConfigLoader.Parse(yaml, file, checkNamespaces: false);

    private static IReadOnlyList<ConfigError> Errors(string yaml) => Assert.Throws<ConfigException>(() => Parse(yaml)).Errors;

    [Fact]
    public void The_documented_example_loads()
    {
        var c = Parse(Valid);
        var g = c.Gossip!;
        Assert.Equal("192.0.2.1:7946", g.Bind.ToString());
        Assert.Equal(["192.0.2.2:7946", "192.0.2.3:7947", "seed.example:7946"], g.Join);
        Assert.Equal(Convert.FromBase64String(Key), Assert.Single(g.Keys));
        Assert.Equal("host1", g.EffectiveName("ignored"));
        Assert.Equal(GossipProfile.Local, g.Profile);
        Assert.Empty(c.Router.Peers);        // no static peers needed
        Assert.False(c.Router.Learning);     // no data-plane learning in gossip mode, unless asked

        var mo = g.ToMembershipOptions("r1");
        var local = MembershipOptions.DefaultLocal();
        Assert.Equal("host1", mo.Name);
        Assert.Equal(7946, mo.BindPort);
        Assert.Equal(TimeSpan.FromMilliseconds(500), mo.ProbeInterval);
        Assert.True(mo.ProbeTimeout <= TimeSpan.FromMilliseconds(250));
        Assert.Equal(3, mo.SuspicionMult);
        Assert.Equal(TimeSpan.FromSeconds(10), mo.PushPullInterval);
        Assert.Equal(TimeSpan.FromSeconds(2), mo.ReconnectInterval);
        Assert.Equal(local.GossipInterval, mo.GossipInterval);   // the rest comes from the profile
        Assert.Equal(Convert.FromBase64String(Key), mo.Keyring!.PrimaryKey.ToArray());
    }

    [Fact]
    public void Defaults_apply_to_a_minimal_section()
    {
        var c = Parse("""
            underlay: { address: 192.0.2.4 }
            gossip: { bind: 192.0.2.4 }
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]
            """);
        var g = c.Gossip!;
        Assert.Equal(7946, g.Bind.Port);
        Assert.Empty(g.Join);                            // the first host waits for others
        Assert.Empty(g.Keys);
        Assert.Equal("r4-192.0.2.4", g.EffectiveName("r4")); // unique without configuration: no two members share an address
        Assert.Equal(GossipProfile.Lan, g.Profile);
        var mo = g.ToMembershipOptions("r4");
        Assert.Null(mo.Keyring);
        Assert.Equal(MembershipOptions.DefaultLan().ProbeInterval, mo.ProbeInterval);
        Assert.Equal(MembershipOptions.DefaultLan().ReconnectInterval, mo.ReconnectInterval);
        Assert.False(c.Router.Learning);
    }

    [Fact]
    public void Static_peers_and_learning_are_still_accepted_with_gossip()
    {
        var c = Parse("""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.9]
            learning: true
            gossip: { bind: 192.0.2.1, join: [192.0.2.2] }
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]
            """);
        Assert.Equal("192.0.2.9:4789", Assert.Single(c.Router.Peers).ToString());
        Assert.True(c.Router.Learning);
        Assert.NotNull(c.Gossip);
    }

    [Fact]
    public void Without_gossip_nothing_changes()
    {
        var c = Parse("""
            underlay: { address: 192.0.2.1 }
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]
            """);
        Assert.Null(c.Gossip);
        Assert.True(c.Router.Learning);
    }

    [Theory]
    [InlineData("one key", Key, 1)]
    [InlineData("serf keyring file", "[\"" + Key + "\", \"AAECAwQFBgcICQoLDA0ODw==\"]", 2)]
    public void A_key_file_holds_one_base64_key_or_a_serf_keyring(string what, string content, int keys)
    {
        string dir = Directory.CreateTempSubdirectory("uo-gossip-cfg").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "gossip.key"), content + "\n");
            // Relative to the configuration file's directory.
            var c = Parse("""
                underlay: { address: 192.0.2.1 }
                gossip: { bind: 192.0.2.1, key_file: gossip.key }
                networks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]
                """, Path.Combine(dir, "host.yaml"));
            Assert.True(keys == c.Gossip!.Keys.Count, what);
            Assert.Equal(Convert.FromBase64String(Key), c.Gossip.Keys[0]); // the first is the primary
            Assert.Equal(keys - 1, c.Gossip.ToMembershipOptions("r").Keyring!.Keys.Count - 1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<string, string, int, string> BadFiles => new()
    {
        { "gossip not a mapping", "underlay: { address: 192.0.2.1 }\ngossip: [192.0.2.2]\nnetworks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]\n", 2, "gossip" },
        { "bind missing", Valid.Replace("  bind: 192.0.2.1:7946\n", ""), 3, "gossip.bind" },
        { "bind not an address", Valid.Replace("bind: 192.0.2.1:7946", "bind: banana"), 3, "gossip.bind" },
        { "bind port out of range", Valid.Replace("bind: 192.0.2.1:7946", "bind: 192.0.2.1:70000"), 3, "gossip.bind" },
        { "bind on the data port", Valid.Replace("bind: 192.0.2.1:7946", "bind: 192.0.2.1:4789"), 3, "gossip.bind" },
        { "join not a list", Valid.Replace("join: [192.0.2.2, \"192.0.2.3:7947\", seed.example]", "join: { a: b }"), 4, "gossip.join" },
        { "join bad port", Valid.Replace("\"192.0.2.3:7947\"", "\"192.0.2.3:x\""), 4, "gossip.join[1]" },
        { "join bad host", Valid.Replace("seed.example", "\"not a host\""), 4, "gossip.join[2]" },
        { "key not base64", Valid.Replace("key: " + Key, "key: not-base64!"), 5, "gossip.key" },
        { "key of the wrong size", Valid.Replace("key: " + Key, "key: AAECAwQFBgc="), 5, "gossip.key" },
        { "key and key_file", Valid.Replace("  name: host1", "  key_file: /etc/k\n  name: host1"), 6, "gossip.key_file" },
        { "key file missing", Valid.Replace("key: " + Key, "key_file: /nonexistent/uo-gossip.key"), 5, "gossip.key_file" },
        { "name with spaces", Valid.Replace("name: host1", "name: \"host 1\""), 6, "gossip.name" },
        { "unknown profile", Valid.Replace("profile: local", "profile: fast"), 7, "gossip.profile" },
        { "bad duration", Valid.Replace("probe_interval: 500ms", "probe_interval: soon"), 8, "gossip.probe_interval" },
        { "probe interval too short", Valid.Replace("probe_interval: 500ms", "probe_interval: 1ms"), 8, "gossip.probe_interval" },
        { "suspicion_mult out of range", Valid.Replace("suspicion_mult: 3", "suspicion_mult: 0"), 9, "gossip.suspicion_mult" },
        { "unknown field with a hint", Valid.Replace("  name: host1", "  nmae: host1"), 6, "gossip.nmae" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Errors_name_file_line_and_field(string what, string yaml, int line, string path)
        => ConfigAssert.ErrorAt(Errors(yaml), what, line, path);

    [Fact]
    public void Messages_say_what_to_do()
    {
        Assert.Contains("did you mean 'name'", Errors(Valid.Replace("  name: host1", "  nmae: host1"))[0].Message);
        Assert.Contains("16, 24 or 32 bytes", Errors(Valid.Replace("key: " + Key, "key: AAECAwQFBgc="))[0].Message);
        Assert.Contains("serf keygen", Errors(Valid.Replace("key: " + Key, "key: not-base64!"))[0].Message);
        Assert.Contains("lan, wan or local", Errors(Valid.Replace("profile: local", "profile: fast"))[0].Message);
        Assert.Contains("is required", Errors(Valid.Replace("  bind: 192.0.2.1:7946\n", ""))[0].Message);
    }

    [Fact]
    public void Gossip_errors_are_reported_with_the_others_at_once()
    {
        var errors = Errors(Valid.Replace("profile: local", "profile: fast").Replace("vni: 4097", "vni: 0").Replace("key: " + Key, "key: AAAA"));
        Assert.Contains(errors, e => e.Path == "gossip.profile");
        Assert.Contains(errors, e => e.Path == "gossip.key");
        Assert.Contains(errors, e => e.Path == "networks[0].vni");
    }

    [Theory]
    [InlineData("host1.yaml", "192.0.2.1", 0)]
    [InlineData("host2.yaml", "192.0.2.2", 1)]
    [InlineData("host3.yaml", "192.0.2.3", 1)]
    public void The_sample_gossip_configurations_are_valid(string file, string address, int seeds)
    {
        var c = ConfigLoader.Load(Path.Combine(UserOverlay.Testing.Common.Repo.Root, "samples", "gossip", file), checkNamespaces: false);
        Assert.Equal(address + ":7946", c.Gossip!.Bind.ToString());
        Assert.Equal(seeds, c.Gossip.Join.Count);
        Assert.Empty(c.Router.Peers);
        Assert.False(c.Router.Learning);
        Assert.Equal(32, c.Gossip.Keys[0].Length);
    }
}
