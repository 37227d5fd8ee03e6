using System.Diagnostics;
using System.Globalization;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using static UserOverlay.Bench.E2e.Shell;

namespace UserOverlay.Bench.E2e;

/// <summary>
/// The attach-scale harness: how a router copes with many workloads attached at run time. Two hosts built from
/// network namespaces (192.0.2.1/24 — 192.0.2.2/24, one `useroverlay up` each, static mode); a network `scale`
/// (VNI 4096, 198.18.0.0/16) on both; then endpoints attached one by one to host a over its control socket
/// (`POST /v1/networks/scale/connect`), each in a namespace of its own, up to every checkpoint of --endpoints.
/// At each checkpoint it reports the attach time per endpoint (median and 99th percentile of the last 100, so a
/// cost that grows with the number attached shows as a rising median), the router's resident memory, open file
/// descriptors and threads, the kernel memory each endpoint costs (see <see cref="KernelMemoryKiB"/>), a ping sample
/// from host b's workload to endpoints spread over the range, and the bytes the router allocates per frame of a ping
/// flood. Then it detaches 100 endpoints and reports that time.
///
///   sudo dotnet run -c Release --project Bench -- attach-scale [--endpoints 1000,4096] [--queues N] [--binary PATH] [--markdown]
///
/// Uses only namespaces named uobench-PID-*, addresses 192.0.2.0/24 and 198.18.0.0/15, and stops only the
/// processes it started.
/// </summary>
internal static class AttachScaleHarness
{
    private const string Network = "scale";

    private sealed record Checkpoint(int Endpoints, double AttachMedianMs, double AttachP99Ms, double RssMiB, int Fds, int Threads,
        double KernelKiBPerEndpoint, int PingsAnswered, int PingsSent, double AllocBytesPerFrame);

    public static int Run(string[] args)
    {
        int[] checkpoints = (ArgValue(args, "--endpoints") ?? "1000,4096").Split(',')
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).Order().ToArray();
        bool markdown = args.Contains("--markdown");
        if (!File.Exists("/dev/net/tun") || Environment.UserName != "root")
        {
            Console.Error.WriteLine("attach-scale: run as root (it builds hosts out of network namespaces)");
            return 2;
        }
        if (checkpoints.Length == 0 || checkpoints[0] < 1 || checkpoints[^1] > 65_000)
        {
            Console.Error.WriteLine("attach-scale: --endpoints: give counts from 1 to 65000, comma-separated");
            return 2;
        }
        Queues = ArgValue(args, "--queues") is { } q ? int.Parse(q, CultureInfo.InvariantCulture) : null;
        Binary = ArgValue(args, "--binary") is { } path ? Path.GetFullPath(path) : null;
        string cli = Path.Combine(AppContext.BaseDirectory, "useroverlay.dll");
        if (Binary is not null && !File.Exists(Binary)) { Console.Error.WriteLine($"attach-scale: --binary {Binary}: no such file"); return 2; }
        Prefix = $"uobench-{Environment.ProcessId}-";
        Console.CancelKeyPress += (_, _) =>
        {
            StopRouters();
            DeleteNamespaces();
            Cleanup();
        };
        var results = new List<Checkpoint>();
        double detachMs = double.NaN;
        try
        {
            E2eHarness.Underlay();
            var routers = RoutersUp(cli);
            using var a = new Api(SocketOf("a"));
            using var b = new Api(SocketOf("b"));
            // Host b's workload: the far end of every ping.
            b.Connect(Ns("wb"), "198.18.255.254");
            var latencies = new List<double>();
            int attached = 0;
            foreach (int target in checkpoints)
            {
                // The namespaces first, in one `ip -batch` (not timed): the figure is the attach alone.
                CreateNamespaces(Enumerable.Range(attached, target - attached).Select(i => Ns($"e{i}")));
                int from = attached;
                long kernelBefore = KernelMemoryKiB();
                for (; attached < target; attached++)
                {
                    var sw = Stopwatch.StartNew();
                    a.Connect(Ns($"e{attached}"), AddressOf(attached));
                    latencies.Add(sw.Elapsed.TotalMilliseconds);
                    if ((attached + 1) % 500 == 0) Console.WriteLine($"   {attached + 1} attached, last {latencies[^1]:0.0} ms");
                }
                double kernelPerEndpoint = (double)(KernelMemoryKiB() - kernelBefore) / (attached - from);
                var last = latencies.TakeLast(100).Order().ToArray();
                int pid = routers[0];
                var (answered, sent) = PingSample(attached);
                double alloc = AllocationPerFrame(a, attached);
                var c = new Checkpoint(attached, last[last.Length / 2], last[(int)Math.Ceiling(last.Length * 0.99) - 1],
                    Status(pid, "VmRSS") / 1024.0, Directory.GetFiles($"/proc/{pid}/fd").Length, Directory.GetDirectories($"/proc/{pid}/task").Length,
                    kernelPerEndpoint, answered, sent, alloc);
                results.Add(c);
                Console.WriteLine($"-- {c.Endpoints} endpoints: attach {c.AttachMedianMs:0.00} ms median, {c.AttachP99Ms:0.00} ms p99 (last 100); " +
                    $"router {c.RssMiB:0} MiB RSS, {c.Fds} fds, {c.Threads} threads; kernel {c.KernelKiBPerEndpoint:0} kB per endpoint; ping sample {c.PingsAnswered}/{c.PingsSent}; {c.AllocBytesPerFrame:0.00} B/frame");
            }
            var detach = Stopwatch.StartNew();
            int n = Math.Min(100, attached);
            for (int i = attached - n; i < attached; i++) a.Disconnect(Ns($"e{i}"));
            detachMs = detach.Elapsed.TotalMilliseconds / n;
            Console.WriteLine($"-- detach: {detachMs:0.00} ms per endpoint (the last {n})");
        }
        finally
        {
            StopRouters();
            DeleteNamespaces();
            Cleanup();
        }
        if (markdown) Console.WriteLine(Table(results, detachMs));
        return results.All(r => r.PingsAnswered == r.PingsSent) ? 0 : 1;
    }

    /// <summary>The i-th endpoint's address: 198.18.0.2 upwards, skipping each /24's .0 and .255 for readability.</summary>
    private static string AddressOf(int i) => $"198.18.{i / 250}.{2 + i % 250}";

    private static string SocketOf(string host) => $"/run/useroverlay/{Ns(host)}.sock";

    private static readonly List<Process> Routers = [];

    // --queues N: the routers' `queues:` (default: theirs, one per CPU). Each queue beyond one makes every TAP multi-queue:
    // the kernel gives a multi-queue TAP 256 transmit queues whatever the number opened. The router gives every TAP the
    // qdisc noqueue; a router that left the default (mq, with a pfifo_fast on each transmit queue) cost the kernel
    // about 6.6 MB per endpoint, and --binary of such a build shows it in the kernel memory column.
    private static int? Queues;

    // A router's output (it logs warnings and errors only) goes to this harness's stderr, each line marked with its host.
    private static Process StartRouter(string host, string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[router {host}] {e.Data}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[router {host}] {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static int[] RoutersUp(string cli)
    {
        var pids = new List<int>();
        foreach (var (host, self, peer) in new[] { ("a", "192.0.2.1", "192.0.2.2"), ("b", "192.0.2.2", "192.0.2.1") })
        {
            string name = Ns(host);
            string cfg = Path.Combine(Path.GetTempPath(), name + ".yaml");
            File.WriteAllText(cfg, $$"""
                underlay: { address: {{self}} }
                peers: [{{peer}}]{{(Queues is { } q ? $"\nqueues: {q}" : "")}}
                networks: [ { name: {{Network}}, vni: 4096, subnet: 198.18.0.0/16 } ]
                """);
            var p = StartRouter(host, ["netns", "exec", name, .. CliCommand(cli), "up", "--config", cfg, "--name", name,
                "--state-dir", Path.Combine(Path.GetTempPath(), name + "-state"), "--log-level", "Warning"]);
            pids.Add(p.Id);
            Routers.Add(p);
            var sw = Stopwatch.StartNew();
            while (!File.Exists(SocketOf(host)))
            {
                if (p.HasExited || sw.Elapsed > TimeSpan.FromSeconds(30)) throw new InvalidOperationException($"router {name} did not start");
                Thread.Sleep(50);
            }
        }
        return [.. pids]; // `ip netns exec` execs the router: the PID is the router's
    }

    /// <summary>Pings, from host b's workload, ten endpoints spread over the range attached so far.</summary>
    private static (int Answered, int Sent) PingSample(int attached)
    {
        int answered = 0, sent = 0;
        for (int k = 0; k < 10; k++)
        {
            int i = (int)((long)k * (attached - 1) / 9);
            sent++;
            if (Exec("ip", "netns", "exec", Ns("wb"), "ping", "-n", "-c", "1", "-W", "2", AddressOf(i)).Code == 0) answered++;
            if (attached < 10) break;
        }
        return (answered, sent);
    }

    /// <summary>Bytes the router of host a allocates per frame while a ping flood crosses it (from its status).</summary>
    /// <remarks>
    /// A status reading allocates itself (its JSON lists every endpoint: megabytes at thousands of endpoints), and the
    /// counter of the next reading includes that. So two readings without traffic measure what one costs, and that is
    /// taken off the reading after the flood.
    /// </remarks>
    private static double AllocationPerFrame(Api a, int attached)
    {
        var (alloc0, _) = a.Allocation();
        var (alloc1, frames1) = a.Allocation();
        long statusCost = alloc1 - alloc0;
        Exec("ip", "netns", "exec", Ns("wb"), "ping", "-n", "-q", "-f", "-c", "5000", "-W", "1", AddressOf(attached / 2));
        var (alloc2, frames2) = a.Allocation();
        return frames2 > frames1 ? Math.Max(0, (double)(alloc2 - alloc1 - statusCost) / (frames2 - frames1)) : double.NaN;
    }

    /// <summary>Creates plain namespaces in one `ip -batch` run, IPv6 off in each (as Docker does for a container on IPv4-only networks).</summary>
    private static void CreateNamespaces(IEnumerable<string> names)
    {
        var list = names.ToList();
        Namespaces.AddRange(list);
        Batch(list.SelectMany(n => new[]
        {
            $"netns add {n}",
            $"netns exec {n} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        }), force: false);
    }

    /// <summary>Deletes this run's namespaces in one `ip -batch` run (Cleanup would run one `ip` per namespace).</summary>
    private static void DeleteNamespaces()
    {
        var mine = Namespaces.Where(n => File.Exists("/run/netns/" + n)).ToList();
        if (mine.Count > 0) Batch(mine.Select(n => $"netns del {n}"), force: true);
        Namespaces.Clear();
    }

    private static void Batch(IEnumerable<string> lines, bool force)
    {
        string file = Path.Combine(Path.GetTempPath(), Prefix + "batch");
        File.WriteAllLines(file, lines);
        try
        {
            if (force) Exec("ip", "-force", "-batch", file);
            else Must("ip", "-batch", file);
        }
        finally { File.Delete(file); }
    }

    /// <summary>A clean stop of each router (SIGTERM: it removes its TAPs and its control socket); SIGKILL only if it hangs.</summary>
    private static void StopRouters()
    {
        foreach (var p in Routers)
        {
            if (p.HasExited) continue;
            Exec("kill", "-TERM", p.Id.ToString(CultureInfo.InvariantCulture));
            if (!p.WaitForExit(30_000)) p.Kill();
        }
        Routers.Clear();
    }

    /// <summary>
    /// The kernel's own memory now, in KiB, from /proc/meminfo: unreclaimable slab (network devices, their queues and
    /// qdiscs, sockets, sysfs entries), vmalloc (large tables such as a multi-queue TAP's 256 queue structures, eBPF
    /// programs), per-CPU areas (qdisc statistics), kernel stacks and page tables. Reclaimable slab (dentry and inode
    /// caches, which any other process on the machine moves) is left out. The harness takes it before and after each
    /// run of attaches, with the namespaces already made: the difference over the endpoints attached is what one costs
    /// (its TAP, address and routes; the router's own memory is its RSS). A machine-wide figure: other work on the machine
    /// shows in it, so it is worth as much as the machine is quiet.
    /// </summary>
    private static long KernelMemoryKiB()
    {
        long sum = 0;
        foreach (string line in File.ReadLines("/proc/meminfo"))
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || line[..colon] is not ("SUnreclaim" or "VmallocUsed" or "Percpu" or "KernelStack" or "PageTables")) continue;
            sum += long.Parse(line[(colon + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return sum;
    }

    private static long Status(int pid, string field) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).FirstOrDefault();

    private static string Table(List<Checkpoint> results, double detachMs)
    {
        static string F(double x, string fmt) => double.IsNaN(x) ? "—" : x.ToString(fmt, CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine("<!-- attach-table -->");
        sb.AppendLine("| endpoints | attach, ms per endpoint (median / p99 of the last 100) | router RSS, MiB | file descriptors | threads | kernel memory per endpoint, kB | ping sample | B allocated per frame |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Endpoints:N0} | {F(r.AttachMedianMs, "0.00")} / {F(r.AttachP99Ms, "0.00")} | {F(r.RssMiB, "0")} | {r.Fds:N0} | {r.Threads} | {F(r.KernelKiBPerEndpoint, "0")} | {r.PingsAnswered}/{r.PingsSent} | {F(r.AllocBytesPerFrame, "0.00")} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"\nDetach: {F(detachMs, "0.00")} ms per endpoint.");
        sb.AppendLine("<!-- /attach-table -->");
        return sb.ToString();
    }

    private static string? ArgValue(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>The control socket's API (HTTP + JSON over the Unix socket), the calls this harness makes.</summary>
    private sealed class Api : IDisposable
    {
        private readonly HttpClient _http;

        public Api(string socket)
        {
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            };
            _http = new HttpClient(handler) { BaseAddress = new Uri("http://useroverlay/"), Timeout = TimeSpan.FromSeconds(60) };
        }

        public void Connect(string netns, string address) =>
            Send(HttpMethod.Post, $"v1/networks/{Network}/connect", JsonSerializer.Serialize(new Dictionary<string, string> { ["netns"] = netns, ["address"] = address }));

        public void Disconnect(string netns) =>
            Send(HttpMethod.Post, $"v1/networks/{Network}/disconnect", JsonSerializer.Serialize(new Dictionary<string, string> { ["netns"] = netns }));

        public (long Alloc, long Frames) Allocation()
        {
            using var doc = JsonDocument.Parse(Send(HttpMethod.Get, "v1/status", null));
            long frames = 0;
            foreach (var n in doc.RootElement.GetProperty("networks").EnumerateArray())
            {
                var c = n.GetProperty("counters");
                frames += c.GetProperty("tx_frames").GetInt64() + c.GetProperty("rx_frames").GetInt64();
            }
            return (doc.RootElement.GetProperty("gc_allocated_bytes").GetInt64(), frames);
        }

        private string Send(HttpMethod method, string path, string? json)
        {
            using var req = new HttpRequestMessage(method, path);
            if (json is not null) req.Content = new StringContent(json, Encoding.UTF8, "application/json");
            using var resp = _http.Send(req);
            string body = new StreamReader(resp.Content.ReadAsStream()).ReadToEnd();
            if (!resp.IsSuccessStatusCode) throw new InvalidOperationException($"{method} /{path}: {(int)resp.StatusCode} {body}");
            return body;
        }

        public void Dispose() => _http.Dispose();
    }
}
