using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Attach and detach under traffic (issue #13): while two endpoints on two hosts exchange checksummed TCP transfers and
/// ping series, 200 other endpoints (100 per host, each in a namespace of its own) are attached and detached over the
/// control API, concurrently, round after round. The traffic loses nothing, every attach and detach succeeds, and
/// afterwards no TAP is left, every address is free again and the routers counted no internal error.
/// </summary>
public sealed class AttachChurnTests
{
    private const string Network = "churn";
    private const int ChurnPerHost = 100;
    private const int WorkersPerHost = 4;
    private const int Rounds = 2;
    private const int TransferBytes = 32 << 20;

    private static string Config(int self, int peer) => $$"""
        underlay: { address: 192.0.2.{{self}} }
        peers: [192.0.2.{{peer}}]
        networks: []
        """;

    private sealed record ChurnResult(int Attaches, int Detaches, IReadOnlyCollection<string> Failures, IReadOnlySet<string> Addresses);

    /// <summary>
    /// <see cref="Rounds"/> times, <see cref="WorkersPerHost"/> concurrent workers attach their share of
    /// <paramref name="namespaces"/> (the next free address each) and then detach them.
    /// </summary>
    private static async Task<ChurnResult> Churn(ControlHttp api, IReadOnlyList<string> namespaces)
    {
        int attaches = 0, detaches = 0;
        var failures = new ConcurrentQueue<string>();
        var addresses = new ConcurrentDictionary<string, byte>();
        var workers = Enumerable.Range(0, WorkersPerHost).Select(w => Task.Run(async () =>
        {
            var mine = namespaces.Where((_, i) => i % WorkersPerHost == w).ToList();
            for (int round = 0; round < Rounds; round++)
            {
                foreach (string ns in mine)
                {
                    var (s, json, body) = await api.Connect(Network, ns);
                    if (s == 201)
                    {
                        Interlocked.Increment(ref attaches);
                        addresses.TryAdd(json.GetProperty("ipv4_address").GetString()!.Split('/')[0], 0);
                    }
                    else failures.Enqueue($"connect {ns} (round {round}): {s} {body}");
                }
                foreach (string ns in mine)
                {
                    var (s, _, body) = await api.Disconnect(Network, ns);
                    if (s == 200) Interlocked.Increment(ref detaches);
                    else failures.Enqueue($"disconnect {ns} (round {round}): {s} {body}");
                }
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(workers);
        return new ChurnResult(attaches, detaches, failures, new HashSet<string>(addresses.Keys));
    }

    private static long InternalErrors(RouterStatus status)
    {
        string key = DropReasons.Name(DropReason.InternalError);
        return status.Drops.GetValueOrDefault(key) + status.Networks.Sum(n => n.Counters.Drops.GetValueOrDefault(key));
    }

    [Fact]
    public async Task Endpoints_attached_and_detached_by_the_hundred_under_traffic_lose_no_ping_and_no_byte_and_leave_nothing_behind()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("ch");
        var hosts = new[] { net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24") };
        string m1 = net.AddNamespace("m1"), m2 = net.AddNamespace("m2");
        string prefix = net.Prefix + "c"; // the churn namespaces, deleted by prefix at the end
        var churn = new[] { 1, 2 }.Select(h => Enumerable.Range(0, ChurnPerHost).Select(i => $"{prefix}{h}-{i.ToString(CultureInfo.InvariantCulture)}").ToList()).ToArray();
        string state = Path.Combine(Path.GetTempPath(), $"{net.Prefix}state");
        var log = TestContext.Current.TestOutputHelper;
        try
        {
            using var r1 = new RouterProcess(net, hosts[0], $"{net.Prefix}h1", Config(1, 2)) { ExtraArguments = ["--state-dir", state + "1"] };
            using var r2 = new RouterProcess(net, hosts[1], $"{net.Prefix}h2", Config(2, 1)) { ExtraArguments = ["--state-dir", state + "2"] };
            await r1.StartAsync();
            await r2.StartAsync();
            using var api1 = new ControlHttp(ControlApi.SocketPath(r1.Name));
            using var api2 = new ControlHttp(ControlApi.SocketPath(r2.Name));
            var apis = new[] { api1, api2 };
            // One network on both hosts, each host drawing its automatic addresses from a range of its own (126 free
            // addresses on h1, 128 on h2, for 100 endpoints: the second round needs the addresses the first one released).
            await api1.Expect(201, HttpMethod.Post, "v1/networks", """{"name":"churn","subnet":"198.18.8.0/22","ip_range":"198.18.8.0/25","vni":5200}""");
            await api2.Expect(201, HttpMethod.Post, "v1/networks", """{"name":"churn","subnet":"198.18.8.0/22","ip_range":"198.18.9.0/25","vni":5200}""");
            await api1.Expect(201, HttpMethod.Post, $"v1/networks/{Network}/connect", $$"""{"netns":"{{m1}}","address":"198.18.11.1"}""");
            await api2.Expect(201, HttpMethod.Post, $"v1/networks/{Network}/connect", $$"""{"netns":"{{m2}}","address":"198.18.11.2"}""");
            Assert.True(TestNetwork.Ping(m1, "198.18.11.2"), "m1 on h1 → m2 on h2 before the churn");
            NamespaceBatch.Create([.. churn[0], .. churn[1]]);

            var churning = new[] { Churn(api1, churn[0]), Churn(api2, churn[1]) };
            var allChurn = Task.WhenAll(churning);

            // Traffic for as long as the churn runs: ping series of 200 at 20 ms, and checksummed 32 MiB transfers.
            var pingSeries = new List<(int Sent, int Received)>();
            var pinging = Task.Run(async () =>
            {
                do
                {
                    var r = TestNetwork.Exec(m1, "ping -n -q -c 200 -i 0.02 -W 1 198.18.11.2", TimeSpan.FromSeconds(60));
                    var m = Regex.Match(r.StdOut, @"(\d+) packets transmitted, (\d+) received");
                    Assert.True(m.Success, $"ping printed no summary: {r.StdOut} {r.StdErr}");
                    pingSeries.Add((int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)));
                    await Task.Yield();
                }
                while (!allChurn.IsCompleted);
            }, TestContext.Current.CancellationToken);
            var transfers = new List<(string Sent, string Received)>();
            var transferring = Task.Run(async () =>
            {
                do transfers.Add(await Tcp.Transfer(m2, "198.18.11.2", m1, TransferBytes));
                while (!allChurn.IsCompleted);
            }, TestContext.Current.CancellationToken);

            var results = await allChurn;
            await Task.WhenAll(pinging, transferring);

            for (int h = 0; h < 2; h++)
            {
                var r = results[h];
                log?.WriteLine($"h{h + 1}: {r.Attaches} attaches, {r.Detaches} detaches, {r.Addresses.Count} distinct addresses");
                Assert.True(r.Failures.Count == 0, $"h{h + 1}: {r.Failures.Count} churn calls failed, the first: {r.Failures.FirstOrDefault()}");
                Assert.Equal(Rounds * ChurnPerHost, r.Attaches);
                Assert.Equal(r.Attaches, r.Detaches);
            }
            log?.WriteLine($"ping series: {string.Join(", ", pingSeries.Select(p => $"{p.Received}/{p.Sent}"))}; transfers: {transfers.Count} × {TransferBytes >> 20} MiB");
            Assert.All(pingSeries, p => Assert.True(p.Sent == 200 && p.Received == 200, $"a ping series lost replies under churn: {p.Received}/{p.Sent}"));
            Assert.NotEmpty(transfers);
            Assert.All(transfers, t => Assert.Equal(t.Sent, t.Received));

            // Nothing left: no TAP in any churn namespace, only the two traffic endpoints on the network, every address free.
            var leftover = churn.SelectMany(c => c).AsParallel().WithDegreeOfParallelism(8)
                .Where(ns => TestNetwork.Exec(ns, "ip -o link show").EnsureSuccess().StdOut.Contains("eth0", StringComparison.Ordinal)).ToList();
            Assert.True(leftover.Count == 0, $"TAPs left in {string.Join(", ", leftover)}");
            for (int h = 0; h < 2; h++)
            {
                var containers = (await apis[h].Expect(200, HttpMethod.Get, $"v1/networks/{Network}")).GetProperty("Containers").EnumerateObject().ToList();
                Assert.Equal([h == 0 ? m1 : m2], containers.Select(c => c.Value.GetProperty("Name").GetString()));
                // Every address the churn used can be taken again, by the next connect with the address given.
                var probe = churn[h][0];
                foreach (string address in results[h].Addresses.Order(StringComparer.Ordinal))
                {
                    var (s, _, body) = await apis[h].Connect(Network, probe, address);
                    Assert.True(s == 201, $"h{h + 1}: {address}, used by the churn, is not free again: {s} {body}");
                    await apis[h].Expect(200, HttpMethod.Post, $"v1/networks/{Network}/disconnect", $$"""{"netns":"{{probe}}"}""");
                }
                // And the pool hands out addresses of its range again.
                var (s2, next, body2) = await apis[h].Connect(Network, probe);
                Assert.True(s2 == 201, $"h{h + 1}: a connect after the churn: {s2} {body2}");
                Assert.Contains(next.GetProperty("ipv4_address").GetString()!.Split('/')[0], results[h].Addresses);
                await apis[h].Expect(200, HttpMethod.Post, $"v1/networks/{Network}/disconnect", $$"""{"netns":"{{probe}}"}""");
            }
            foreach (var r in new[] { r1, r2 })
            {
                var status = await r.StatusAsync();
                Assert.Equal(0, InternalErrors(status));
                Assert.Single(status.Networks.Single(n => n.Name == Network).Endpoints);
                Assert.True(r.IsRunning, $"router {r.Name} exited:\n{r.Output}");
                Assert.DoesNotContain("Exception", r.Output, StringComparison.Ordinal);
            }
            Assert.True(TestNetwork.Ping(m1, "198.18.11.2"), "m1 → m2 after the churn");
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
