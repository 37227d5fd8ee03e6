using System.Text.Json;

namespace UserOverlay.Cli.Tests;

/// <summary>
/// The client commands against a socket that answers as the contract says (FakeRouter): the requests they send,
/// what they print, and how the router's errors reach the user. The real daemon: Integration.Tests/CliNetworkTests.
/// </summary>
public class ClientRequestTests
{
    private const string BlueId = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    private static string Inspect(string name, string id) => $$$"""
        {"Name":"{{{name}}}","Id":"{{{id}}}","Created":"2026-12-02T14:00:00.0000000Z","Scope":"local","Driver":"overlay","EnableIPv6":false,
         "IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"198.18.1.0/24","Gateway":"198.18.1.1"}]},"Internal":false,"Attachable":false,
         "Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{},"Options":{"com.docker.network.driver.overlay.vxlanid_list":"4096"},"Labels":{}}
        """;

    private static JsonElement Body(FakeRouter r, string request) => JsonDocument.Parse(r.Received.Single(x => x.Request == request).Body).RootElement;

    [Fact]
    public void Network_create_posts_the_flags_in_snake_case_and_prints_the_full_id()
    {
        using var r = new FakeRouter().On("POST /v1/networks", 201, Inspect("blue", BlueId));
        var run = CliRun.Of("network", "create", "-H", r.SocketPath, "--subnet", "198.18.1.0/24", "--ip-range", "198.18.1.128/25", "--aux-address", "printer=198.18.1.5",
            "--vni", "5001", "-o", "encrypted", "--label", "env=test", "--internal", "blue");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(BlueId + "\n", run.Out);
        var b = Body(r, "POST /v1/networks");
        Assert.Equal("blue", b.GetProperty("name").GetString());
        Assert.Equal("198.18.1.0/24", b.GetProperty("subnet").GetString());
        Assert.Equal("198.18.1.128/25", b.GetProperty("ip_range").GetString());
        Assert.Equal("198.18.1.5", b.GetProperty("aux_addresses").GetProperty("printer").GetString());
        Assert.Equal(5001, b.GetProperty("vni").GetInt32());
        Assert.Equal("", b.GetProperty("options").GetProperty("encrypted").GetString());
        Assert.Equal("test", b.GetProperty("labels").GetProperty("env").GetString());
        Assert.True(b.GetProperty("internal").GetBoolean());
        Assert.False(b.TryGetProperty("gateway", out _)); // not given: the router chooses
    }

    [Fact]
    public void The_routers_error_sentence_is_printed_as_is_and_exits_1()
    {
        using var r = new FakeRouter().On("POST /v1/networks", 409, """{"code":"conflict","message":"subnet: 198.18.1.0/24 overlaps network 'red' (198.18.0.0/16)"}""");
        CliRun.Of("network", "create", "-H", r.SocketPath, "--subnet", "198.18.1.0/24", "blue")
            .FailsWithOneSentence(1, "useroverlay: subnet: 198.18.1.0/24 overlaps network 'red' (198.18.0.0/16)");
    }

    [Fact]
    public void A_refused_change_says_to_run_as_root_and_an_answer_without_a_sentence_still_gives_one()
    {
        using var r = new FakeRouter()
            .On("DELETE /v1/networks/blue", 403, """{"code":"permission_denied","message":"this needs root: the router's control socket accepts changes only from uid 0 (you are uid 1000)"}""")
            .On("GET /v1/networks", 502, "<html>bad gateway</html>");
        CliRun.Of("network", "rm", "-H", r.SocketPath, "blue").FailsWithOneSentence(1, "this needs root");
        CliRun.Of("network", "ls", "-H", r.SocketPath).FailsWithOneSentence(1, "the router answered GET /v1/networks with 502");
    }

    [Fact]
    public void Inspect_prints_the_networks_found_and_exits_1_naming_the_missing_one()
    {
        using var r = new FakeRouter()
            .On("GET /v1/networks/blue", 200, Inspect("blue", BlueId))
            .On("GET /v1/networks/nope", 404, """{"code":"not_found","message":"no network named or with id 'nope'"}""");
        var run = CliRun.Of("network", "inspect", "-H", r.SocketPath, "nope", "blue").FailsWithOneSentence(1, "'nope'");
        var array = JsonDocument.Parse(run.Out).RootElement;
        Assert.Equal("blue", Assert.Single(array.EnumerateArray()).GetProperty("Name").GetString());
        Assert.Contains("\n        \"Name\": \"blue\"", run.Out); // indented by four, inside the array
    }

    [Fact]
    public void Network_rm_and_rm_remove_each_print_each_and_go_on_past_a_failure()
    {
        using var r = new FakeRouter()
            .On("DELETE /v1/networks/blue", 204)
            .On("DELETE /v1/networks/red", 409, """{"code":"in_use","message":"network 'red' has endpoints attached: c1, c2"}""")
            .On("DELETE /v1/networks/green", 204)
            .On("DELETE /v1/workloads/w1", 204);
        var run = CliRun.Of("network", "rm", "-H", r.SocketPath, "blue", "red", "green").FailsWithOneSentence(1, "endpoints attached: c1, c2");
        Assert.Equal("blue\ngreen\n", run.Out);
        var rm = CliRun.Of("rm", "-H", r.SocketPath, "w1");
        Assert.Equal((0, "w1\n"), (rm.ExitCode, rm.Out));
    }

    [Fact]
    public void Connect_and_disconnect_post_the_namespace_and_print_the_endpoint()
    {
        const string endpoint = """
            {"id":"e1","network":"blue","network_id":"3f2a","name":"c1","netns":"c1","interface":"eth1","mac_address":"02:42:c6:12:01:09","ipv4_address":"198.18.1.9/24","aliases":["a"]}
            """;
        using var r = new FakeRouter().On("POST /v1/networks/blue/connect", 201, endpoint).On("POST /v1/networks/blue/disconnect", 200, endpoint);
        var run = CliRun.Of("network", "connect", "-H", r.SocketPath, "--ip", "198.18.1.9", "--interface", "eth1", "--alias", "a", "blue", "c1");
        Assert.Equal((0, "c1 on blue: eth1 198.18.1.9/24 02:42:c6:12:01:09\n"), (run.ExitCode, run.Out));
        var b = Body(r, "POST /v1/networks/blue/connect");
        Assert.Equal("c1", b.GetProperty("netns").GetString());
        Assert.Equal("198.18.1.9", b.GetProperty("address").GetString());
        Assert.Equal("eth1", b.GetProperty("interface").GetString());
        Assert.Equal(["a"], b.GetProperty("aliases").EnumerateArray().Select(x => x.GetString()));
        Assert.False(b.TryGetProperty("mac", out _));
        Assert.Equal(0, CliRun.Of("network", "disconnect", "-H", r.SocketPath, "blue", "c1").ExitCode);
        Assert.Equal("c1", Body(r, "POST /v1/networks/blue/disconnect").GetProperty("netns").GetString());
    }

    [Fact]
    public void Connect_to_a_network_with_a_gateway_says_what_to_put_in_resolv_conf()
    {
        const string endpoint = """
            {"id":"e1","network":"blue","network_id":"3f2a","name":"c1","netns":"c1","interface":"eth0","mac_address":"02:42:c6:12:01:09","ipv4_address":"198.18.1.9/24","aliases":[],"gateway":"198.18.1.1"}
            """;
        using var r = new FakeRouter().On("POST /v1/networks/blue/connect", 201, endpoint);
        var run = CliRun.Of("network", "connect", "-H", r.SocketPath, "blue", "c1");
        Assert.Equal((0, "c1 on blue: eth0 198.18.1.9/24 02:42:c6:12:01:09\n"
            + "names: the router answers DNS for blue at 198.18.1.1; put `nameserver 198.18.1.1` in /etc/netns/c1/resolv.conf (ip netns exec c1 reads it)\n"), (run.ExitCode, run.Out));
    }

    [Fact]
    public void Run_d_without_a_command_asks_for_a_detached_workload_and_prints_its_name()
    {
        using var r = new FakeRouter().On("POST /v1/workloads", 201, """
            {"name":"w1","netns":"uo-w1","netns_path":"/run/netns/uo-w1","created":"2026-12-02T14:00:00Z","detached":true,"client_pid":null,"endpoints":[]}
            """);
        var run = CliRun.Of("run", "-H", r.SocketPath, "-d", "--name", "w1", "--network", "blue", "--network", "red", "--ip", "198.18.1.5", "--alias", "db");
        Assert.Equal((0, "w1\n"), (run.ExitCode, run.Out));
        var b = Body(r, "POST /v1/workloads");
        Assert.Equal("w1", b.GetProperty("name").GetString());
        Assert.True(b.GetProperty("detached").GetBoolean());
        Assert.False(b.TryGetProperty("client_pid", out _));
        var nets = b.GetProperty("networks").EnumerateArray().ToList();
        Assert.Equal(["blue", "red"], nets.Select(n => n.GetProperty("network").GetString()));
        Assert.Equal("198.18.1.5", nets[0].GetProperty("address").GetString()); // --ip and --alias: the first network's
        Assert.Equal(["db"], nets[0].GetProperty("aliases").EnumerateArray().Select(x => x.GetString()));
        Assert.False(nets[1].TryGetProperty("address", out _));
        Assert.DoesNotContain(r.Received, x => x.Request.StartsWith("DELETE", StringComparison.Ordinal)); // -d: it stays
    }

    [Fact]
    public void Ps_lists_what_the_router_answers_and_json_prints_it_raw()
    {
        const string body = """[{"name":"w1","netns":"uo-w1","netns_path":"/run/netns/uo-w1","created":"2026-12-02T14:00:00Z","detached":true,"client_pid":null,"endpoints":[{"id":"e","network":"blue","network_id":"n","name":"w1","netns":"uo-w1","interface":"eth0","mac_address":"02:42:c6:12:01:02","ipv4_address":"198.18.1.2/24","aliases":[]}]}]""";
        using var r = new FakeRouter().On("GET /v1/workloads", 200, body);
        var ps = CliRun.Of("ps", "-H", r.SocketPath);
        Assert.Equal(0, ps.ExitCode);
        Assert.Matches(@"^NAME +NETNS +NETWORKS +CREATED\nw1 +uo-w1 +blue=198\.18\.1\.2/24 +(\d+ (second|minute|hour|day)s? ago|just now)\n$", ps.Out);
        Assert.Equal(body + "\n", CliRun.Of("ps", "-H", r.SocketPath, "--json").Out);
        Assert.Equal("w1\n", CliRun.Of("ps", "-H", r.SocketPath, "-q").Out);
    }

    [Fact]
    public void A_socket_nobody_listens_on_is_an_error_that_asks_whether_the_router_runs()
    {
        using var stale = new FakeRouter(listen: false);
        CliRun.Of("status", "-H", stale.SocketPath).FailsWithOneSentence(1, $"cannot reach the router at {stale.SocketPath}");
        CliRun.Of("status", "--name", "uo-nonexistent-" + Environment.ProcessId).FailsWithOneSentence(1, "is running (no control socket /run/useroverlay/uo-nonexistent-");
    }
}
