using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// One queue per CPU (`queues: 0`): multi-queue TAPs, an SO_REUSEPORT socket group, one worker pinned to each
/// CPU. Two hosts with a plain and an encrypted network (ESP on IP protocol 50, received by worker 0, sent by all).
/// </summary>
public sealed class QueueTests
{
    [Fact]
    public async Task Per_cpu_queues_carry_pings_from_every_cpu_and_20_MB_intact_both_ways_on_plain_and_encrypted_networks()
    {
        Requires.Root();
        Requires.Cpus(2);
        string taskset = Requires.Tool("taskset", "util-linux");
        using var net = new TestNetwork("mq");
        string state = Directory.CreateTempSubdirectory("uo-mq-").FullName;
        var ns = new Dictionary<string, string>();
        for (int i = 1; i <= 2; i++)
        {
            ns[$"h{i}"] = net.AddHost($"h{i}", $"192.0.2.{i}/24");
            ns[$"s{i}"] = net.AddNamespace($"s{i}");
            ns[$"b{i}"] = net.AddNamespace($"b{i}");
        }
        string Config(int i) => $$"""
            underlay: { address: 192.0.2.{{i}} }
            peers: [192.0.2.{{3 - i}}]
            queues: 0
            encryption: { state_dir: {{state}} }
            networks:
              - { name: secret, vni: 5000, subnet: 198.18.2.0/24, encrypted: true, key: "{{EncryptedOverlayFixture.Key}}" }
              - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
            endpoints:
              - { network: secret, netns: {{ns[$"s{i}"]}}, address: 198.18.2.1{{i}}/24 }
              - { network: blue, netns: {{ns[$"b{i}"]}}, address: 198.18.0.1{{i}}/24 }
            """;
        using var r1 = new RouterProcess(net, ns["h1"], $"{net.Prefix}h1", Config(1));
        using var r2 = new RouterProcess(net, ns["h2"], $"{net.Prefix}h2", Config(2));
        try
        {
            await Task.WhenAll(r1.StartAsync(), r2.StartAsync());
            int queues = Math.Min(Environment.ProcessorCount, 16);

            // Every TAP has a queue per CPU, and each worker thread is pinned to its CPU.
            Assert.Contains($"numqueues {queues}", TestNetwork.Exec(ns["s1"], "ip -d link show eth0").EnsureSuccess().StdOut);
            var workers = Directory.GetDirectories($"/proc/{r1.Pid}/task")
                .Select(t => (Comm: File.ReadAllText(Path.Combine(t, "comm")).Trim(), Status: File.ReadAllText(Path.Combine(t, "status"))))
                .Where(t => t.Comm.StartsWith("uo-queue-", StringComparison.Ordinal))
                .ToDictionary(t => int.Parse(t.Comm["uo-queue-".Length..], System.Globalization.CultureInfo.InvariantCulture), t => t.Status);
            Assert.Equal(Enumerable.Range(0, queues), workers.Keys.Order());
            foreach (var (q, status) in workers) Assert.Contains($"Cpus_allowed_list:\t{q}\n", status);
            Assert.Equal(queues, (await r1.StatusAsync()).Queues);
            string statusText = r1.Cli("status", "--name", r1.Name).EnsureSuccess().StdOut;
            Assert.Contains($"queues {queues}", statusText);
            Assert.Contains("TAP I/O io_uring", statusText); // every worker batches its TAP reads and writes

            // Pings sent from each CPU (each lands in that CPU's queue) cross both networks.
            foreach (int cpu in new[] { 0, 1 })
                foreach (var (from, to) in new[] { ("s1", "198.18.2.12"), ("b2", "198.18.0.11") })
                {
                    var ping = Shell.Run(taskset, ["-c", $"{cpu}", "ip", "netns", "exec", ns[from], "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", to]);
                    Assert.True(ping.ExitCode == 0, $"ping {to} from {from} on CPU {cpu} failed:\n{ping.StdOut}{ping.StdErr}");
                }

            // Bulk data (steered to the next CPU's queue) arrives intact, both ways, plain and encrypted.
            foreach (var (server, ip, client) in new[] { ("s2", "198.18.2.12", "s1"), ("s1", "198.18.2.11", "s2"), ("b2", "198.18.0.12", "b1"), ("b1", "198.18.0.11", "b2") })
            {
                var (sent, received) = await Tcp.Transfer(ns[server], ip, ns[client], 20 << 20);
                Assert.Equal(sent, received);
            }

            foreach (var r in new[] { r1, r2 })
            {
                var s = await r.StatusAsync();
                Assert.Equal(0, s.Esp!.Dropped.Values.Sum()); // several senders share each SA's sequence numbers without a replay drop
                Assert.True(s.Networks.Single(n => n.Name == "secret").Counters.DeliveredFrames > 10_000);
            }
        }
        finally
        {
            try { Directory.Delete(state, recursive: true); } catch (IOException) { }
        }
    }
}
