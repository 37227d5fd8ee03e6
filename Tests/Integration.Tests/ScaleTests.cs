using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Beyond Docker's wall (issue #13): Docker's overlay driver stops near 1,000 containers per network on a host; one
/// router here attaches 1,100 endpoints at run time, each in a namespace of its own, over the control API, serves them
/// across hosts, lists them in `network inspect`, and detaches them all. The router starts with the descriptor limits
/// systemd gives a service (soft 1,024; the hard limit is this process's), which 1,100 TAPs (one descriptor per TAP and queue) exceed.
/// </summary>
public sealed class ScaleTests
{
    private const int Endpoints = 1100;
    private const string Network = "scale";

    // The default queues (one per CPU): every TAP multi-queue, some 0.3 MB of kernel memory each with the qdisc noqueue
    // the router gives it (the default qdisc made it 6.6 MB, 7 GB for 1,100 endpoints). 1,100 TAPs need more descriptors
    // than the soft limit of 1,024 even on one queue.
    private static string Config(int self, int peer) => $$"""
        underlay: { address: 192.0.2.{{self}} }
        peers: [192.0.2.{{peer}}]
        networks: []
        """;

    // This process's hard RLIMIT_NOFILE (raising it needs CAP_SYS_RESOURCE, which a container may not give).
    private static string HardDescriptorLimit() =>
        File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4];

    [Fact]
    public async Task One_router_attaches_1100_endpoints_each_in_its_own_namespace_serves_them_across_hosts_and_detaches_them_all()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        Requires.Tool("prlimit", "util-linux");
        Requires.Tool("tc", "iproute2");
        using var net = new TestNetwork("sc");
        string h1 = net.AddHost("h1", "192.0.2.1/24"), h2 = net.AddHost("h2", "192.0.2.2/24");
        string far = net.AddNamespace("far");
        string prefix = net.Prefix + "e"; // the endpoints' namespaces: this run's own prefix, deleted by prefix at the end
        var names = Enumerable.Range(0, Endpoints).Select(i => prefix + i.ToString(CultureInfo.InvariantCulture)).ToList();
        string state = Path.Combine(Path.GetTempPath(), $"{net.Prefix}state");
        var log = TestContext.Current.TestOutputHelper;
        try
        {
            string[] systemdLimits = ["prlimit", $"--nofile=1024:{HardDescriptorLimit()}"];
            using var r1 = new RouterProcess(net, h1, $"{net.Prefix}h1", Config(1, 2)) { ExtraArguments = ["--state-dir", state + "1"], Wrapper = systemdLimits };
            using var r2 = new RouterProcess(net, h2, $"{net.Prefix}h2", Config(2, 1)) { ExtraArguments = ["--state-dir", state + "2"], Wrapper = systemdLimits };
            await r1.StartAsync();
            await r2.StartAsync();
            using var a = new ControlHttp(ControlApi.SocketPath(r1.Name));
            using var b = new ControlHttp(ControlApi.SocketPath(r2.Name));
            const string create = """{"name":"scale","subnet":"198.18.0.0/20","vni":5100}""";
            await a.Expect(201, HttpMethod.Post, "v1/networks", create);
            await b.Expect(201, HttpMethod.Post, "v1/networks", create);
            var (s, _, body) = await b.Connect(Network, far, "198.18.15.254");
            Assert.True(s == 201, $"connect {far}: {s} {body}");

            NamespaceBatch.Create(names);
            var attachClock = System.Diagnostics.Stopwatch.StartNew();
            var addresses = new ConcurrentDictionary<string, string>();
            var failures = new ConcurrentQueue<string>();
            await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (ns, _) =>
            {
                var (status, json, text) = await a.Connect(Network, ns);
                if (status == 201) addresses[ns] = json.GetProperty("ipv4_address").GetString()!.Split('/')[0];
                else failures.Enqueue($"{ns}: {status} {text}");
            });
            log?.WriteLine($"attached {addresses.Count} in {attachClock.Elapsed.TotalSeconds:0.0} s; router fds {Directory.GetFiles($"/proc/{r1.Pid}/fd").Length}");
            Assert.True(failures.IsEmpty, $"{failures.Count} attaches failed, the first: {failures.FirstOrDefault()}\n{r1.Output}");
            Assert.Equal(Endpoints, addresses.Values.Distinct().Count());

            // A sample spread over the range, from the other host's endpoint.
            var sample = Enumerable.Range(0, 10).Select(k => names[k * (Endpoints - 1) / 9]).ToList();
            var unanswered = sample.AsParallel().Where(ns => !TestNetwork.Ping(far, addresses[ns], count: 3)).Select(ns => $"{ns} ({addresses[ns]})").ToList();
            Assert.True(unanswered.Count == 0, $"not answered from the far host: {string.Join(", ", unanswered)}");
            foreach (string ns in sample)
            {
                Assert.Contains($"inet {addresses[ns]}/20", TestNetwork.Exec(ns, "ip -4 addr show eth0").EnsureSuccess().StdOut);
                // What keeps a multi-queue TAP's kernel memory small: noqueue alone, no mq with a pfifo_fast per queue.
                Assert.Equal("noqueue", TestNetwork.Exec(ns, "tc qdisc show dev eth0").EnsureSuccess().StdOut.Split(' ', 3)[1]);
            }

            // Docker's inspect, through the CLI, lists every one.
            string inspect = r1.Cli("network", "inspect", "-H", r1.Name, Network).EnsureSuccess().StdOut;
            using (var doc = JsonDocument.Parse(inspect))
            {
                var containers = doc.RootElement[0].GetProperty("Containers").EnumerateObject().Select(p => p.Value).ToList();
                Assert.Equal(Endpoints, containers.Count);
                Assert.Equal(addresses.Values.Order(), containers.Select(c => c.GetProperty("IPv4Address").GetString()!.Split('/')[0]).Order());
            }
            Assert.Equal(Endpoints, (await r1.StatusAsync()).Networks.Single(n => n.Name == Network).Endpoints.Count);

            var detachClock = System.Diagnostics.Stopwatch.StartNew();
            await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (ns, _) =>
            {
                var (status, _, text) = await a.Disconnect(Network, ns);
                if (status != 200) failures.Enqueue($"{ns}: {status} {text}");
            });
            log?.WriteLine($"detached in {detachClock.Elapsed.TotalSeconds:0.0} s; router fds {Directory.GetFiles($"/proc/{r1.Pid}/fd").Length}");
            Assert.True(failures.IsEmpty, $"{failures.Count} detaches failed, the first: {failures.FirstOrDefault()}");
            Assert.Empty((await r1.StatusAsync()).Networks.Single(n => n.Name == Network).Endpoints);
            Assert.Empty((await a.Expect(200, HttpMethod.Get, $"v1/networks/{Network}")).GetProperty("Containers").EnumerateObject());
            foreach (string ns in sample)
                Assert.NotEqual(0, TestNetwork.Exec(ns, "ip link show eth0").ExitCode);
            Assert.False(TestNetwork.Ping(far, addresses[sample[0]], count: 1, waitSeconds: 1), "a detached endpoint's address answers no more");
        }
        finally
        {
            NamespaceBatch.DeleteWithPrefix(prefix);
            foreach (string dir in new[] { state + "1", state + "2" })
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        Assert.Empty(NamespaceBatch.Existing(prefix));
    }
}
