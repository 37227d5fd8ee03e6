using System.Globalization;
using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// A cluster of real daemons in namespaces (underlay 192.0.2.0/24, address pools in 198.18.0.0/15): swarm init on one
/// host, join with tokens on 2377, a network created once on the manager and served by every host, workloads on every
/// host pinging each other with addresses from the cluster's IPAM, refusals of what a worker or a wrong token may not
/// do, and leaving.
/// </summary>
public sealed class ClusterTests
{
    /// <summary>One host's daemon (its state directory, cluster part included, removed on Dispose).</summary>
    private sealed class Node(TestNetwork net, int index, string extraConfig = "encryption: { esp: udp }", bool withoutConfig = false) : IDisposable
    {
        public string Address { get; } = $"192.0.2.{index}";

        /// <summary>The router: from a configuration file with the underlay and <paramref name="extraConfig"/>, or with <paramref name="withoutConfig"/> from `up --underlay` alone.</summary>
        public RouterProcess Router { get; } = new(net, net.AddHost($"n{index}", $"192.0.2.{index}/24"), $"{net.Prefix}n{index}", $$"""
            underlay: { address: 192.0.2.{{index}} }
            {{extraConfig}}
            """)
        {
            WithoutConfig = withoutConfig,
            ExtraArguments = withoutConfig ? ["--underlay", $"192.0.2.{index}"] : [],
        };

        /// <summary>The CLI against this node's router; <paramref name="words"/> command words, then -H, then the rest.</summary>
        public CommandResult Cli(int words, params string[] args) =>
            Shell.Run(RouterProcess.Command[0], [.. RouterProcess.Command[1..], .. args[..words], "-H", Router.Name, .. args[words..]], TimeSpan.FromSeconds(60));

        public void Dispose()
        {
            Router.Dispose();
            try { Directory.Delete(DaemonOptions.DefaultStateDirectory(Router.Name), recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    private static void Refused(CommandResult r, string contains) => CliNetworkTests.OneSentence(r, contains);

    private static string Init(Node manager) =>
        manager.Cli(2, "swarm", "init", "--advertise-addr", manager.Address, "--default-addr-pool", "198.18.0.0/16", "--default-addr-pool-mask-length", "24")
            .EnsureSuccess().StdOut;

    private static string Token(Node manager, string role) => manager.Cli(2, "swarm", "join-token", "-q", role).EnsureSuccess().StdOut.Trim();

    private static string AddressOf(string ns) =>
        TestNetwork.Exec(ns, "ip -4 -o addr show eth0").EnsureSuccess().StdOut.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3].Split('/')[0];

    [Fact]
    public async Task A_network_created_once_on_the_manager_carries_workloads_of_every_host_with_cluster_addresses()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cl");
        using var m1 = new Node(net, 1);
        using var w1 = new Node(net, 2);
        using var w2 = new Node(net, 3, withoutConfig: true); // `up --underlay 192.0.2.3`: no configuration file at all
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync(), w2.Router.StartAsync());

        string init = Init(m1);
        Assert.Contains("is now a manager", init);
        Assert.Matches(@"useroverlay swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} 192\.0\.2\.1:2377", init);
        string token = Token(m1, "worker");
        foreach (var w in new[] { w1, w2 })
            Assert.Contains("joined a swarm as a worker", w.Cli(2, "swarm", "join", "--token", token, m1.Address).EnsureSuccess().StdOut);

        string nodes = m1.Cli(2, "node", "ls").EnsureSuccess().StdOut;
        foreach (var n in new[] { m1, w1, w2 }) Assert.Contains(n.Router.Name, nodes);
        using (var json = JsonDocument.Parse(m1.Cli(2, "node", "ls", "--json").EnsureSuccess().StdOut))
            Assert.Equal(["manager", "worker", "worker"], json.RootElement.EnumerateArray().Select(n => n.GetProperty("role").GetString()).Order());

        string id = m1.Cli(2, "network", "create", "--attachable", "--opt", "encrypted", "blue").EnsureSuccess().StdOut.Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        foreach (var n in new[] { m1, w1, w2 })
        {
            await Eventually.True(() => n.Cli(2, "network", "ls", "-q", "--no-trunc").StdOut.Contains(id), TimeSpan.FromSeconds(40), $"{n.Router.Name} serves 'blue'");
            using var doc = JsonDocument.Parse(n.Cli(2, "network", "inspect", "blue").EnsureSuccess().StdOut);
            var blue = doc.RootElement[0];
            Assert.Equal("swarm", blue.GetProperty("Scope").GetString());
            Assert.True(blue.GetProperty("Attachable").GetBoolean());
            Assert.StartsWith("198.18.", blue.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString());
        }

        // A worker may not create or remove the cluster's networks: one sentence naming a manager.
        Refused(w1.Cli(2, "network", "create", "--attachable", "red"), "network create is for managers");
        Refused(w1.Cli(2, "network", "rm", "blue"), "network rm is for managers");
        Refused(w1.Cli(2, "node", "ls"), "node ls is for managers");

        // Workloads on every host, attached at once from all three: distinct addresses from the cluster's IPAM.
        var hosts = new[] { m1, w1, w2 };
        var workloads = new List<string>();
        var attaches = new List<Task<CommandResult>>();
        for (int i = 0; i < hosts.Length; i++)
            for (int j = 0; j < 2; j++)
            {
                string ns = net.AddNamespace($"c{i}{j}");
                workloads.Add(ns);
                var host = hosts[i];
                attaches.Add(Task.Run(() => host.Cli(2, "network", "connect", "blue", ns)));
            }
        foreach (var r in await Task.WhenAll(attaches)) r.EnsureSuccess();
        var addresses = workloads.Select(AddressOf).ToList();
        Assert.Equal(addresses.Count, addresses.Distinct().Count());
        Assert.All(addresses, a => Assert.StartsWith("198.18.", a));

        // Every workload reaches every other one (across the encrypted overlay).
        foreach (string from in workloads)
            foreach (string to in addresses.Where(a => a != AddressOf(from)))
                await Eventually.True(() => TestNetwork.Ping(from, to, count: 1), TimeSpan.FromSeconds(20), $"{from} pings {to}");

        // `run` on a worker takes its address from the cluster too, and reaches a workload on the manager.
        var run = w2.Cli(1, "run", "--network", "blue", "--", "ping", "-c", "1", "-W", "5", addresses[0]);
        Assert.True(run.ExitCode == 0, $"run: {run.StdOut}{run.StdErr}");

        // Inspect on the manager names the hosts with endpoints on the network.
        using (var doc = JsonDocument.Parse(m1.Cli(2, "network", "inspect", "blue").EnsureSuccess().StdOut))
        {
            var peers = doc.RootElement[0].GetProperty("Peers").EnumerateArray().Select(p => p.GetProperty("Name").GetString()!).Order().ToList();
            Assert.Equal(hosts.Select(h => h.Router.Name).Order().ToList(), peers);
        }

        // The network cannot be removed while endpoints hold addresses; after disconnecting, it can, and goes everywhere.
        Refused(m1.Cli(2, "network", "rm", "blue"), "has endpoints attached");
        for (int i = 0; i < workloads.Count; i++) hosts[i / 2].Cli(2, "network", "disconnect", "blue", workloads[i]).EnsureSuccess();
        m1.Cli(2, "network", "rm", "blue").EnsureSuccess();
        foreach (var n in hosts)
            await Eventually.True(() => !n.Cli(2, "network", "ls", "-q", "--no-trunc").StdOut.Contains(id), TimeSpan.FromSeconds(40), $"{n.Router.Name} no longer serves 'blue'");
    }

    [Fact]
    public async Task Wrong_rotated_or_malformed_tokens_are_refused_and_leave_nothing_behind()
    {
        Requires.Root();
        using var net = new TestNetwork("ct");
        using var m1 = new Node(net, 1);
        using var w1 = new Node(net, 2);
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync());
        Init(m1);
        string token = Token(m1, "worker");
        string stateDir = Path.Combine(DaemonOptions.DefaultStateDirectory(w1.Router.Name), "cluster");

        Refused(w1.Cli(2, "swarm", "join", "--token", "SWMTKN-1-nonsense", m1.Address), "token");
        Assert.False(Directory.Exists(stateDir));
        // The right digest, a wrong secret.
        string wrongSecret = token[..^25] + new string('0', 25);
        Refused(w1.Cli(2, "swarm", "join", "--token", wrongSecret, m1.Address), "token");
        Assert.False(Directory.Exists(stateDir));
        // Another cluster's digest: refused before the token is sent.
        string otherCa = "SWMTKN-1-" + new string('1', 50) + token[^26..];
        Refused(w1.Cli(2, "swarm", "join", "--token", otherCa, m1.Address), "does not match the token");
        Assert.False(Directory.Exists(stateDir));

        // Rotated: the old token no longer admits; the new one does.
        string rotated = m1.Cli(2, "swarm", "join-token", "--rotate", "-q", "worker").EnsureSuccess().StdOut.Trim();
        Assert.NotEqual(token, rotated);
        Refused(w1.Cli(2, "swarm", "join", "--token", token, m1.Address), "token");
        Assert.Equal("inactive", JsonDocument.Parse(w1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement.GetProperty("state").GetString());
        w1.Cli(2, "swarm", "join", "--token", rotated, m1.Address).EnsureSuccess();
        Assert.True(Directory.Exists(stateDir));
        Refused(w1.Cli(2, "swarm", "join", "--token", rotated, m1.Address), "already part of a swarm");

        // Leaving deletes the node's cluster state; the manager still lists it until `node rm`.
        w1.Cli(2, "swarm", "leave").EnsureSuccess();
        Assert.False(Directory.Exists(stateDir));
        Assert.Contains(w1.Router.Name, m1.Cli(2, "node", "ls").EnsureSuccess().StdOut);
        m1.Cli(2, "node", "rm", w1.Router.Name).EnsureSuccess();
        Assert.DoesNotContain(w1.Router.Name, m1.Cli(2, "node", "ls").EnsureSuccess().StdOut);
    }

    [Fact]
    public async Task A_node_that_restarts_resumes_its_membership_and_a_manager_outage_keeps_forwarding()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cr");
        using var m1 = new Node(net, 1);
        using var w1 = new Node(net, 2);
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync());
        Init(m1);
        w1.Cli(2, "swarm", "join", "--token", Token(m1, "worker"), m1.Address).EnsureSuccess();
        m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.19.7.0/24", "green").EnsureSuccess();
        await Eventually.True(() => w1.Cli(2, "network", "ls").StdOut.Contains("green"), TimeSpan.FromSeconds(40), "the worker serves 'green'");
        string a = net.AddNamespace("a"), b = net.AddNamespace("b");
        m1.Cli(2, "network", "connect", "green", a).EnsureSuccess();
        w1.Cli(2, "network", "connect", "green", b).EnsureSuccess();
        string bAddress = AddressOf(b);
        await Eventually.True(() => TestNetwork.Ping(a, bAddress, count: 1), TimeSpan.FromSeconds(20), "a pings b");

        // The worker restarts: its membership, networks and endpoint come back.
        await w1.Router.StopAsync();
        await w1.Router.StartAsync();
        using (var st = JsonDocument.Parse(w1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut))
            Assert.Equal("worker", st.RootElement.GetProperty("role").GetString());
        Assert.Contains("green", w1.Cli(2, "network", "ls").EnsureSuccess().StdOut);

        // The manager stops: the worker keeps what it serves; a new attach fails clearly; the manager comes back with its state.
        await m1.Router.StopAsync();
        string c = net.AddNamespace("c");
        var refused = w1.Cli(2, "network", "connect", "green", c);
        Refused(refused, "manager");
        Assert.Contains("green", w1.Cli(2, "network", "ls").EnsureSuccess().StdOut);
        await m1.Router.StartAsync();
        await Eventually.True(() => TestNetwork.Ping(a, bAddress, count: 1), TimeSpan.FromSeconds(30), "a pings b after both restarts");
        await Eventually.True(() => w1.Cli(2, "network", "connect", "green", c).ExitCode == 0, TimeSpan.FromSeconds(40), "the worker attaches again once the manager answers");
        Assert.NotEqual(bAddress, AddressOf(c));
        Assert.Contains(string.Format(CultureInfo.InvariantCulture, "{0}", w1.Router.Name), m1.Cli(2, "node", "ls").EnsureSuccess().StdOut);
    }

    [Fact]
    public async Task Three_managers_survive_the_leader_s_death_and_a_removed_worker_s_addresses_return()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cm");
        using var m1 = new Node(net, 1);
        using var m2 = new Node(net, 2);
        using var m3 = new Node(net, 3);
        using var w1 = new Node(net, 4);
        using var w2 = new Node(net, 5);
        var all = new[] { m1, m2, m3, w1, w2 };
        var managers = new[] { m1, m2, m3 };
        await Task.WhenAll(all.Select(n => n.Router.StartAsync()));

        Init(m1);
        string managerToken = Token(m1, "manager"), workerToken = Token(m1, "worker");
        Assert.NotEqual(managerToken, workerToken);
        foreach (var m in new[] { m2, m3 })
            Assert.Contains("as a manager", m.Cli(2, "swarm", "join", "--token", managerToken, m1.Address).EnsureSuccess().StdOut);
        foreach (var w in new[] { w1, w2 })
            Assert.Contains("as a worker", w.Cli(2, "swarm", "join", "--token", workerToken, m2.Address).EnsureSuccess().StdOut);

        // Every manager lists the same five nodes with the same roles.
        string Roles(Node m)
        {
            using var doc = JsonDocument.Parse(m.Cli(2, "node", "ls", "--json").EnsureSuccess().StdOut);
            return string.Join(",", doc.RootElement.EnumerateArray().Select(n => $"{n.GetProperty("hostname").GetString()}={n.GetProperty("role").GetString()}").Order());
        }
        string expected = string.Join(",", all.Select(n => $"{n.Router.Name}={(managers.Contains(n) ? "manager" : "worker")}").Order());
        foreach (var m in managers)
            await Eventually.True(() => Roles(m) == expected, TimeSpan.FromSeconds(30), $"{m.Router.Name} lists every node");

        // On a follower manager the create goes through Raft to the leader (a loaded machine may need a second try).
        await Eventually.True(() => m3.Cli(2, "network", "create", "--attachable", "--opt", "encrypted", "--subnet", "198.18.40.0/24", "blue") is var r
            && (r.ExitCode == 0 || r.StdErr.Contains("already", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "a follower manager creates 'blue'");
        foreach (var n in all)
            await Eventually.True(() => n.Cli(2, "network", "ls").StdOut.Contains("blue"), TimeSpan.FromSeconds(40), $"{n.Router.Name} serves 'blue'");
        var workloads = all.Select((n, i) => (Node: n, Ns: net.AddNamespace($"c{i}"))).ToList();
        foreach (var r in await Task.WhenAll(workloads.Select(x => Task.Run(() => x.Node.Cli(2, "network", "connect", "blue", x.Ns))))) r.EnsureSuccess();
        var addresses = workloads.Select(x => AddressOf(x.Ns)).ToList();
        Assert.Equal(addresses.Count, addresses.Distinct().Count());
        foreach (var (from, i) in workloads.Select((w, i) => (w.Ns, i)))
            foreach (var to in addresses.Where((_, j) => j != i))
                await Eventually.True(() => TestNetwork.Ping(from, to, count: 1), TimeSpan.FromSeconds(20), $"{from} pings {to}");

        // 20 MB through the encrypted overlay, intact (sha256 at both ends), between the two workers' workloads.
        var (sent, received) = await Tcp.Transfer(workloads[4].Ns, addresses[4], workloads[3].Ns, 20_000_000);
        Assert.Equal(sent, received);

        // The leader dies: the other two elect one within seconds and accept changes.
        string Leader(Node m) => JsonDocument.Parse(m.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement.TryGetProperty("leader", out var l) ? l.GetString() ?? "" : "";
        string leaderAddress = Leader(m1);
        var leader = managers.Single(m => leaderAddress.StartsWith(m.Address + ":", StringComparison.Ordinal));
        var others = managers.Where(m => m != leader).ToArray();
        await leader.Router.KillAsync();
        var killedAt = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.True(() => others.All(m => Leader(m) is { Length: > 0 } l && !l.StartsWith(leader.Address + ":", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), "the surviving managers elect a new leader");
        var elected = killedAt.Elapsed;
        await Eventually.True(() => others[0].Cli(2, "network", "create", "--attachable", "--subnet", "198.18.41.0/24", "green").ExitCode == 0,
            TimeSpan.FromSeconds(20), "network create works again");
        foreach (var n in all.Where(n => n != leader))
            await Eventually.True(() => n.Cli(2, "network", "ls").StdOut.Contains("green"), TimeSpan.FromSeconds(40), $"{n.Router.Name} serves 'green'");
        Assert.True(elected < TimeSpan.FromSeconds(20), $"a new leader within {elected}");

        // The old leader restarts with its state and catches up (it learns of 'green', made while it was dead).
        await leader.Router.StartAsync(TimeSpan.FromSeconds(90)); // it replays its Raft log and rejoins before its socket answers
        await Eventually.True(() => leader.Cli(2, "network", "ls").StdOut.Contains("green"), TimeSpan.FromSeconds(40), "the restarted manager catches up");
        await Eventually.True(() => Roles(leader) == expected, TimeSpan.FromSeconds(30), "the restarted manager lists every node");

        // A worker dies and is removed: the address its workload held is free again.
        string w2Address = addresses[4];
        await w2.Router.KillAsync();
        others[1].Cli(2, "node", "rm", w2.Router.Name).EnsureSuccess();
        string again = net.AddNamespace("again");
        w1.Cli(2, "network", "connect", "--ip", w2Address, "blue", again).EnsureSuccess();
        Assert.Equal(w2Address, AddressOf(again));

        // A manager leaves (its workload detached with --force): the other two go on, and can remove its record.
        Refused(others[0].Cli(2, "swarm", "leave"), "workloads are attached");
        others[0].Cli(2, "swarm", "leave", "--force").EnsureSuccess();
        await Eventually.True(() => others[1].Cli(2, "network", "create", "--attachable", "--subnet", "198.18.42.0/24", "after-leave").ExitCode == 0,
            TimeSpan.FromSeconds(20), "the remaining managers accept changes");
        others[1].Cli(2, "node", "rm", "--force", others[0].Router.Name).EnsureSuccess();
        await Eventually.True(() => !leader.Cli(2, "node", "ls").EnsureSuccess().StdOut.Contains(others[0].Router.Name), TimeSpan.FromSeconds(20),
            "every manager drops the removed manager's record");
    }

    [Fact]
    public async Task Keys_rotate_under_ping_load_with_nothing_lost_and_the_underlay_never_carries_the_network_in_clear()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        string tcpdump = Requires.Tool("tcpdump", "tcpdump");
        string tshark = Requires.Tool("tshark", "tshark");
        string curl = Requires.Tool("curl", "curl");
        using var net = new TestNetwork("ck");
        using var m1 = new Node(net, 1);
        using var w1 = new Node(net, 2, "encryption: { esp: udp }\nmetrics: 127.0.0.1:9464");
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync());
        m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--default-addr-pool", "198.18.0.0/16", "--key-rotation-interval", "2s").EnsureSuccess();
        w1.Cli(2, "swarm", "join", "--token", Token(m1, "worker"), m1.Address).EnsureSuccess();
        m1.Cli(2, "network", "create", "--attachable", "--opt", "encrypted", "--subnet", "198.18.50.0/24", "secret").EnsureSuccess();
        await Eventually.True(() => w1.Cli(2, "network", "ls").StdOut.Contains("secret"), TimeSpan.FromSeconds(40), "the worker serves 'secret'");
        string a = net.AddNamespace("a"), b = net.AddNamespace("b");
        m1.Cli(2, "network", "connect", "secret", a).EnsureSuccess();
        w1.Cli(2, "network", "connect", "secret", b).EnsureSuccess();
        string bAddress = AddressOf(b);
        await Eventually.True(() => TestNetwork.Ping(a, bAddress, count: 1), TimeSpan.FromSeconds(20), "a pings b");

        long Generation(Node n) => JsonDocument.Parse(n.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement.GetProperty("key_generation").GetInt64();
        double Exposed(string series) => PrometheusText.Parse(TestNetwork.Exec(w1.Router.HostNamespace, $"{curl} -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut).Value(series);
        long before = Generation(w1);
        double exposedBefore = Exposed("useroverlay_cluster_key_generation");
        string pcap = Path.Combine(Path.GetTempPath(), $"{net.Prefix}rotation.pcap");
        var capture = net.Start(m1.Router.HostNamespace, tcpdump, ["-i", "eth0", "-U", "-w", pcap, "udp port 4789 or udp port 4500"]);
        await Task.Delay(500, TestContext.Current.CancellationToken);
        // 300 pings at 40 ms: 12 s, across several rotations of the 2 s interval.
        var ping = TestNetwork.Exec(a, $"ping -q -c 300 -i 0.04 -W 1 {bAddress}", TimeSpan.FromSeconds(60));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Shell.Run("kill", ["-INT", capture.Id.ToString(CultureInfo.InvariantCulture)]);
        await capture.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        long after = Generation(w1);
        double exposedAfter = Exposed("useroverlay_cluster_key_generation");

        Assert.Contains("300 packets transmitted, 300 received", ping.StdOut);
        Assert.True(after - before >= 3, $"the keys rotated {after - before} times during the pings (generation {before} → {after})");
        // useroverlay_cluster_key_generation moves with them (read a moment apart from the status: within a rotation).
        Assert.True(exposedAfter - exposedBefore >= 2, $"useroverlay_cluster_key_generation moved {exposedBefore} → {exposedAfter} while the status went {before} → {after}");
        Assert.InRange(exposedAfter, after - 1, after + 1);
        var datagrams = Shell.Run(tshark, ["-r", pcap, "-T", "fields", "-e", "udp.dstport", "-e", "esp.spi"]).EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        File.Delete(pcap);
        Assert.True(datagrams.Length >= 600, $"only {datagrams.Length} datagrams captured");
        Assert.All(datagrams, d => Assert.StartsWith("4500\t0x", d)); // ESP-in-UDP only: no VXLAN datagram in clear
        Assert.True(datagrams.Select(d => d.Split('\t')[1]).Distinct().Count() >= 6, "the SPIs change as the keys rotate");
    }

    [Fact]
    public async Task Hostile_input_on_the_control_port_is_refused_and_counted_and_the_manager_keeps_serving()
    {
        Requires.Root();
        string curl = Requires.Tool("curl", "curl");
        using var net = new TestNetwork("ch");
        using var m1 = new Node(net, 1, "encryption: { esp: udp }\nmetrics: 127.0.0.1:9464");
        using var w1 = new Node(net, 2);
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync());
        Init(m1);
        PrometheusText Metrics() => PrometheusText.Parse(TestNetwork.Exec(m1.Router.HostNamespace, $"{curl} -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut);
        var before = Metrics();
        var attacker = net.AddHost("x", "192.0.2.66/24");

        // Garbage bytes, plain HTTP on the TLS port, TLS without a client certificate on a node route.
        TestNetwork.Exec(attacker, "bash -c 'head -c 4096 /dev/urandom > /dev/tcp/192.0.2.1/2377'");
        TestNetwork.Exec(attacker, $"{curl} -s -m 5 http://192.0.2.1:2377/v1/cluster/state");
        var noCert = TestNetwork.Exec(attacker, $"{curl} -s -k -m 5 -o /dev/null -w %{{http_code}} https://192.0.2.1:2377/v1/cluster/state");
        Assert.Equal("401", noCert.StdOut.Trim());
        var join = TestNetwork.Exec(attacker, $"{curl} -s -k -m 5 -H Content-Type:application/json -d {{\"token\":\"SWMTKN-1-x\"}} https://192.0.2.1:2377/v1/cluster/join");
        Assert.Contains("bad_token", join.StdOut);

        // The manager keeps serving: a worker joins, and the refusals are counted by reason.
        w1.Cli(2, "swarm", "join", "--token", Token(m1, "worker"), m1.Address).EnsureSuccess();
        using var status = JsonDocument.Parse(m1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut);
        var refusals = status.RootElement.GetProperty("refusals");
        Assert.True(refusals.GetProperty("tls_handshake_failed").GetInt64() >= 1, refusals.ToString());
        Assert.True(refusals.GetProperty("no_certificate").GetInt64() >= 1, refusals.ToString());
        Assert.True(refusals.GetProperty("bad_token").GetInt64() >= 1, refusals.ToString());
        Assert.True(refusals.GetProperty("joined_worker").GetInt64() >= 1, refusals.ToString());

        // The same counts, and the node's cluster state, in Prometheus' text format: the join moved the nodes and the
        // state's revision.
        var metrics = Metrics();
        Assert.Equal(1, metrics.Value("useroverlay_cluster_active"));
        Assert.Equal(1, metrics.Value("useroverlay_cluster_connected"));
        Assert.Equal(1, before.Value("useroverlay_cluster_nodes"));
        Assert.Equal(2, metrics.Value("useroverlay_cluster_nodes"));
        Assert.True(metrics.Value("useroverlay_cluster_state_revision") > before.Value("useroverlay_cluster_state_revision"),
            $"useroverlay_cluster_state_revision did not move with the join: {before.Value("useroverlay_cluster_state_revision")} → {metrics.Value("useroverlay_cluster_state_revision")}");
        foreach (string reason in new[] { "no_certificate", "bad_token", "joined_worker" })
            Assert.True(metrics.Value("useroverlay_cluster_control_port_events_total", "reason=" + reason) > before.Value("useroverlay_cluster_control_port_events_total", "reason=" + reason), reason);
    }

    [Fact]
    public async Task A_promoted_worker_becomes_a_manager_and_a_demoted_manager_a_worker()
    {
        Requires.Root();
        using var net = new TestNetwork("cp");
        using var m1 = new Node(net, 1);
        using var w1 = new Node(net, 2);
        await Task.WhenAll(m1.Router.StartAsync(), w1.Router.StartAsync());
        Init(m1);
        w1.Cli(2, "swarm", "join", "--token", Token(m1, "worker"), m1.Address).EnsureSuccess();
        string Role(Node n)
        {
            var st = JsonDocument.Parse(n.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement;
            return st.GetProperty("state").GetString() == "active" ? st.GetProperty("role").GetString()! : "";
        }

        Assert.Contains("is now a manager", m1.Cli(2, "node", "promote", w1.Router.Name).EnsureSuccess().StdOut);
        await Eventually.True(() => Role(w1) == "manager", TimeSpan.FromSeconds(40), "the promoted worker runs as a manager");
        await Eventually.True(() => w1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.60.0/24", "made-on-w1").ExitCode == 0,
            TimeSpan.FromSeconds(30), "the new manager creates a network");
        await Eventually.True(() => m1.Cli(2, "network", "ls").StdOut.Contains("made-on-w1"), TimeSpan.FromSeconds(40), "the first manager sees it");
        Assert.Contains(m1.Router.Name, w1.Cli(2, "node", "ls").EnsureSuccess().StdOut);
        Assert.StartsWith("SWMTKN-1-", Token(w1, "worker"));

        Assert.Contains("is now a worker", m1.Cli(2, "node", "demote", w1.Router.Name).EnsureSuccess().StdOut);
        await Eventually.True(() => Role(w1) == "worker", TimeSpan.FromSeconds(40), "the demoted manager runs as a worker");
        Refused(w1.Cli(2, "node", "ls"), "node ls is for managers");
        Refused(m1.Cli(2, "node", "demote", m1.Router.Name), "last manager");
        m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.61.0/24", "after-demote").EnsureSuccess();
        await Eventually.True(() => w1.Cli(2, "network", "ls").StdOut.Contains("after-demote"), TimeSpan.FromSeconds(40), "the demoted node follows the cluster as a worker");
    }

    [Fact]
    public async Task A_worker_restarted_after_the_manager_it_joined_through_died_finds_the_other_managers()
    {
        Requires.Root();
        using var net = new TestNetwork("cw");
        using var m1 = new Node(net, 1);
        using var m2 = new Node(net, 2);
        using var m3 = new Node(net, 3);
        using var w1 = new Node(net, 4);
        await Task.WhenAll(new[] { m1, m2, m3, w1 }.Select(n => n.Router.StartAsync()));
        Init(m1);
        w1.Cli(2, "swarm", "join", "--token", Token(m1, "worker"), m1.Address).EnsureSuccess(); // it knows only m1 now
        string managerToken = Token(m1, "manager");
        foreach (var m in new[] { m2, m3 }) m.Cli(2, "swarm", "join", "--token", managerToken, m1.Address).EnsureSuccess();
        m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.70.0/24", "blue").EnsureSuccess();
        int Managers(Node n) => JsonDocument.Parse(n.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement.GetProperty("managers").GetArrayLength();
        await Eventually.True(() => Managers(w1) == 3 && w1.Cli(2, "network", "ls").StdOut.Contains("blue"), TimeSpan.FromSeconds(40), "the worker learns of three managers");

        await w1.Router.StopAsync();
        await m1.Router.KillAsync();
        await w1.Router.StartAsync();
        string ns = net.AddNamespace("a");
        await Eventually.True(() => w1.Cli(2, "network", "connect", "blue", ns).ExitCode == 0, TimeSpan.FromSeconds(30),
            "the restarted worker attaches through a surviving manager");
        // Its state requests fail over too (the first may still be waiting on the dead manager when the attach succeeds).
        await Eventually.True(() => JsonDocument.Parse(w1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut).RootElement.GetProperty("connected").GetBoolean(),
            TimeSpan.FromSeconds(60), "the restarted worker's state requests reach a surviving manager");
    }
}
