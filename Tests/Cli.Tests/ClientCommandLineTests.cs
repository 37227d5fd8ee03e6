using System.CommandLine;
using UserOverlay.Cli.Commands;

namespace UserOverlay.Cli.Tests;

/// <summary>The client commands' command lines: every option parses to what the request needs; usage errors exit 2 with one sentence.</summary>
public class ClientCommandLineTests
{
    private static ParseResult Parse(params string[] args)
    {
        var r = Program.CreateRootCommand().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        Assert.True(r.Errors.Count == 0, string.Join("; ", r.Errors.Select(e => e.Message)));
        return r;
    }

    public static TheoryData<string[], string> Accepted => new()
    {
        { ["status", "-H", "h1"], "status" },
        { ["status", "--name", "h1", "--json"], "status" },
        { ["status", "-n", "h1"], "status" },
        { ["members", "--host", "/tmp/x.sock"], "members" },
        { ["sa", "-H", "h1", "--json"], "sa" },
        { ["network", "create", "blue"], "create" },
        { ["network", "-H", "h1", "ls"], "ls" },
        { ["network", "ls", "-H", "h1", "--json"], "ls" },
        { ["network", "list", "-q", "--no-trunc"], "ls" },
        { ["network", "inspect", "blue", "red"], "inspect" },
        { ["network", "rm", "blue", "0123abc"], "rm" },
        { ["network", "remove", "blue"], "rm" },
        { ["network", "connect", "--ip", "198.18.1.9", "--mac", "02:42:c6:12:01:09", "--interface", "eth1", "--alias", "a", "--alias", "b", "blue", "c1"], "connect" },
        { ["network", "disconnect", "blue", "/proc/1/ns/net"], "disconnect" },
        { ["run", "--network", "blue", "--", "ping", "-c", "1", "198.18.1.1"], "run" },
        { ["run", "-d", "--name", "w1", "--network", "blue", "--network", "red", "--ip", "198.18.1.5", "--alias", "db"], "run" },
        { ["ps", "-q"], "ps" },
        { ["ps", "--json", "-H", "h1"], "ps" },
        { ["rm", "w1", "w2"], "rm" },
    };

    [Theory, MemberData(nameof(Accepted))]
    public void Every_client_command_line_parses(string[] args, string command) =>
        Assert.Equal(command, Parse(args).CommandResult.Command.Name);

    [Fact]
    public void Network_create_reads_every_flag()
    {
        var r = Parse("network", "create", "-d", "overlay", "--subnet", "198.18.1.0/24", "--gateway", "198.18.1.254", "--ip-range", "198.18.1.128/25",
            "--aux-address", "printer=198.18.1.5", "--aux-address", "nas=198.18.1.6", "--vni", "5001", "--mtu", "1400",
            "-o", "encrypted", "--opt", "com.docker.network.driver.mtu=1400", "--internal", "--attachable", "--label", "env=test", "--label", "team=", "blue");
        Assert.Equal("blue", r.GetValue<string>("NAME"));
        Assert.Equal("overlay", r.GetValue<string?>("--driver"));
        Assert.Equal("198.18.1.0/24", r.GetValue<string?>("--subnet"));
        Assert.Equal("198.18.1.254", r.GetValue<string?>("--gateway"));
        Assert.Equal("198.18.1.128/25", r.GetValue<string?>("--ip-range"));
        Assert.Equal(new Dictionary<string, string> { ["printer"] = "198.18.1.5", ["nas"] = "198.18.1.6" }, r.GetValue<Dictionary<string, string>>("--aux-address"));
        Assert.Equal(5001u, r.GetValue<uint?>("--vni"));
        Assert.Equal(1400, r.GetValue<int?>("--mtu"));
        Assert.Equal(new Dictionary<string, string> { ["encrypted"] = "", ["com.docker.network.driver.mtu"] = "1400" }, r.GetValue<Dictionary<string, string>>("--opt"));
        Assert.True(r.GetValue<bool>("--internal"));
        Assert.True(r.GetValue<bool>("--attachable"));
        Assert.Equal(new Dictionary<string, string> { ["env"] = "test", ["team"] = "" }, r.GetValue<Dictionary<string, string>>("--label"));
    }

    [Fact]
    public void Network_create_without_flags_leaves_every_choice_to_the_router()
    {
        var r = Parse("network", "create", "blue");
        Assert.Null(r.GetValue<string?>("--subnet"));
        Assert.Null(r.GetValue<uint?>("--vni"));
        Assert.Empty(r.GetValue<Dictionary<string, string>>("--label")!);
        Assert.Empty(r.GetValue<Dictionary<string, string>>("--opt")!);
    }

    [Fact]
    public void Run_takes_everything_after_the_double_dash_as_the_command_verbatim()
    {
        var r = Parse("run", "--network", "blue", "--network", "red", "--ip", "198.18.1.5", "--alias", "a", "--", "sh", "-c", "echo $HOME; exit 7", "--network", "@file");
        Assert.Equal(["blue", "red"], r.GetValue<string[]>("--network")!);
        Assert.Equal("198.18.1.5", r.GetValue<string?>("--ip"));
        Assert.Equal(["a"], r.GetValue<string[]>("--alias")!);
        Assert.Equal(["sh", "-c", "echo $HOME; exit 7", "--network", "@file"], r.GetValue<string[]>("CMD")!);
        Assert.False(r.GetValue<bool>("--detach"));
    }

    [Fact]
    public void Run_without_a_double_dash_takes_the_first_word_and_what_follows_as_the_command()
    {
        var r = Parse("run", "--network", "blue", "ping", "-c", "1", "198.18.1.1");
        Assert.Equal(["ping", "-c", "1", "198.18.1.1"], r.GetValue<string[]>("CMD")!);
    }

    [Fact]
    public void Host_is_hidden_as_name_on_the_old_commands_and_absent_from_run_where_name_is_the_workload()
    {
        var status = Program.CreateRootCommand().Subcommands.Single(c => c.Name == "status");
        Assert.True(status.Options.Single(o => o.Name == "--name").Hidden);
        Assert.False(status.Options.Single(o => o.Name == "--host").Hidden);
        var run = Program.CreateRootCommand().Subcommands.Single(c => c.Name == "run");
        Assert.Equal("w1", Parse("run", "-d", "--name", "w1", "--network", "blue").GetValue<string?>("--name"));
        Assert.Contains(run.Options, o => o.Name == "--host");
    }

    public static TheoryData<string[], string> UsageErrors => new()
    {
        { ["bogus"], "Unrecognized command or argument 'bogus'" },
        { ["network"], "Required command was not provided" },
        { ["network", "create"], "usage: useroverlay network create [OPTIONS] NAME" },
        { ["network", "create", "--aux-address", "printer", "blue"], "aux-address: 'printer' is not KEY=VALUE" },
        { ["network", "create", "--label", "=x", "blue"], "label: '=x' has an empty key" },
        { ["network", "create", "--label", "a=1", "--label", "a=2", "blue"], "label: 'a' is given twice" },
        { ["network", "create", "--vni", "many", "blue"], "many" },
        { ["network", "connect", "blue"], "NETWORK NETNS" },
        { ["network", "inspect"], "useroverlay network inspect NETWORK..." },
        { ["run", "--", "true"], "--network" },
        { ["run", "--network", "blue"], "run needs a command" },
        { ["rm"], "rm [OPTIONS] NAME..." },
        { ["status", "-H", "h1", "--name", "h2"], "name different routers" },
        { ["status", "-H", "no such router"], "neither a router name" },
        { ["sa", "--config", "/nonexistent.yaml", "-H", "h1"], "not both" },
        { ["up"], "give --config FILE, or --underlay IP[:PORT]" },
        { ["up", "--config", "/nonexistent.yaml", "--underlay", "192.0.2.1"], "not both" },
        { ["swarm", "join-token", "admin"], "admin" },
        { ["swarm", "join", "192.0.2.1"], "--token" },
        { ["node", "rm"], "node rm [OPTIONS] NODE..." },
    };

    [Fact]
    public void Up_without_a_file_runs_the_given_underlay_with_ESP_in_UDP_and_no_networks()
    {
        var config = UserOverlay.Cli.Config.ConfigLoader.Parse(UpCommand.WithoutFile("192.0.2.7:4790"), "--underlay", checkNamespaces: false);
        Assert.Equal("192.0.2.7:4790", config.Router.Underlay.ToString());
        Assert.Empty(config.Router.Networks);
        Assert.Equal(UserOverlay.Crypto.EspEncapsulation.Udp, config.Router.Encryption!.Esp.Encapsulation);
        var bad = Assert.ThrowsAny<Exception>(() => UserOverlay.Cli.Config.ConfigLoader.Parse(UpCommand.WithoutFile("not-an-ip"), "--underlay", checkNamespaces: false));
        Assert.Contains("underlay.address", bad.Message);
    }

    [Theory, MemberData(nameof(UsageErrors))]
    public void A_usage_error_exits_2_with_one_sentence(string[] args, string contains) =>
        CliRun.Of(args).FailsWithOneSentence(2, contains);

    [Fact]
    public void A_missing_command_is_exit_127_before_any_workload_is_asked_for()
    {
        using var router = new FakeRouter();
        CliRun.Of("run", "-H", router.SocketPath, "--network", "blue", "--", "no-such-command-" + Environment.ProcessId).FailsWithOneSentence(127, "command not found");
        Assert.Empty(router.Received);
    }
}
