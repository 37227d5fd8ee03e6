using System.Globalization;
using System.Text.RegularExpressions;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Names (DNS) with real clients: two hosts (`useroverlay up` with gossip) on one network; workloads made with `run`
/// (which gives them a resolv.conf pointing at the gateway) and `network connect`; glibc's resolver (`getent hosts`)
/// and `dig` in the workloads' namespaces ask the router at the gateway; a real upstream (dnsmasq in a namespace of
/// the test, on the underlay at 192.0.2.53, its own configuration, no resolv.conf and no hosts file) answers a test
/// zone for forwarded names. A name goes with its endpoint, and with its host when that host dies, and comes back with it.
/// </summary>
public sealed class DnsTests
{
    private const string GossipKey = "cQBCQpyT3UDNeB9uT7qCaUqEyHEPIRmkgxSq/1iHxc0=";
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(30);

    private static string Config(int host) => $$"""
        underlay: { address: 192.0.2.{{host}} }
        gossip:
          bind: 192.0.2.{{host}}
          join: {{(host == 1 ? "[]" : "[192.0.2.1]")}}
          key: {{GossipKey}}
          probe_interval: 500ms
          suspicion_mult: 3
          push_pull_interval: 5s
          reconnect_interval: 1s
        dns: { upstream: [192.0.2.53] }
        """;

    private sealed class Host(TestNetwork net, int index) : IDisposable
    {
        private readonly List<string> _workloads = [];

        public RouterProcess Router { get; } = new(net, net.AddHost($"h{index}", $"192.0.2.{index}/24"), $"{net.Prefix}h{index}", Config(index));

        public string Workload(string tag)
        {
            string name = $"{net.Prefix}{tag}";
            _workloads.Add(name);
            return name;
        }

        public CommandResult Cli(params string[] args)
        {
            int sub = args[0] == "network" ? 2 : 1;
            return Shell.Run(RouterProcess.Command[0], [.. RouterProcess.Command[1..], .. args[..sub], "-H", Router.Name, .. args[sub..]], TimeSpan.FromSeconds(60));
        }

        /// <summary>A command in a fresh workload on blue (run: the namespace gets the gateway as its resolver).</summary>
        public CommandResult InWorkload(params string[] command) => Cli(["run", "--network", "blue", "--", .. command]);

        public void Dispose()
        {
            Router.Dispose();
            foreach (string w in _workloads)
                if (File.Exists($"/run/netns/uo-{w}")) Shell.Run("ip", ["netns", "del", $"uo-{w}"]);
            foreach (string w in _workloads)
                try { Directory.Delete($"/etc/netns/uo-{w}", recursive: true); } catch (DirectoryNotFoundException) { }
            try { Directory.Delete(DaemonOptions.DefaultStateDirectory(Router.Name), recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>dnsmasq in its own namespace on the underlay, answering the zone dns.test from its own configuration only (the file goes on Dispose).</summary>
    private sealed class Dnsmasq : IDisposable
    {
        private readonly string _conf;

        public Dnsmasq(TestNetwork net) => _conf = StartDnsmasq(net);

        public void Dispose() => File.Delete(_conf);
    }

    private static string StartDnsmasq(TestNetwork net)
    {
        string ns = net.AddHost("dns", "192.0.2.53/24");
        string conf = Path.Combine(Path.GetTempPath(), $"{net.Prefix}dnsmasq.conf");
        File.WriteAllText(conf, """
            no-resolv
            no-hosts
            listen-address=192.0.2.53
            bind-interfaces
            user=root
            group=root
            pid-file=
            host-record=app.dns.test,198.18.77.8
            address=/wild.dns.test/198.18.77.9
            """);
        net.Start(ns, Requires.Tool("dnsmasq", "dnsmasq-base"), ["--keep-in-foreground", $"--conf-file={conf}"]);
        return conf;
    }

    private static string[] Lines(CommandResult r) => r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Names_resolve_across_hosts_for_run_connect_and_aliases_and_the_rest_is_forwarded_upstream()
    {
        Requires.Root();
        Requires.Tool("dig", "dnsutils");
        Requires.Tool("getent", "libc-bin");
        using var net = new TestNetwork("dn");
        using var dnsmasq = new Dnsmasq(net);
        using var h1 = new Host(net, 1);
        using var h2 = new Host(net, 2);
        await h1.Router.StartAsync();
        await h2.Router.StartAsync();
        foreach (var h in new[] { h1, h2 })
            h.Cli("network", "create", "--subnet", "198.18.5.0/24", "--vni", "6005", "blue").EnsureSuccess();

        // run on h1: a workload with a name and an alias; a second one under the same alias (round-robin).
        string web = h1.Workload("web"), web2 = h1.Workload("web2");
        h1.Cli("run", "-d", "--name", web, "--network", "blue", "--ip", "198.18.5.11", "--alias", "www").EnsureSuccess();
        h1.Cli("run", "-d", "--name", web2, "--network", "blue", "--ip", "198.18.5.12", "--alias", "www").EnsureSuccess();
        Assert.Equal("nameserver 198.18.5.1", File.ReadAllLines($"/etc/netns/uo-{web}/resolv.conf").Single(l => l.StartsWith("nameserver", StringComparison.Ordinal)));

        // connect on h2: a namespace of the test's own, with an alias; connect says what to put in resolv.conf.
        string c2 = net.AddNamespace("c2");
        var connect = h2.Cli("network", "connect", "--ip", "198.18.5.21", "--alias", "api", "blue", c2).EnsureSuccess();
        Assert.Contains($"put `nameserver 198.18.5.1` in /etc/netns/{c2}/resolv.conf", connect.StdOut);

        // glibc on h2 (run's resolv.conf) finds h1's workload by name, by gossip.
        CommandResult r = default!;
        await Eventually.True(() => (r = h2.InWorkload("getent", "hosts", web)).ExitCode == 0, Converge, $"getent hosts {web} on h2");
        Assert.Matches($@"^198\.18\.5\.11\s+{Regex.Escape(web)}$", Lines(r).Single());

        // dig on h2 and on h1 (a name from connect), with the server given, as a user of a foreign namespace would.
        Assert.Equal(["198.18.5.11"], Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=2", web)));
        await Eventually.True(() => Lines(h1.InWorkload("dig", "+short", "+tries=1", "+time=2", "api")) is ["198.18.5.21"], Converge, "dig api (connect's alias) on h1");
        Assert.Equal(["198.18.5.21"], Lines(TestNetwork.Exec(c2, "dig +short +tries=1 +time=2 @198.18.5.1 api")));
        Assert.Equal([$"{web}."], Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=2", "-x", "198.18.5.11")));

        // Over TCP too (RFC 7766): dig +tcp in connect's namespace (the gateway given) and in a workload of run's.
        Assert.Equal(["198.18.5.21"], Lines(TestNetwork.Exec(c2, "dig +tcp +short +tries=1 +time=2 @198.18.5.1 api")));
        Assert.Equal(["198.18.5.11"], Lines(h2.InWorkload("dig", "+tcp", "+short", "+tries=1", "+time=2", web)));
        // A name that would be forwarded: over TCP the gateway answers SERVFAIL (forwarding is over UDP only).
        Assert.Contains("status: SERVFAIL", h2.InWorkload("dig", "+tcp", "+tries=1", "+time=2", "app.dns.test").StdOut);

        // The alias with two endpoints: both answered, the first one rotating.
        var firsts = new HashSet<string>();
        for (int i = 0; i < 4; i++)
        {
            var www = Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=2", "www"));
            Assert.Equal(["198.18.5.11", "198.18.5.12"], www.Order(StringComparer.Ordinal));
            firsts.Add(www[0]);
        }
        Assert.Equal(2, firsts.Count);

        // Other names go to the upstream (dnsmasq): its test zone answers through the gateway.
        Assert.Equal(["198.18.77.8"], Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=3", "app.dns.test")));
        await Eventually.True(() => h1.InWorkload("getent", "hosts", "x.wild.dns.test").StdOut.Contains("198.18.77.9"), Converge, "getent of a forwarded name");

        // A detached endpoint's name goes (on the other host too); connect's name with it.
        h2.Cli("network", "disconnect", "blue", c2).EnsureSuccess();
        await Eventually.True(() => Lines(h1.InWorkload("dig", "+short", "+tries=1", "+time=2", "api")).Length == 0, Converge, "api gone on h1 after disconnect");
        // One of two endpoints under an alias goes: the alias answers the other one only, whose own name stays. (h2's
        // pool of blue is its own: its short-lived workloads, which ask here, take addresses one after another, and pass
        // over web's 198.18.5.11, which gossip says h1's endpoint holds — taking it would give them web's MAC too.)
        h1.Cli("rm", web2).EnsureSuccess();
        CommandResult last = default!;
        await Eventually.True(() => Lines(last = h2.InWorkload("dig", "+short", "+tries=1", "+time=2", "www")) is ["198.18.5.11"], Converge,
            $"www has one address after rm (dig: exit {last?.ExitCode}, {last?.StdOut} {last?.StdErr})");
        for (int i = 0; i < 4; i++) // each ask is a new workload on h2, so their addresses go past web's
            Assert.Equal(["198.18.5.11"], Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=2", web)));
        Assert.Equal(["198.18.5.11"], Lines(h2.InWorkload("dig", "+short", "+tries=1", "+time=2", "www")));

        var status = await h2.Router.StatusAsync();
        Assert.Equal(0, status.Networks.Single(n => n.Name == "blue").Counters.Drops["gateway_unhandled"]);
    }

    [Fact]
    public async Task A_dead_hosts_names_go_with_its_endpoints_and_come_back_when_it_returns()
    {
        Requires.Root();
        Requires.Tool("dig", "dnsutils");
        using var net = new TestNetwork("dd");
        using var dnsmasq = new Dnsmasq(net);
        using var h1 = new Host(net, 1);
        using var h2 = new Host(net, 2);
        await h1.Router.StartAsync();
        await h2.Router.StartAsync();
        foreach (var h in new[] { h1, h2 })
            h.Cli("network", "create", "--subnet", "198.18.6.0/24", "--vni", "6006", "blue").EnsureSuccess();
        string db = h2.Workload("db");
        h2.Cli("run", "-d", "--name", db, "--network", "blue", "--ip", "198.18.6.12").EnsureSuccess();
        string reader = h1.Workload("reader");
        h1.Cli("run", "-d", "--name", reader, "--network", "blue", "--ip", "198.18.6.11").EnsureSuccess();
        // The reader asks the gateway from its namespace (its resolv.conf is the gateway's; @ says so for dig anyway).
        string[] Ask() => Lines(TestNetwork.Exec($"uo-{reader}", $"dig +short +tries=1 +time=2 @198.18.6.1 {db}"));
        await Eventually.True(() => Ask() is ["198.18.6.12"], Converge, $"{db} answers on h1");

        await h2.Router.KillAsync(); // h2 dies: gossip declares it dead, its endpoints (and names) go
        await Eventually.True(() => Ask().Length == 0, Converge, $"{db} gone once h2 is declared dead");

        await h2.Router.StartAsync(); // it comes back with its workload (restored from its state): so does the name
        await Eventually.True(() => Ask() is ["198.18.6.12"], TimeSpan.FromSeconds(60), $"{db} back once h2 returns");
    }
}
