using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Cli.Commands;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cli.Tests;

/// <summary>What the client commands print: network ls and ps tables, their -q forms, inspect's array.</summary>
public class ClientOutputTests
{
    private const string BlueId = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    private const string RedId = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";

    private static NetworkInspect Network(string name, string id, string subnet, uint vni) => new()
    {
        Name = name,
        Id = id,
        Created = "2026-12-02T14:00:00.0000000Z",
        Scope = "local",
        Driver = "overlay",
        Ipam = new IpamInspect { Config = [new IpamConfigInspect { Subnet = subnet, Gateway = subnet.Replace(".0/24", ".1") }] },
        Containers = new Dictionary<string, EndpointInspect>(),
        Options = new Dictionary<string, string> { [NetworkValidator.VxlanIdListOption] = vni.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        Labels = new Dictionary<string, string>(),
    };

    [Fact]
    public void Network_ls_prints_dockers_columns_plus_vni_and_subnet_with_12_character_ids()
    {
        string table = NetworkCommand.FormatList([Network("blue", BlueId, "198.18.1.0/24", 4096), Network("red-network", RedId, "198.18.2.0/24", 16777215)]);
        Assert.Equal("""
            NETWORK ID     NAME          DRIVER    SCOPE   VNI        SUBNET
            3f2a9c1b7d4e   blue          overlay   local   4096       198.18.1.0/24
            c0ffee001122   red-network   overlay   local   16777215   198.18.2.0/24

            """.ReplaceLineEndings("\n"), table);
    }

    [Fact]
    public void Network_ls_q_prints_one_id_a_line_and_no_trunc_the_full_ids()
    {
        var list = new[] { Network("blue", BlueId, "198.18.1.0/24", 4096), Network("red", RedId, "198.18.2.0/24", 4097) };
        Assert.Equal("3f2a9c1b7d4e\nc0ffee001122\n", NetworkCommand.FormatList(list, quiet: true));
        Assert.Equal(BlueId + "\n" + RedId + "\n", NetworkCommand.FormatList(list, quiet: true, noTrunc: true));
        Assert.Contains(BlueId + "   blue", NetworkCommand.FormatList(list, noTrunc: true));
        Assert.Equal("NETWORK ID   NAME   DRIVER   SCOPE   VNI   SUBNET\n", NetworkCommand.FormatList([]));
    }

    [Fact]
    public void Ps_prints_name_namespace_networks_with_addresses_and_age()
    {
        var now = DateTimeOffset.Parse("2026-12-02T14:10:00Z", System.Globalization.CultureInfo.InvariantCulture);
        WorkloadView W(string name, string created, params (string Net, string Ip)[] eps) => new(name, "uo-" + name, "/run/netns/uo-" + name, T(created), true, null,
            [.. eps.Select(e => new EndpointView("e-" + name, e.Net, "n-" + e.Net, name, "uo-" + name, "eth0", "02:42:c6:12:01:02", e.Ip, []))]);
        var list = new[]
        {
            W("web", "2026-12-02T14:09:55.1234567Z", ("blue", "198.18.1.2/24"), ("red", "198.18.2.2/24")),
            W("db-1", "2026-12-02T12:05:00Z", ("blue", "198.18.1.3/24")),
            W("idle", "2026-11-28T14:10:00Z"),
        };
        Assert.Equal("""
            NAME   NETNS     NETWORKS                               CREATED
            web    uo-web    blue=198.18.1.2/24,red=198.18.2.2/24   4 seconds ago
            db-1   uo-db-1   blue=198.18.1.3/24                     2 hours ago
            idle   uo-idle   -                                      4 days ago

            """.ReplaceLineEndings("\n"), PsCommand.Format(list, now));
        Assert.Equal("web\ndb-1\nidle\n", PsCommand.Format(list, now, quiet: true));
    }

    private static DateTimeOffset T(string s) => DateTimeOffset.Parse(s, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Ages_read_like_dockers()
    {
        var now = T("2026-12-02T14:10:00Z");
        Assert.Equal("just now", TextTable.Ago(T("2026-12-02T14:10:00Z"), now));
        Assert.Equal("1 second ago", TextTable.Ago(T("2026-12-02T14:09:59Z"), now));
        Assert.Equal("1 minute ago", TextTable.Ago(T("2026-12-02T14:09:00Z"), now));
        Assert.Equal("25 hours ago", TextTable.Ago(T("2026-12-01T13:10:00Z"), now));
        Assert.Equal("3 days ago", TextTable.Ago(T("2026-11-29T14:10:00Z"), now));
    }

    [Fact]
    public void Inspect_prints_the_routers_objects_verbatim_as_one_array_indented_by_four()
    {
        string array = NetworkCommand.JsonArray(["""{"Name":"blue","Future":{"X":1}}""", """{"Name":"red"}"""]);
        Assert.Equal("""
            [
                {
                    "Name": "blue",
                    "Future": {
                        "X": 1
                    }
                },
                {
                    "Name": "red"
                }
            ]

            """.ReplaceLineEndings("\n"), array);
        Assert.Equal("[]\n", NetworkCommand.JsonArray([]));
    }
}
