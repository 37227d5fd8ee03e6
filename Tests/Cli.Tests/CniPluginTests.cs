using System.Text;
using System.Text.Json;
using UserOverlay.Cli.Cni;

namespace UserOverlay.Cli.Tests;

/// <summary>
/// The CNI plugin's side of the specification that needs no router: VERSION, the error shape and codes for a missing
/// or malformed environment and configuration, and code 11 (50 for STATUS) when the router is down; against
/// <see cref="FakeRouter"/>, what it asks the router and how the router's errors map. Real routers, namespaces and
/// runtimes: Integration.Tests (CniPluginTests, PodmanCniTests).
/// </summary>
public class CniPluginTests
{
    private const string Conf = """{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","host":"HOST"}""";

    private static Dictionary<string, string> Env(string command, params (string Key, string? Value)[] changes)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = "c0ffee",
            ["CNI_NETNS"] = "/run/netns/uo-cni-test-none",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/nonexistent-cni-bin",
        };
        foreach (var (k, v) in changes)
            if (v is null) env.Remove(k);
            else env[k] = v;
        return env;
    }

    private static (int Exit, string Out) Run(Dictionary<string, string> env, string stdin, string socketDirectory = "/nonexistent-uo-sockets")
    {
        var output = new StringWriter();
        int exit = CniPlugin.Run(k => env.GetValueOrDefault(k), new MemoryStream(Encoding.UTF8.GetBytes(stdin)), output, socketDirectory);
        return (exit, output.ToString());
    }

    /// <summary>The call failed with exit 1 and the specification's error object with <paramref name="code"/>, its msg containing <paramref name="contains"/>.</summary>
    private static JsonElement Fails(int code, string contains, (int Exit, string Out) r, string version = "1.1.0")
    {
        Assert.True(r.Exit == 1, $"exit {r.Exit}, expected 1; stdout: {r.Out}");
        using var doc = JsonDocument.Parse(r.Out);
        var e = doc.RootElement.Clone();
        Assert.Equal(code, e.GetProperty("code").GetInt32());
        Assert.Equal(version, e.GetProperty("cniVersion").GetString());
        Assert.Contains(contains, e.GetProperty("msg").GetString());
        return e;
    }

    [Theory]
    [InlineData("/usr/lib/cni/useroverlay-cni", new string[0], true)]
    [InlineData("useroverlay-cni", new string[0], true)]
    [InlineData("/usr/local/bin/useroverlay", new string[0], false)]
    [InlineData("/usr/local/bin/useroverlay", new[] { "--cni-plugin" }, true)]
    [InlineData("/usr/local/bin/useroverlay", new[] { "--cni-plugin", "status" }, false)]
    [InlineData("/usr/local/bin/useroverlay-cni-old", new string[0], false)]
    public void The_binary_is_the_plugin_under_its_name_or_with_the_wrapper_flag(string argv0, string[] args, bool plugin) =>
        Assert.Equal(plugin, CniPlugin.IsInvocation(argv0, args));

    [Theory]
    [InlineData("")]
    [InlineData("""{"cniVersion":"1.0.0"}""")]
    public void Version_lists_the_three_versions_it_speaks(string stdin)
    {
        var (exit, output) = Run(Env("VERSION"), stdin);
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(["0.4.0", "1.0.0", "1.1.0"], doc.RootElement.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal(stdin.Length == 0 ? "1.1.0" : "1.0.0", doc.RootElement.GetProperty("cniVersion").GetString());
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID")]
    [InlineData("ADD", "CNI_NETNS")]
    [InlineData("ADD", "CNI_IFNAME")]
    [InlineData("ADD", "CNI_PATH")]
    [InlineData("DEL", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_IFNAME")]
    [InlineData("CHECK", "CNI_NETNS")]
    [InlineData("GC", "CNI_PATH")]
    public void A_missing_required_variable_is_code_4_naming_it(string command, string variable)
    {
        string conf = command == "GC" ? Conf.Replace("}", ""","cni.dev/valid-attachments":[]}""") : Conf;
        Fails(4, variable, Run(Env(command, (variable, null)), conf));
        Fails(4, variable, Run(Env(command, (variable, "")), conf));
    }

    [Theory]
    [InlineData("CNI_COMMAND", "", "CNI_COMMAND is not set")]
    [InlineData("CNI_COMMAND", "FROB", "'FROB' is not ADD, DEL")]
    [InlineData("CNI_CONTAINERID", "-bad", "CNI_CONTAINERID '-bad'")]
    [InlineData("CNI_CONTAINERID", "a/b", "CNI_CONTAINERID 'a/b'")]
    [InlineData("CNI_IFNAME", "eth0:1", "CNI_IFNAME 'eth0:1'")]
    [InlineData("CNI_IFNAME", "a-very-long-interface", "CNI_IFNAME")]
    [InlineData("CNI_ARGS", "IgnoreUnknown=1;junk", "CNI_ARGS: 'junk'")]
    public void A_malformed_variable_is_code_4_naming_it(string variable, string value, string contains) =>
        Fails(4, contains, Run(Env("ADD", (variable, value)), Conf));

    [Theory]
    [InlineData("not json", 6, "not JSON")]
    [InlineData("", 6, "not JSON")]
    [InlineData("[1,2]", 7, "not an object")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni"}""", 7, "network: is required")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":5}""", 7, "network:")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"bridge","network":"blue"}""", 7, "type: is 'bridge'")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","ipam":"host-local"}""", 7, "ipam: must be an object")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","ipam":{}}""", 7, "ipam.type: is required")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","ipam":{"type":"host-local"}}""", 7, "no plugin 'host-local' in CNI_PATH")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","ipam":{"type":"../x"}}""", 7, "not a plugin name")]
    [InlineData("""{"cniVersion":"1.1.0","name":"uo","type":"useroverlay-cni","network":"blue","host":"bad name!"}""", 7, "host:")]
    public void A_bad_configuration_is_code_6_or_7_naming_the_field(string stdin, int code, string contains) =>
        Fails(code, contains, Run(Env("ADD"), stdin));

    [Theory]
    [InlineData("0.3.1", "ADD")]
    [InlineData("2.0.0", "DEL")]
    [InlineData(null, "CHECK")]
    public void An_unsupported_cniVersion_is_code_1(string? version, string command)
    {
        string conf = version is null ? """{"name":"uo","type":"useroverlay-cni","network":"blue"}"""
            : $$"""{"cniVersion":"{{version}}","name":"uo","type":"useroverlay-cni","network":"blue"}""";
        Fails(1, "is not supported", Run(Env(command), conf));
    }

    [Theory]
    [InlineData("GC")]
    [InlineData("STATUS")]
    public void Gc_and_status_need_1_1_0(string command) =>
        Fails(1, $"{command} is defined from CNI 1.1.0", Run(Env(command), Conf.Replace("1.1.0", "1.0.0")), "1.0.0");

    [Fact]
    public void Gc_without_the_valid_attachments_list_is_code_7_and_removes_nothing()
    {
        using var r = new FakeRouter("r1");
        Fails(7, "cni.dev/valid-attachments", Run(Env("GC"), Conf.Replace("HOST", r.SocketPath)));
        Assert.Empty(r.Received);
    }

    [Theory]
    [InlineData("ADD")]
    [InlineData("DEL")]
    [InlineData("CHECK")]
    [InlineData("GC")]
    public void A_router_that_is_not_running_is_code_11(string command)
    {
        string conf = command switch
        {
            "CHECK" => Conf.Replace("}", ""","prevResult":{"cniVersion":"1.1.0"}}"""),
            "GC" => Conf.Replace("}", ""","cni.dev/valid-attachments":[]}"""),
            _ => Conf,
        };
        // No such router; and a killed router's socket file that nobody listens on.
        Fails(11, "no router named 'gone' is running", Run(Env(command), conf.Replace("HOST", "gone")));
        using var stale = new FakeRouter("stale", listen: false);
        Fails(11, "cannot reach the router", Run(Env(command), conf.Replace("HOST", stale.SocketPath)));
    }

    [Fact]
    public void Status_is_code_50_when_the_router_is_down_or_lacks_the_network_and_silent_when_it_can_serve()
    {
        Fails(50, "cannot attach containers to network 'blue'", Run(Env("STATUS"), Conf.Replace("HOST", "gone")));
        using var r = new FakeRouter("r1");
        r.On("GET /v1/networks/blue", 404, """{"code":"not_found","message":"network: no network is named 'blue'"}""");
        Fails(50, "no network is named 'blue'", Run(Env("STATUS"), Conf.Replace("HOST", r.SocketPath)));
        r.On("GET /v1/networks/blue", 200, """{"Name":"blue"}""");
        Assert.Equal((0, ""), Run(Env("STATUS"), Conf.Replace("HOST", r.SocketPath)));
    }

    [Fact]
    public void Add_asks_for_the_namespace_interface_and_endpoint_name_and_a_router_not_ready_is_code_11()
    {
        using var r = new FakeRouter("r1");
        r.On("POST /v1/networks/blue/connect", 503, """{"code":"unavailable","message":"network: 'blue' is the cluster's, and this host is not connected to the cluster now"}""");
        var e = Fails(11, "not connected to the cluster", Run(Env("ADD", ("CNI_IFNAME", "net1"), ("CNI_ARGS", "IgnoreUnknown=1;IP=198.18.9.7")), Conf.Replace("HOST", r.SocketPath)));
        Assert.Contains("503 unavailable", e.GetProperty("details").GetString());
        var (request, body) = Assert.Single(r.Received);
        Assert.Equal("POST /v1/networks/blue/connect", request);
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("/run/netns/uo-cni-test-none", doc.RootElement.GetProperty("netns").GetString());
        Assert.Equal("cni-c0ffee-net1", doc.RootElement.GetProperty("name").GetString());
        Assert.Equal("net1", doc.RootElement.GetProperty("interface").GetString());
        Assert.Equal("198.18.9.7", doc.RootElement.GetProperty("address").GetString());
    }

    [Fact]
    public void Del_of_an_endpoint_or_network_already_gone_succeeds_silently()
    {
        using var r = new FakeRouter("r1");
        r.On("POST /v1/networks/blue/disconnect", 404, """{"code":"not_found","message":"netns: 'cni-c0ffee' is not connected to network 'blue'"}""");
        Assert.Equal((0, ""), Run(Env("DEL", ("CNI_NETNS", "")), Conf.Replace("HOST", r.SocketPath)));
        var (request, body) = Assert.Single(r.Received);
        Assert.Equal("POST /v1/networks/blue/disconnect", request);
        Assert.Contains("\"cni-c0ffee\"", body);
    }
}
