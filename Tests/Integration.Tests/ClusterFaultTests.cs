using System.Diagnostics;
using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Faults of the embedded store among real daemons in namespaces (underlay 192.0.2.0/24): three managers with one
/// partitioned away (its link down: the minority refuses writes with a clear error, the majority goes on, the
/// partitioned one catches up when it heals), then every manager killed and restarted at once (the state intact).
/// And the etcd store end to end: an etcd member in a manager's namespace, <c>swarm init --store etcd://…</c> through the
/// CLI, a second daemon joining as a manager over the underlay, both serving. On both stores, a manager daemon
/// SIGKILLed by PID amid a burst of attaches and network creates (every address one owner, no half-made network). The
/// etcd store's other faults are in Cluster.Tests (EtcdManagersTests, EtcdManagersFaultTests). Prints its figures.
/// </summary>
public sealed class ClusterFaultTests(ITestOutputHelper output)
{
    private sealed class Node(TestNetwork net, int index) : IDisposable
    {
        public string Address { get; } = $"192.0.2.{index}";
        public string Namespace { get; } = net.AddHost($"n{index}", $"192.0.2.{index}/24");
        private RouterProcess? _router;
        public RouterProcess Router => _router ??= new(net, Namespace, $"{net.Prefix}n{index}", $"underlay: {{ address: 192.0.2.{index} }}\nencryption: {{ esp: udp }}");

        public CommandResult Cli(int words, params string[] args) =>
            Shell.Run(RouterProcess.Command[0], [.. RouterProcess.Command[1..], .. args[..words], "-H", Router.Name, .. args[words..]], TimeSpan.FromSeconds(90));

        public void Dispose()
        {
            Router.Dispose();
            try { Directory.Delete(DaemonOptions.DefaultStateDirectory(Router.Name), recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    private void Figure(string line)
    {
        output.WriteLine("[figures] " + line);
        Console.WriteLine("[figures] " + line);
    }

    private static string Networks(Node n) => n.Cli(2, "network", "ls").StdOut;

    private static int Managers(Node n)
    {
        var r = n.Cli(2, "node", "ls", "--json");
        if (r.ExitCode != 0) return -1;
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement.EnumerateArray().Count(e => e.GetProperty("role").GetString() == "manager");
    }

    [Fact]
    public async Task Three_embedded_managers_one_partitioned_away_the_minority_refuses_the_majority_goes_on_it_heals_and_all_restart_at_once()
    {
        Requires.Root();
        using var net = new TestNetwork("cf");
        using var m1 = new Node(net, 1);
        using var m2 = new Node(net, 2);
        using var m3 = new Node(net, 3);
        var managers = new[] { m1, m2, m3 };
        await Task.WhenAll(managers.Select(n => n.Router.StartAsync()));
        m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--default-addr-pool", "198.18.0.0/16").EnsureSuccess();
        string token = m1.Cli(2, "swarm", "join-token", "-q", "manager").EnsureSuccess().StdOut.Trim();
        foreach (var m in new[] { m2, m3 }) m.Cli(2, "swarm", "join", "--token", token, m1.Address).EnsureSuccess();
        foreach (var m in managers)
            await Eventually.True(() => Managers(m) == 3, TimeSpan.FromSeconds(30), $"{m.Router.Name} lists three managers");
        await Eventually.True(() => m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.50.0/24", "before").ExitCode == 0, TimeSpan.FromSeconds(20), "a create before the partition");
        foreach (var m in managers) await Eventually.True(() => Networks(m).Contains("before"), TimeSpan.FromSeconds(30), $"{m.Router.Name} serves 'before'");

        // m3 is cut off from the other two (its underlay link down; its CLI socket still answers).
        net.SetHostLink(m3.Namespace, up: false);
        var cut = Stopwatch.StartNew();
        // At once: the minority's write (refused when no leader takes it) and the majority's (accepted, after a new
        // election if m3 led).
        var minority = Task.Run(() => (Result: m3.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.51.0/24", "minority"), At: cut.Elapsed));
        int retried = 0;
        await Eventually.True(() =>
        {
            bool ok = m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.52.0/24", "majority") is var r
                && (r.ExitCode == 0 || r.StdErr.Contains("already", StringComparison.Ordinal));
            if (!ok) retried++;
            return ok;
        }, TimeSpan.FromSeconds(40), "the majority accepts a write");
        var majorityAfter = cut.Elapsed;
        var (refused, refusedAfter) = await minority;
        Assert.True(refused.ExitCode != 0, $"the partitioned manager accepted a write: {refused.StdOut}");
        Assert.False(string.IsNullOrWhiteSpace(refused.StdErr), "the refusal says why");
        Assert.DoesNotContain("minority", Networks(m1));
        Assert.DoesNotContain("majority", Networks(m3));

        // Healed: m3 catches up with what the majority did, and accepts writes again.
        net.SetHostLink(m3.Namespace, up: true);
        var healed = Stopwatch.StartNew();
        await Eventually.True(() => Networks(m3).Contains("majority"), TimeSpan.FromSeconds(60), "the healed manager catches up");
        var caughtUp = healed.Elapsed;
        await Eventually.True(() => m3.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.53.0/24", "healed") is var r
            && (r.ExitCode == 0 || r.StdErr.Contains("already", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the healed manager accepts a write");
        foreach (var m in managers) Assert.DoesNotContain("minority", Networks(m));
        Figure($"embedded store, 3 managers, one partitioned: its write refused after {refusedAfter.TotalSeconds:0.0} s ({refused.StdErr.Trim()}); the majority's first write succeeded {majorityAfter.TotalSeconds:0.0} s after the cut ({retried} retried); healed, the minority caught up in {caughtUp.TotalSeconds:0.0} s");

        // Every manager killed and restarted at once: the same networks and nodes, and writes go on.
        foreach (var m in managers) await Eventually.True(() => Networks(m).Contains("healed"), TimeSpan.FromSeconds(30), $"{m.Router.Name} serves 'healed'");
        string expected = string.Join(",", Networks(m1).Split('\n').Where(l => l.Contains("swarm")).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).Order());
        await Task.WhenAll(managers.Select(m => m.Router.KillAsync()));
        var restart = Stopwatch.StartNew();
        await Task.WhenAll(managers.Select(m => m.Router.StartAsync(TimeSpan.FromSeconds(90))));
        await Eventually.True(() => m2.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.54.0/24", "restarted") is var r
            && (r.ExitCode == 0 || r.StdErr.Contains("already", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "a write after all managers restarted");
        var writable = restart.Elapsed;
        foreach (var m in managers)
        {
            await Eventually.True(() => Networks(m).Contains("restarted"), TimeSpan.FromSeconds(40), $"{m.Router.Name} serves 'restarted'");
            string now = string.Join(",", Networks(m).Split('\n').Where(l => l.Contains("swarm") && !l.Contains("restarted")).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).Order());
            Assert.Equal(expected, now);
            using var doc = JsonDocument.Parse(m.Cli(2, "node", "ls", "--json").EnsureSuccess().StdOut);
            Assert.Equal(3, doc.RootElement.GetArrayLength());
        }
        Figure($"embedded store, all 3 managers killed and restarted at once: writable again {writable.TotalSeconds:0.0} s after the restart began, networks and nodes intact");
    }

    [Fact]
    public async Task Two_daemons_on_etcd_through_the_cli_init_join_as_managers_and_serve_one_network()
    {
        Requires.Root();
        string etcdBinary = Requires.Tool("etcd", "etcd-server");
        using var net = new TestNetwork("ce");
        using var m1 = new Node(net, 1);
        using var m2 = new Node(net, 2);
        await Task.WhenAll(m1.Router.StartAsync(), m2.Router.StartAsync());

        // Options refused by name before anything is made.
        Assert.Contains("store-prefix", m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--store-prefix", "/uo").StdErr);
        var unreachable = m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--store", "etcd://192.0.2.99:2379");
        Assert.True(unreachable.ExitCode != 0 && unreachable.StdErr.Contains("store", StringComparison.Ordinal), unreachable.StdErr);
        Assert.Contains("inactive", m1.Cli(2, "swarm", "status").StdOut);

        // One etcd member in m1's namespace, on its underlay address (started again, on the same data, after the outage).
        string data = Directory.CreateTempSubdirectory("uo-etcd-ns-").FullName;
        Process StartEtcd()
        {
            var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "netns", "exec", m1.Namespace, etcdBinary, "--name", "e0", "--data-dir", Path.Combine(data, "e0"),
                "--listen-client-urls", "http://192.0.2.1:23790", "--advertise-client-urls", "http://192.0.2.1:23790",
                "--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
                "--initial-cluster", "e0=http://127.0.0.1:23800", "--initial-cluster-state", "new" })
                start.ArgumentList.Add(a);
            var p = Process.Start(start)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return p;
        }
        var etcd = StartEtcd();
        try
        {
            var sw = Stopwatch.StartNew();
            await Eventually.True(() => m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--default-addr-pool", "198.18.0.0/16",
                "--store", "etcd://192.0.2.1:23790", "--store-prefix", "/uo-it").ExitCode == 0, TimeSpan.FromSeconds(30), "swarm init on etcd");
            using (var st = JsonDocument.Parse(m1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut))
                Assert.Equal("etcd:http://192.0.2.1:23790/uo-it/", st.RootElement.GetProperty("store").GetString());
            string token = m1.Cli(2, "swarm", "join-token", "-q", "manager").EnsureSuccess().StdOut.Trim();
            Assert.Contains("as a manager", m2.Cli(2, "swarm", "join", "--token", token, m1.Address).EnsureSuccess().StdOut);
            Assert.Contains("Store: etcd:http://192.0.2.1:23790/uo-it/", m2.Cli(2, "swarm", "status").EnsureSuccess().StdOut);
            m2.Cli(2, "network", "create", "--attachable", "--opt", "encrypted", "--subnet", "198.18.60.0/24", "blue").EnsureSuccess();
            await Eventually.True(() => Networks(m1).Contains("blue"), TimeSpan.FromSeconds(20), "m1 serves the network m2 created");
            Assert.Equal(2, Managers(m1));
            string seal = Path.Combine(DaemonOptions.DefaultStateDirectory(m1.Router.Name), "cluster", "seal.key");
            Assert.Equal(File.ReadAllBytes(seal), File.ReadAllBytes(Path.Combine(DaemonOptions.DefaultStateDirectory(m2.Router.Name), "cluster", "seal.key")));
            Figure($"two daemons on etcd through the CLI: init, a manager's join and a network served by both in {sw.Elapsed.TotalSeconds:0.0} s");

            // etcd unreachable for 30 s: the workloads of both hosts go on talking (the data plane runs on each host's own
            // state), a control write fails with a clear error, and once etcd is back the next one succeeds, made once.
            string a = net.AddNamespace("a"), b = net.AddNamespace("b");
            m1.Cli(2, "network", "connect", "blue", a).EnsureSuccess();
            m2.Cli(2, "network", "connect", "blue", b).EnsureSuccess();
            string bAddress = AddressOf(b);
            await Eventually.True(() => TestNetwork.Ping(a, bAddress, count: 1), TimeSpan.FromSeconds(20), "a pings b before the outage");
            etcd.Kill();
            etcd.WaitForExit();
            etcd.Dispose();
            var outage = Stopwatch.StartNew();
            var ping = Task.Run(() => TestNetwork.Exec(a, $"ping -n -q -c 100 -i 0.3 -W 1 {bAddress}", TimeSpan.FromSeconds(90)));
            var refused = m2.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.61.0/24", "red");
            Assert.True(refused.ExitCode != 0, "a network create while etcd is down must fail: " + refused.StdOut);
            Assert.False(string.IsNullOrWhiteSpace(refused.StdErr), "the refused create says why");
            Figure($"etcd down: a network create refused after {outage.Elapsed.TotalSeconds:0.0} s: {refused.StdErr.Trim()}");
            var pinged = await ping;
            Assert.True(outage.Elapsed >= TimeSpan.FromSeconds(29), $"the outage lasted {outage.Elapsed.TotalSeconds:0.0} s");
            Assert.Contains("100 received", pinged.StdOut);
            Assert.Contains(" 0% packet loss", pinged.StdOut);
            etcd = StartEtcd();
            var back = Stopwatch.StartNew();
            int retried = 0;
            await Eventually.True(() =>
            {
                var r = m2.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.61.0/24", "red");
                if (Done(r)) return true;
                retried++;
                return false;
            }, TimeSpan.FromSeconds(60), "a network create succeeds once etcd is back");
            Figure($"etcd down {outage.Elapsed.TotalSeconds - back.Elapsed.TotalSeconds:0} s: 100 of 100 pings across hosts answered; after etcd's restart a create succeeded in {back.Elapsed.TotalSeconds:0.0} s ({retried} retried)");
            foreach (var n in new[] { m1, m2 })
                await Eventually.True(() => Listed(n).TryGetValue("red", out var rows) && rows.Count == 1, TimeSpan.FromSeconds(30), $"{n.Router.Name} lists 'red' once");
        }
        finally
        {
            try { if (!etcd.HasExited) etcd.Kill(); etcd.WaitForExit(); } catch (InvalidOperationException) { }
            etcd.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }
    private static string AddressOf(string ns) =>
        TestNetwork.Exec(ns, "ip -4 -o addr show eth0").EnsureSuccess().StdOut.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3].Split('/')[0];

    /// <summary><c>network ls</c>'s rows by name: (VNI, subnet).</summary>
    private static Dictionary<string, List<(string Vni, string Subnet)>> Listed(Node n)
    {
        var rows = new Dictionary<string, List<(string, string)>>(StringComparer.Ordinal);
        foreach (string line in Networks(n).Split('\n').Skip(1))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6) continue;
            if (!rows.TryGetValue(f[1], out var list)) rows[f[1]] = list = [];
            list.Add((f[4], f[5]));
        }
        return rows;
    }

    private static bool Done(CommandResult r) => r.ExitCode == 0 || r.StdErr.Contains("already", StringComparison.OrdinalIgnoreCase);

    [Theory]
    [InlineData("embedded")]
    [InlineData("etcd")]
    public async Task A_manager_killed_in_the_middle_of_allocations_and_creates_leaves_every_address_one_owner_and_no_half_made_network(string store)
    {
        Requires.Root();
        string? etcdBinary = store == "etcd" ? Requires.Tool("etcd", "etcd-server") : null;
        using var net = new TestNetwork(store == "etcd" ? "ke" : "kr");
        using var m1 = new Node(net, 1);
        using var m2 = new Node(net, 2);
        using var m3 = new Node(net, 3);
        using var w4 = new Node(net, 4);
        // Embedded: three managers (a majority survives the kill) and a worker; etcd: two managers and a worker.
        Node[] managers = store == "etcd" ? [m1, m2] : [m1, m2, m3];
        Node[] hosts = [.. managers, w4];
        await Task.WhenAll(hosts.Select(n => n.Router.StartAsync()));
        Process? etcd = null;
        string? data = null;
        try
        {
            if (etcdBinary is not null)
            {
                // One etcd member in m3's namespace (m3 runs no daemon here), on its underlay address.
                data = Directory.CreateTempSubdirectory("uo-etcd-kill-").FullName;
                var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (string a in new[] { "netns", "exec", m3.Namespace, etcdBinary, "--name", "e0", "--data-dir", Path.Combine(data, "e0"),
                    "--listen-client-urls", "http://192.0.2.3:23790", "--advertise-client-urls", "http://192.0.2.3:23790",
                    "--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
                    "--initial-cluster", "e0=http://127.0.0.1:23800", "--initial-cluster-state", "new" })
                    start.ArgumentList.Add(a);
                etcd = Process.Start(start)!;
                etcd.OutputDataReceived += (_, _) => { };
                etcd.ErrorDataReceived += (_, _) => { };
                etcd.BeginOutputReadLine();
                etcd.BeginErrorReadLine();
                await Eventually.True(() => m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--default-addr-pool", "198.18.0.0/16",
                    "--store", "etcd://192.0.2.3:23790", "--store-prefix", "/uo-kill").ExitCode == 0, TimeSpan.FromSeconds(30), "swarm init on etcd");
            }
            else
                m1.Cli(2, "swarm", "init", "--advertise-addr", m1.Address, "--default-addr-pool", "198.18.0.0/16").EnsureSuccess();
            string managerToken = m1.Cli(2, "swarm", "join-token", "-q", "manager").EnsureSuccess().StdOut.Trim();
            foreach (var m in managers.Skip(1)) m.Cli(2, "swarm", "join", "--token", managerToken, m1.Address).EnsureSuccess();
            w4.Cli(2, "swarm", "join", "--token", m1.Cli(2, "swarm", "join-token", "-q", "worker").EnsureSuccess().StdOut.Trim(), m1.Address).EnsureSuccess();
            foreach (var m in managers)
                await Eventually.True(() => Managers(m) == managers.Length, TimeSpan.FromSeconds(30), $"{m.Router.Name} lists {managers.Length} managers");
            m1.Cli(2, "network", "create", "--attachable", "--subnet", "198.18.70.0/24", "blue").EnsureSuccess();
            foreach (var n in hosts) await Eventually.True(() => Networks(n).Contains("blue"), TimeSpan.FromSeconds(30), $"{n.Router.Name} serves 'blue'");

            // The victim: the Raft leader (every write goes through it), or m1 on etcd.
            var victim = m1;
            using (var st = JsonDocument.Parse(m1.Cli(2, "swarm", "status", "--json").EnsureSuccess().StdOut))
                if (st.RootElement.TryGetProperty("leader", out var l) && l.GetString() is { } leader)
                    victim = managers.FirstOrDefault(m => leader.StartsWith(m.Address + ":", StringComparison.Ordinal)) ?? m1;
            var survivor = managers.First(m => m != victim);
            var attachers = hosts.Where(h => h != victim).ToArray();

            // The burst: 24 attaches (each an IP allocation in the cluster's IPAM) from the other hosts, started 100 ms
            // apart, and 6 network creates through the victim, 300 ms apart; the victim is SIGKILLed as soon as the first
            // of them is answered, so some are answered before, some are in flight and the rest are sent to a dead manager.
            var workloads = Enumerable.Range(0, 24).Select(i => (Ns: net.AddNamespace($"w{i}"), Host: attachers[i % attachers.Length])).ToList();
            var created = Enumerable.Range(0, 6).Select(i => (Name: $"k{i}", Subnet: $"198.18.{80 + i}.0/24")).ToList();
            var attaches = workloads.Select((w, i) => Task.Run(async () => { await Task.Delay(i * 100); return w.Host.Cli(2, "network", "connect", "blue", w.Ns); })).ToList();
            var creates = created.Select((c, i) => Task.Run(async () => { await Task.Delay(i * 300); return victim.Cli(2, "network", "create", "--attachable", "--subnet", c.Subnet, c.Name); })).ToList();
            await Task.WhenAny([.. attaches, .. creates]);
            int pid = victim.Router.Pid;
            await victim.Router.KillAsync();
            var killed = Stopwatch.StartNew();
            int answeredBefore = attaches.Concat(creates).Count(t => t.IsCompleted);
            var attachResults = await Task.WhenAll(attaches);
            var createResults = await Task.WhenAll(creates);
            var burstOver = killed.Elapsed;
            int attachesFailed = attachResults.Count(r => r.ExitCode != 0), createsFailed = createResults.Count(r => r.ExitCode != 0);
            foreach (var r in attachResults.Concat(createResults).Where(r => r.ExitCode != 0))
                Assert.False(string.IsNullOrWhiteSpace(r.StdErr), "a failed operation says why");

            // Retried, all at once: a failed attach on its own host, a failed create through a surviving manager.
            var retries = new List<Task<TimeSpan>>();
            for (int i = 0; i < workloads.Count; i++)
            {
                if (attachResults[i].ExitCode == 0) continue;
                var w = workloads[i];
                retries.Add(Task.Run(async () =>
                {
                    await Eventually.True(() => Done(w.Host.Cli(2, "network", "connect", "blue", w.Ns)), TimeSpan.FromSeconds(40), $"the retried attach of {w.Ns}");
                    return killed.Elapsed;
                }));
            }
            for (int i = 0; i < created.Count; i++)
            {
                if (createResults[i].ExitCode == 0) continue;
                var c = created[i];
                retries.Add(Task.Run(async () =>
                {
                    await Eventually.True(() => Done(survivor.Cli(2, "network", "create", "--attachable", "--subnet", c.Subnet, c.Name)), TimeSpan.FromSeconds(40), $"the retried create of {c.Name}");
                    return killed.Elapsed;
                }));
            }
            var retryTimes = await Task.WhenAll(retries);
            int retried = retries.Count;
            TimeSpan? firstRetryDone = retried == 0 ? null : retryTimes.Min();
            var retriesDone = killed.Elapsed;

            // The killed manager restarts and rejoins.
            var restart = Stopwatch.StartNew();
            await victim.Router.StartAsync(TimeSpan.FromSeconds(60));
            await Eventually.True(() => Managers(victim) == managers.Length, TimeSpan.FromSeconds(40), "the restarted manager serves again");
            var rejoined = restart.Elapsed;

            // Every network fully made, or not at all: each one listed once on every host, with the same VNI and its subnet;
            // no two networks share a VNI.
            string[] names = ["blue", .. created.Select(c => c.Name)];
            await Eventually.True(() => hosts.All(h => Listed(h) is var l && names.All(l.ContainsKey)), TimeSpan.FromSeconds(40), "every host lists every network");
            var reference = Listed(survivor);
            foreach (var h in hosts)
            {
                var listed = Listed(h);
                foreach (var c in created)
                {
                    var row = Assert.Single(listed[c.Name]);
                    Assert.Equal(c.Subnet, row.Subnet);
                    Assert.Equal(reference[c.Name][0].Vni, row.Vni);
                    Assert.Matches("^[0-9]+$", row.Vni);
                }
                Assert.Equal(names.Length, names.Select(n => listed[n][0].Vni).Distinct().Count());
            }

            // Every address one owner: the endpoints on every host's inspect are exactly the workloads, each address once,
            // and each workload's interface has the address its host recorded.
            var owners = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (var h in hosts)
            {
                using var doc = JsonDocument.Parse(h.Cli(2, "network", "inspect", "blue").EnsureSuccess().StdOut);
                foreach (var e in doc.RootElement[0].GetProperty("Containers").EnumerateObject())
                {
                    string address = e.Value.GetProperty("IPv4Address").GetString()!.Split('/')[0];
                    if (!owners.TryGetValue(address, out var list)) owners[address] = list = [];
                    list.Add($"{h.Router.Name}/{e.Value.GetProperty("Name").GetString()}");
                }
            }
            foreach (var (address, list) in owners) Assert.True(list.Count == 1, $"{address} has {list.Count} owners: {string.Join(", ", list)}");
            Assert.Equal(workloads.Count, owners.Count);
            var addresses = workloads.Select(w => AddressOf(w.Ns)).ToList();
            Assert.Equal(addresses.Count, addresses.Distinct().Count());
            Assert.All(addresses, a => Assert.True(owners.ContainsKey(a), $"{a} is on a workload but no host records it"));

            // After the fault, allocations go on and do not reuse an address.
            string late = net.AddNamespace("late");
            await Eventually.True(() => Done(survivor.Cli(2, "network", "connect", "blue", late)), TimeSpan.FromSeconds(30), "an attach after the recovery");
            Assert.DoesNotContain(AddressOf(late), addresses);

            Figure($"{store} store, {managers.Length} managers, the {(victim == m1 ? "first" : "leading")} one (pid {pid}) SIGKILLed amid 24 attaches and 6 creates "
                + $"({answeredBefore} answered before the kill): {attachesFailed} attaches and {createsFailed} creates failed (the last answer {burstOver.TotalSeconds:0.0} s after the kill) and were retried; "
                + $"first retried operation done {(firstRetryDone ?? TimeSpan.Zero).TotalSeconds:0.0} s after the kill, all {retriesDone.TotalSeconds:0.0} s; "
                + $"the killed manager restarted and serving in {rejoined.TotalSeconds:0.0} s; {owners.Count} addresses, each one owner; {created.Count} networks on all {hosts.Length} hosts");
        }
        finally
        {
            if (etcd is not null)
            {
                etcd.Kill();
                etcd.WaitForExit();
                etcd.Dispose();
            }
            if (data is not null) Directory.Delete(data, recursive: true);
        }
    }
}
