using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// The run-time network commands through the real binary against a real daemon (`useroverlay up` in a host
/// namespace): network create/ls/inspect/connect/disconnect/rm, run (exit codes, signals, the namespace gone after),
/// run -d with ps and rm, a killed run client, two hosts pinging each other's workloads, and errors as one sentence.
/// </summary>
public sealed class CliNetworkTests
{
    /// <summary>One host with a router and the workloads its tests make (their namespaces are removed on Dispose even if a test fails).</summary>
    private sealed class Host(TestNetwork net, int index, string? peer = null) : IDisposable
    {
        private readonly List<string> _workloads = [];
        private readonly List<(int Pid, string? Start)> _pids = [];

        public RouterProcess Router { get; } = new(net, net.AddHost($"h{index}", $"192.0.2.{index}/24"), $"{net.Prefix}h{index}", $$"""
            underlay: { address: 192.0.2.{{index}} }
            peers: [{{peer ?? $"192.0.2.{index + 100}"}}]
            networks: [ { name: seed, vni: 4097, subnet: 198.18.0.0/24 } ]
            """);

        /// <summary>A workload name unique on the machine, removed (with its namespace) on Dispose.</summary>
        public string Workload(string tag)
        {
            string name = $"{net.Prefix}{tag}";
            _workloads.Add(name);
            return name;
        }

        /// <summary>A process this test started, killed by PID on Dispose if it still runs (the same process: its start time is checked, so a reused PID is left alone).</summary>
        public void Owns(int pid) => _pids.Add((pid, StartTime(pid)));

        private static string? StartTime(int pid)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
            }
            catch (IOException) { return null; }
        }

        /// <summary>
        /// The CLI against this router (-H NAME), run as a user would: from the test's own namespaces (the control socket
        /// is a file, so no need to be in the host's), which also keeps the workloads' namespace mounts in a mount
        /// namespace that outlives the call (`ip netns exec` would give each call a throwaway one).
        /// </summary>
        public CommandResult Cli(params string[] args) => Client([.. args[..Subcommand(args)], "-H", Router.Name, .. args[Subcommand(args)..]]);

        // -H goes after the command words (network create, run, ps …) and before any `--`.
        private static int Subcommand(string[] args) => args[0] == "network" ? 2 : 1;

        public void Dispose()
        {
            foreach (var (pid, start) in _pids)
                if (start is not null && StartTime(pid) == start) Shell.Run("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)]);
            Router.Dispose();
            foreach (string w in _workloads)
                if (File.Exists($"/run/netns/uo-{w}")) Shell.Run("ip", ["netns", "del", $"uo-{w}"]);
            try { Directory.Delete(DaemonOptions.DefaultStateDirectory(Router.Name), recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>The command failed with exit 1 and one "useroverlay: …" sentence containing <paramref name="contains"/>.</summary>
    internal static void OneSentence(CommandResult r, string contains)
    {
        Assert.True(r.ExitCode == 1, $"{r.Command}: exit {r.ExitCode}, expected 1\nstdout: {r.StdOut}\nstderr: {r.StdErr}");
        string line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("useroverlay: ", line);
        Assert.Contains(contains, line);
    }

    /// <summary>The CLI, run from the test's namespaces.</summary>
    private static CommandResult Client(params string[] args) => Shell.Run(RouterProcess.Command[0], [.. RouterProcess.Command[1..], .. args], TimeSpan.FromSeconds(60));

    private static bool NetnsExists(string workload) => File.Exists($"/run/netns/uo-{workload}");

    /// <summary>The processes in a workload's namespace (whose /proc/PID/ns/net is the namespace mounted on /run/netns/uo-NAME).</summary>
    private static int[] PidsIn(string workload)
    {
        var inode = Shell.Run("stat", ["-L", "-c", "%i", $"/run/netns/uo-{workload}"]);
        if (inode.ExitCode != 0 || !Shell.Run("stat", ["-f", "-c", "%T", $"/run/netns/uo-{workload}"]).StdOut.Contains("nsfs")) return [];
        string link = $"net:[{inode.StdOut.Trim()}]";
        var pids = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out int pid)) continue;
            try { if (new FileInfo($"{dir}/ns/net").LinkTarget == link) pids.Add(pid); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return [.. pids];
    }

    [Fact]
    public async Task Networks_are_created_listed_inspected_connected_disconnected_and_removed_through_the_cli()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cn");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        string c1 = net.AddNamespace("c1");

        string id = h.Cli("network", "create", "--subnet", "198.18.1.0/24", "--vni", "5001", "--aux-address", "printer=198.18.1.250",
            "--label", "env=test", "blue").EnsureSuccess().StdOut.Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);

        string table = h.Cli("network", "ls").EnsureSuccess().StdOut;
        Assert.Matches(@"^NETWORK ID +NAME +DRIVER +SCOPE +VNI +SUBNET\n", table);
        Assert.Matches($@"\n{id[..12]} +blue +overlay +local +5001 +198\.18\.1\.0/24\n", table);
        Assert.Contains(id[..12] + "\n", h.Cli("network", "ls", "-q").EnsureSuccess().StdOut);
        Assert.Contains(id + "\n", h.Cli("network", "ls", "-q", "--no-trunc").EnsureSuccess().StdOut);
        using (var all = JsonDocument.Parse(h.Cli("network", "ls", "--json").EnsureSuccess().StdOut))
            Assert.Equal(["blue", "seed"], all.RootElement.EnumerateArray().Select(n => n.GetProperty("Name").GetString()));

        var connected = h.Cli("network", "connect", "--ip", "198.18.1.10", "--alias", "web", "blue", c1).EnsureSuccess();
        Assert.Contains($"{c1} on blue: eth0 198.18.1.10/24", connected.StdOut);
        Assert.Contains("inet 198.18.1.10/24", TestNetwork.Exec(c1, "ip -4 addr show eth0").EnsureSuccess().StdOut);
        Assert.True(TestNetwork.Ping(c1, "198.18.1.1", count: 1), "the endpoint pings its network's gateway, the router");

        var inspect = h.Cli("network", "inspect", id[..8]).EnsureSuccess();
        Assert.Contains("\n        \"Name\": \"blue\"", inspect.StdOut); // Docker's array, indented by four
        using (var doc = JsonDocument.Parse(inspect.StdOut))
        {
            var blue = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal(id, blue.GetProperty("Id").GetString());
            var config = blue.GetProperty("IPAM").GetProperty("Config")[0];
            Assert.Equal("198.18.1.0/24", config.GetProperty("Subnet").GetString());
            Assert.Equal("198.18.1.1", config.GetProperty("Gateway").GetString());
            Assert.Equal("198.18.1.250", config.GetProperty("AuxiliaryAddresses").GetProperty("printer").GetString());
            Assert.Equal("5001", blue.GetProperty("Options").GetProperty("com.docker.network.driver.overlay.vxlanid_list").GetString());
            Assert.Equal("test", blue.GetProperty("Labels").GetProperty("env").GetString());
            var endpoint = Assert.Single(blue.GetProperty("Containers").EnumerateObject()).Value;
            Assert.Equal("198.18.1.10/24", endpoint.GetProperty("IPv4Address").GetString());
        }

        // docker's way: the found ones printed, exit 1 naming the missing one
        var partial = h.Cli("network", "inspect", "blue", "nope");
        OneSentence(partial, "'nope'");
        using (var doc = JsonDocument.Parse(partial.StdOut))
            Assert.Equal("blue", Assert.Single(doc.RootElement.EnumerateArray()).GetProperty("Name").GetString());

        OneSentence(h.Cli("network", "rm", "blue"), c1); // refused while attached, naming the endpoint
        Assert.Contains($"{c1} on blue", h.Cli("network", "disconnect", "blue", c1).EnsureSuccess().StdOut);
        Assert.NotEqual(0, TestNetwork.Exec(c1, "ip link show eth0").ExitCode);
        Assert.Equal("blue\n", h.Cli("network", "rm", "blue").EnsureSuccess().StdOut);
        OneSentence(h.Cli("network", "inspect", "blue"), "'blue'");
        Assert.DoesNotContain("blue", h.Cli("network", "ls").EnsureSuccess().StdOut);
    }

    [Fact]
    public async Task Run_returns_the_commands_exit_status_and_the_namespace_is_gone_afterwards()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cr");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        h.Cli("network", "create", "--subnet", "198.18.1.0/24", "blue").EnsureSuccess();

        var ping = h.Cli("run", "--network", "blue", "--", "ping", "-n", "-c", "1", "-W", "2", "198.18.1.1");
        Assert.True(ping.ExitCode == 0, $"ping the gateway from a run: exit {ping.ExitCode}\n{ping.StdOut}\n{ping.StdErr}");
        Assert.Contains("1 received", ping.StdOut); // stdout is the command's

        string w7 = h.Workload("w7");
        Assert.Equal(7, h.Cli("run", "--name", w7, "--network", "blue", "--", "sh", "-c", "exit 7").ExitCode);
        Assert.False(NetnsExists(w7), "the workload's namespace is deleted when its command ends");
        Assert.Equal(143, h.Cli("run", "--network", "blue", "--", "sh", "-c", "kill -TERM $$").ExitCode); // 128 + SIGTERM, as a shell says

        // the command's own view: its address on the network, arguments passed verbatim (no shell in between)
        var own = h.Cli("run", "--network", "blue", "--ip", "198.18.1.77", "--", "sh", "-c", "ip -4 -o addr show eth0; printf '%s|' \"$@\"", "sh", "a b", "$HOME", "*");
        Assert.Equal(0, own.ExitCode);
        Assert.Contains("inet 198.18.1.77/24", own.StdOut);
        Assert.Contains("a b|$HOME|*|", own.StdOut);
        Assert.Equal("", h.Cli("ps", "-q").EnsureSuccess().StdOut);
        Assert.Equal(127, h.Cli("run", "--network", "blue", "--", "no-such-command-here").ExitCode);
        Assert.Equal("", h.Cli("ps", "-q").EnsureSuccess().StdOut); // nothing made for it
    }

    [Fact]
    public async Task A_detached_workload_is_listed_by_ps_reachable_from_another_and_removed_by_rm()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cd");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        h.Cli("network", "create", "--subnet", "198.18.1.0/24", "blue").EnsureSuccess();
        string held = h.Workload("held"), sleeper = h.Workload("sleeper");

        Assert.Equal(held + "\n", h.Cli("run", "-d", "--name", held, "--network", "blue", "--ip", "198.18.1.20").EnsureSuccess().StdOut);
        Assert.Equal(sleeper + "\n", h.Cli("run", "-d", "--name", sleeper, "--network", "blue", "--", "sleep", "300").EnsureSuccess().StdOut);
        int[] pids = [];
        await Eventually.True(() => (pids = PidsIn(sleeper)).Length > 0, TimeSpan.FromSeconds(10), "the detached command runs in the workload");
        foreach (int pid in pids) h.Owns(pid);
        Assert.Single(pids); // the detached command runs inside, and nothing else
        Assert.Contains("sleep", File.ReadAllText($"/proc/{pids[0]}/cmdline"));

        string ps = h.Cli("ps").EnsureSuccess().StdOut;
        Assert.Matches(@"^NAME +NETNS +NETWORKS +CREATED\n", ps);
        Assert.Matches($@"\n{Regex.Escape(held)} +uo-{Regex.Escape(held)} +blue=198\.18\.1\.20/24 +(just now|\d+ seconds? ago)\n", ps);
        Assert.Equal([held, sleeper], h.Cli("ps", "-q").EnsureSuccess().StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.True(NetnsExists(held));
        Assert.Equal(0, h.Cli("run", "--network", "blue", "--", "ping", "-n", "-c", "1", "-W", "2", "198.18.1.20").ExitCode);

        Assert.Equal($"{held}\n{sleeper}\n", h.Cli("rm", held, sleeper).EnsureSuccess().StdOut);
        Assert.False(NetnsExists(held));
        Assert.False(NetnsExists(sleeper));
        Assert.Equal("", h.Cli("ps", "-q").EnsureSuccess().StdOut);
        OneSentence(h.Cli("rm", held), $"'{held}'");
    }

    [Fact]
    public async Task A_run_client_that_is_killed_leaves_nothing_and_one_that_is_terminated_passes_the_signal_on()
    {
        Requires.Root();
        using var net = new TestNetwork("ck");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        h.Cli("network", "create", "--subnet", "198.18.1.0/24", "blue").EnsureSuccess();

        async Task<(Process Client, int Command)> StartRun(string name)
        {
            var psi = new ProcessStartInfo(RouterProcess.Command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in (string[])[.. RouterProcess.Command[1..], "run", "-H", h.Router.Name, "--name", name, "--network", "blue", "--", "sleep", "300"])
                psi.ArgumentList.Add(a);
            var client = Process.Start(psi)!;
            h.Owns(client.Id);
            int command = 0;
            await Eventually.True(() => PidsIn(name) is [int pid] && (command = pid) > 0, TimeSpan.FromSeconds(20), $"run's command runs in uo-{name}");
            h.Owns(command);
            return (client, command);
        }

        string killed = h.Workload("killed");
        var (client, _) = await StartRun(killed);
        Shell.Run("kill", ["-KILL", client.Id.ToString(CultureInfo.InvariantCulture)]);
        await Eventually.True(() => !NetnsExists(killed) && h.Cli("ps", "-q").StdOut.Length == 0, TimeSpan.FromSeconds(10),
            "the daemon removes the workload of a client killed by SIGKILL");

        string terminated = h.Workload("terminated");
        (client, int sleep) = await StartRun(terminated);
        Shell.Run("kill", ["-TERM", client.Id.ToString(CultureInfo.InvariantCulture)]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await client.WaitForExitAsync(cts.Token);
        Assert.Equal(143, client.ExitCode); // sleep died of the forwarded SIGTERM, and run says so
        Assert.False(Directory.Exists($"/proc/{sleep}"), "the command got the signal");
        Assert.False(NetnsExists(terminated), "run removed its workload before exiting");
        Assert.Equal("", h.Cli("ps", "-q").EnsureSuccess().StdOut);
    }

    [Fact]
    public async Task Workloads_run_on_two_hosts_in_static_mode_ping_each_other()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("c2");
        using var h1 = new Host(net, 1, peer: "192.0.2.2");
        using var h2 = new Host(net, 2, peer: "192.0.2.1");
        await h1.Router.StartAsync();
        await h2.Router.StartAsync();
        foreach (var h in new[] { h1, h2 }) // static mode: the hosts agree on the VNI because it is given
            h.Cli("network", "create", "--subnet", "198.18.2.0/24", "--vni", "6001", "blue").EnsureSuccess();
        string a = h1.Workload("a"), b = h2.Workload("b");
        h1.Cli("run", "-d", "--name", a, "--network", "blue", "--ip", "198.18.2.11").EnsureSuccess();
        h2.Cli("run", "-d", "--name", b, "--network", "blue", "--ip", "198.18.2.12").EnsureSuccess();

        var there = h1.Cli("run", "--network", "blue", "--ip", "198.18.2.21", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.12");
        Assert.True(there.ExitCode == 0, $"h1 → h2's workload: exit {there.ExitCode}\n{there.StdOut}\n{there.StdErr}");
        var back = h2.Cli("run", "--network", "blue", "--ip", "198.18.2.22", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.11");
        Assert.True(back.ExitCode == 0, $"h2 → h1's workload: exit {back.ExitCode}\n{back.StdOut}\n{back.StdErr}");
        h1.Cli("rm", a).EnsureSuccess();
        h2.Cli("rm", b).EnsureSuccess();
    }

    [Fact]
    public async Task Errors_are_one_sentence_from_the_daemon_and_nothing_is_left_half_made()
    {
        Requires.Root();
        using var net = new TestNetwork("ce");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        h.Cli("network", "create", "--subnet", "198.18.1.0/24", "blue").EnsureSuccess();

        OneSentence(h.Cli("network", "create", "--subnet", "198.18.1.0/24", "blue"), "blue");
        OneSentence(h.Cli("network", "create", "--subnet", "198.18.1.128/25", "red"), "198.18.1.0/24"); // overlaps blue
        OneSentence(h.Cli("network", "create", "--subnet", "198.18.3.0/24", "--gateway", "198.18.4.1", "red"), "gateway");
        Assert.DoesNotContain("red", h.Cli("network", "ls").EnsureSuccess().StdOut);
        OneSentence(h.Cli("network", "rm", "nope"), "'nope'");
        OneSentence(h.Cli("network", "connect", "blue", $"{net.Prefix}absent"), $"{net.Prefix}absent");

        string w = h.Workload("w");
        OneSentence(h.Cli("run", "--name", w, "--network", "blue", "--network", "nope", "--", "true"), "'nope'");
        Assert.False(NetnsExists(w));
        Assert.Equal("", h.Cli("ps", "-q").EnsureSuccess().StdOut);
        using (var doc = JsonDocument.Parse(h.Cli("network", "inspect", "blue").EnsureSuccess().StdOut))
            Assert.Empty(doc.RootElement[0].GetProperty("Containers").EnumerateObject()); // no endpoint left behind

        // the router is chosen by USEROVERLAY_HOST, and by a socket path; an unknown one is one sentence
        var byEnv = Shell.Run("env", [$"USEROVERLAY_HOST={h.Router.Name}", .. RouterProcess.Command, "network", "ls", "-q"]);
        Assert.Equal(2, byEnv.EnsureSuccess().StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("blue", Client("network", "ls", "-H", ControlApi.SocketPath(h.Router.Name)).EnsureSuccess().StdOut);
        OneSentence(Client("ps", "-H", $"{net.Prefix}none"), $"no router named '{net.Prefix}none' is running");
    }

    [Fact]
    public async Task A_caller_who_is_not_root_is_told_to_run_as_root()
    {
        Requires.Root();
        Requires.Tool("setpriv", "util-linux");
        using var net = new TestNetwork("cp");
        using var h = new Host(net, 1);
        await h.Router.StartAsync();
        // uid/gid 65534 (nobody): not root and not in the socket's group, so the socket itself refuses the connection.
        // The binary under test may sit below a directory only root may enter (CI's mktemp -d): nobody runs a copy.
        string[] command = RouterProcess.Command;
        DirectoryInfo? copy = null;
        if (command is [var binary])
        {
            copy = Directory.CreateTempSubdirectory("uo-nobody-");
            File.SetUnixFileMode(copy.FullName, (UnixFileMode)0b111_101_101);
            command = [Path.Combine(copy.FullName, Path.GetFileName(binary))];
            File.Copy(binary, command[0]);
        }
        try
        {
            var r = Shell.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", .. command, "network", "create", "-H", h.Router.Name, "blue"]);
            OneSentence(r, "run this as root");
        }
        finally
        {
            copy?.Delete(recursive: true);
        }
        Assert.DoesNotContain("blue", h.Cli("network", "ls").EnsureSuccess().StdOut);
    }
}
