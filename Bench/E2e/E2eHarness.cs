using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

using static UserOverlay.Bench.E2e.Shell;

namespace UserOverlay.Bench.E2e;

/// <summary>
/// The end-to-end harness: two hosts built from network namespaces, joined by a veth underlay
/// (192.0.2.1/24 — 192.0.2.2/24, MTU 1500), measured in the same run through the Linux kernel's
/// VXLAN device and through UserOverlay (one `useroverlay up` per host, a workload namespace with
/// a TAP on each side), with the same overlay addresses (198.18.0.1/24 → 198.18.0.2/24):
/// iperf3 TCP single stream, iperf3 UDP with 64-byte payloads (packets/s delivered), ping RTT,
/// the routers' CPU seconds per GB carried and the bytes they allocate per frame — plain, and on an
/// encrypted network (ESP, AES-256-GCM, in transport mode, `esp: transport`, and in UDP, `esp: udp`, the default;
/// both forms are named in the configuration, so a build whose default differs measures the same two paths). Prints medians over the passes,
/// the ratio UserOverlay/kernel and the ratio encrypted/plain.
///
///   sudo dotnet run -c Release --project Bench -- e2e [--seconds 8] [--passes 3] [--queues N] [--key-bits 128|256] [--binary PATH] [--markdown]
///
/// --key-bits sets the encrypted network's key length (default 256: AES-256-GCM, as the cluster's keys; 128 measures AES-128-GCM,
/// Docker's key length).
///
/// --binary PATH runs the routers from PATH (the native binary `dotnet publish Cli -c Release -r linux-x64` makes)
/// instead of `dotnet useroverlay.dll` from the build.
///
/// --queues N sets the routers' `queues:` (default: theirs, 0 = one per CPU; 1 = one worker). Ping RTT is measured last, once the
/// throughput tests have run every path hot (the router is a long-running daemon; the first seconds of a fresh
/// one include its just-in-time compilation): 100 pings at 50 ms, the average (as ping's own summary gives it),
/// the median and the 90th percentile.
///
/// --markdown also prints the two tables the documents carry, each between &lt;!-- perf-table --&gt; and
/// &lt;!-- /perf-table --&gt;, ready to replace the ones in docs/performance.md (every row) and README.md
/// (TCP, 64-byte UDP, RTT).
///
/// Uses only namespaces named uobench-PID-*, addresses 192.0.2.0/24 and 198.18.0.0/15, and stops
/// only the processes it started. The machine is shared: read medians and ratios, not single runs.
/// </summary>
internal static class E2eHarness
{
    private sealed record Pass(double TcpGbps, double UdpKpps, double RttMs, double CpuSecondsPerGB, double AllocBytesPerFrame,
        double RttMedianMs = double.NaN, double RttP90Ms = double.NaN);

    private static int _queues = -1;
    private static int _keyBits = 256;

    public static int Run(string[] args)
    {
        int seconds = IntArg(args, "--seconds", 8);
        int passes = IntArg(args, "--passes", 3);
        _queues = IntArg(args, "--queues", -1);
        _keyBits = IntArg(args, "--key-bits", 256);
        if (_keyBits is not (128 or 256)) { Console.Error.WriteLine($"e2e: --key-bits {_keyBits}: must be 128 or 256"); return 2; }
        bool markdown = args.Contains("--markdown");
        if (!File.Exists("/dev/net/tun") || Environment.UserName != "root")
        {
            Console.Error.WriteLine("e2e: run as root (it builds hosts out of network namespaces): sudo dotnet run -c Release --project Bench -- e2e");
            return 2;
        }
        foreach (var tool in new[] { "ip", "iperf3", "ping" })
            if (Which(tool) is null) { Console.Error.WriteLine($"e2e: '{tool}' is missing (apt-get install iproute2 iperf3 iputils-ping)"); return 2; }
        string cli = Path.Combine(AppContext.BaseDirectory, "useroverlay.dll");
        int b = Array.IndexOf(args, "--binary");
        Binary = b >= 0 && b + 1 < args.Length ? Path.GetFullPath(args[b + 1]) : null;
        if (Binary is not null && !File.Exists(Binary)) { Console.Error.WriteLine($"e2e: --binary {Binary}: no such file"); return 2; }
        if (Binary is null && !File.Exists(cli)) { Console.Error.WriteLine($"e2e: {cli} is missing (build the Bench project, which references Cli)"); return 2; }
        Console.WriteLine($"e2e: routers run {(Binary ?? $"dotnet {cli}")}");

        Prefix = $"uobench-{Environment.ProcessId}-";
        Console.CancelKeyPress += (_, _) => Cleanup();
        var kernel = new List<Pass>();
        var user = new List<Pass>();
        var encrypted = new List<Pass>();
        var encryptedUdp = new List<Pass>();
        try
        {
            Underlay();
            Console.WriteLine($"e2e: {passes} pass(es) of {seconds} s per test; {Environment.ProcessorCount} CPUs; busy {Busy():0}% before start");
            for (int p = 1; p <= passes; p++)
            {
                Console.WriteLine($"-- pass {p}: kernel VXLAN");
                kernel.Add(Measure(seconds, () => KernelUp(), KernelDown, routerPids: []));
                Console.WriteLine($"   {Describe(kernel[^1])}");
                Console.WriteLine($"-- pass {p}: UserOverlay");
                var pids = UserOverlayUp(cli, encrypted: false);
                user.Add(Measure(seconds, () => { }, () => UserOverlayDown(), pids, cli));
                Console.WriteLine($"   {Describe(user[^1])}");
                Console.WriteLine($"-- pass {p}: UserOverlay, encrypted network (ESP AES-{_keyBits}-GCM, esp: transport: IP protocol 50)");
                pids = UserOverlayUp(cli, encrypted: true);
                encrypted.Add(Measure(seconds, () => { }, () => UserOverlayDown(), pids, cli));
                Console.WriteLine($"   {Describe(encrypted[^1])}");
                Console.WriteLine($"-- pass {p}: UserOverlay, encrypted network (ESP AES-{_keyBits}-GCM, esp: udp: in UDP 4500)");
                pids = UserOverlayUp(cli, encrypted: true, espUdp: true);
                encryptedUdp.Add(Measure(seconds, () => { }, () => UserOverlayDown(), pids, cli));
                Console.WriteLine($"   {Describe(encryptedUdp[^1])}");
            }
        }
        finally
        {
            Cleanup();
        }
        Console.WriteLine();
        Console.WriteLine(Table(kernel, user, encrypted, encryptedUdp, seconds, passes));
        if (markdown)
        {
            var results = new RunResults(kernel, user, encrypted, encryptedUdp, seconds, passes);
            Console.WriteLine("docs/performance.md:");
            Console.WriteLine();
            Console.WriteLine(PerformanceTable(results));
            Console.WriteLine("README.md:");
            Console.WriteLine();
            Console.WriteLine(ReadmeTable(results));
        }
        return 0;
    }

    private static string Describe(Pass p) =>
        string.Create(CultureInfo.InvariantCulture, $"TCP {p.TcpGbps:0.00} Gbit/s, UDP64 {p.UdpKpps:0.0} kpps delivered, RTT {p.RttMs:0.000} ms (median {p.RttMedianMs:0.000})")
        + (double.IsNaN(p.CpuSecondsPerGB) ? "" : string.Create(CultureInfo.InvariantCulture, $", router CPU {p.CpuSecondsPerGB:0.00} s/GB, {p.AllocBytesPerFrame:0.00} B allocated/frame"));

    private static string Table(List<Pass> k, List<Pass> u, List<Pass> e, List<Pass> eu, int seconds, int passes)
    {
        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Where(x => !double.IsNaN(x)).Order().ToArray();
            return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }
        static string Range(IEnumerable<double> xs, string fmt) =>
            $"{xs.Min().ToString(fmt, CultureInfo.InvariantCulture)}–{xs.Max().ToString(fmt, CultureInfo.InvariantCulture)}";
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Medians of {passes} pass(es), {seconds} s per iperf3 test (min–max in brackets):");
        sb.AppendLine();
        sb.AppendLine("| metric | kernel VXLAN | UserOverlay | encrypted (ESP transport) | encrypted (ESP-in-UDP, default) | UserOverlay/kernel | transport/plain | ESP-in-UDP/plain |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) || b == 0 ? "n/a" : (a / b).ToString("0.00", CultureInfo.InvariantCulture);
        string Cell(List<Pass> ps, Func<Pass, double> f, string fmt) =>
            ps.All(p => double.IsNaN(f(p))) ? "n/a" : $"{Median(ps.Select(f)).ToString(fmt, CultureInfo.InvariantCulture)} ({Range(ps.Select(f).Where(x => !double.IsNaN(x)), fmt)})";
        void Row(string name, Func<Pass, double> f, string fmt, bool lowerIsBetter = false)
        {
            double mk = Median(k.Select(f)), mu = Median(u.Select(f)), me = Median(e.Select(f)), meu = Median(eu.Select(f));
            string note = lowerIsBetter ? " (lower is better)" : "";
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {Cell(k, f, fmt)} | {Cell(u, f, fmt)} | {Cell(e, f, fmt)} | {Cell(eu, f, fmt)} | {Ratio(mu, mk)}{note} | {Ratio(me, mu)}{note} | {Ratio(meu, mu)}{note} |");
        }
        Row("TCP single stream, Gbit/s", p => p.TcpGbps, "0.00");
        Row("UDP 64 B delivered, kpps", p => p.UdpKpps, "0.0");
        Row("ping RTT (average), ms", p => p.RttMs, "0.000", lowerIsBetter: true);
        Row("ping RTT (median), ms", p => p.RttMedianMs, "0.000", lowerIsBetter: true);
        Row("ping RTT (90th percentile), ms", p => p.RttP90Ms, "0.000", lowerIsBetter: true);
        Row("router CPU s/GB (TCP test)", p => p.CpuSecondsPerGB, "0.00", lowerIsBetter: true);
        Row("bytes allocated per frame", p => p.AllocBytesPerFrame, "0.00", lowerIsBetter: true);
        return sb.ToString();
    }

    // ---- the documents' tables (--markdown) ---------------------------------------------------

    private sealed record RunResults(List<Pass> Kernel, List<Pass> User, List<Pass> Esp, List<Pass> EspUdp, int Seconds, int Passes);

    private static double MedianOf(IEnumerable<double> xs)
    {
        var a = xs.Where(x => !double.IsNaN(x)).Order().ToArray();
        return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static string Num(double x, string fmt) => double.IsNaN(x) ? "—" : x.ToString(fmt, CultureInfo.InvariantCulture);

    /// <summary>The median, with the passes' min–max in brackets when there is more than one pass.</summary>
    private static string MedianRange(List<Pass> ps, Func<Pass, double> f, string fmt)
    {
        var xs = ps.Select(f).Where(x => !double.IsNaN(x)).ToArray();
        if (xs.Length == 0) return "—";
        string median = Num(MedianOf(xs), fmt);
        return xs.Length == 1 ? median : $"{median} ({Num(xs.Min(), fmt)}–{Num(xs.Max(), fmt)})";
    }

    private static string RatioOf(List<Pass> a, List<Pass> b, Func<Pass, double> f)
    {
        double x = MedianOf(a.Select(f)), y = MedianOf(b.Select(f));
        return double.IsNaN(x) || double.IsNaN(y) || y == 0 ? "—" : (x / y).ToString("0.00", CultureInfo.InvariantCulture);
    }

    private static string Conditions(RunResults r)
    {
        string routers = Binary is null ? "`dotnet useroverlay.dll` (JIT)" : "the native binary";
        string queues = _queues >= 0 ? $"`queues: {_queues}`" : "`queues: 0` (the default)";
        return string.Create(CultureInfo.InvariantCulture,
            $"Medians of {r.Passes} pass(es) of {r.Seconds} s, min–max in brackets; routers: {routers}, {queues}; {Environment.ProcessorCount} CPUs.");
    }

    /// <summary>docs/performance.md's table: every figure, the ratio UserOverlay/kernel and encrypted/plain.</summary>
    private static string PerformanceTable(RunResults r)
    {
        var (k, u, e, eu) = (r.Kernel, r.User, r.Esp, r.EspUdp);
        var sb = new StringBuilder();
        sb.AppendLine("<!-- perf-table -->");
        sb.AppendLine(Conditions(r));
        sb.AppendLine();
        sb.AppendLine("| metric | kernel VXLAN | UserOverlay | encrypted, ESP transport | encrypted, ESP-in-UDP (default) | UserOverlay/kernel | transport/plain | ESP-in-UDP/plain |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        void Row(string name, Func<Pass, double> f, string fmt)
        {
            string cells = string.Join(" | ", new[] { k, u, e, eu }.Select(ps => MedianRange(ps, f, fmt)));
            string rs = $"{RatioOf(u, k, f)} | {RatioOf(e, u, f)} | {RatioOf(eu, u, f)}";
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {cells} | {rs} |");
        }
        Row("TCP single stream, Gbit/s", p => p.TcpGbps, "0.00");
        Row("UDP 64 B delivered, kpps", p => p.UdpKpps, "0.0");
        string rttRatio = RatioOf(u, k, p => p.RttMs);
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| ping RTT, average of 100, ms | {string.Join(" | ", new[] { k, u, e, eu }.Select(ps => MedianRange(ps, p => p.RttMs, "0.000")))} | {rttRatio} | | |");
        string MedianP90(List<Pass> ps) => $"{Num(MedianOf(ps.Select(p => p.RttMedianMs)), "0.000")} / {Num(MedianOf(ps.Select(p => p.RttP90Ms)), "0.000")}";
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| ping RTT, median / 90th percentile, ms | {string.Join(" | ", new[] { k, u, e, eu }.Select(MedianP90))} | | | |");
        string Plain(List<Pass> ps, Func<Pass, double> f, string fmt) => Num(MedianOf(ps.Select(f)), fmt);
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| router CPU s/GB (TCP) | {string.Join(" | ", new[] { k, u, e, eu }.Select(ps => Plain(ps, p => p.CpuSecondsPerGB, "0.00")))} | | | |");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| bytes allocated per frame | {string.Join(" | ", new[] { k, u, e, eu }.Select(ps => Plain(ps, p => p.AllocBytesPerFrame, "0.00")))} | | | |");
        sb.AppendLine("<!-- /perf-table -->");
        return sb.ToString();
    }

    /// <summary>README.md's short table: medians only, no ratios.</summary>
    private static string ReadmeTable(RunResults r)
    {
        var all = new[] { r.Kernel, r.User, r.Esp, r.EspUdp };
        string Cells(Func<List<Pass>, string> cell) => string.Join(" | ", all.Select(cell));
        var sb = new StringBuilder();
        sb.AppendLine("<!-- perf-table -->");
        sb.AppendLine("| | kernel VXLAN | UserOverlay | encrypted, ESP transport | encrypted, ESP-in-UDP (default) |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| TCP single stream, Gbit/s | {Cells(ps => Num(MedianOf(ps.Select(p => p.TcpGbps)), "0.00"))} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| UDP 64 B delivered, kpps | {Cells(ps => Num(MedianOf(ps.Select(p => p.UdpKpps)), "0.0"))} |");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| ping RTT, average / median, ms | {Cells(ps => $"{Num(MedianOf(ps.Select(p => p.RttMs)), "0.000")} / {Num(MedianOf(ps.Select(p => p.RttMedianMs)), "0.000")}")} |");
        sb.AppendLine("<!-- /perf-table -->");
        return sb.ToString();
    }

    // ---- topology -------------------------------------------------------------------------

    /// <summary>Host namespaces a and b joined by a veth underlay (192.0.2.1/24 — 192.0.2.2/24), and workload namespaces wa and wb.</summary>
    internal static void Underlay()
    {
        foreach (var n in new[] { "a", "b", "wa", "wb" })
        {
            Must("ip", "netns", "add", Ns(n));
            Namespaces.Add(Ns(n));
            Must("ip", "-n", Ns(n), "link", "set", "lo", "up");
        }
        Must("ip", "-n", Ns("a"), "link", "add", "ul0", "mtu", "1500", "type", "veth", "peer", "name", "ul0", "mtu", "1500", "netns", Ns("b"));
        Must("ip", "-n", Ns("a"), "addr", "add", "192.0.2.1/24", "dev", "ul0");
        Must("ip", "-n", Ns("b"), "addr", "add", "192.0.2.2/24", "dev", "ul0");
        Must("ip", "-n", Ns("a"), "link", "set", "ul0", "up");
        Must("ip", "-n", Ns("b"), "link", "set", "ul0", "up");
    }

    // Kernel VXLAN: vx0 in each host namespace, VNI 42, learning, mtu 1450 (the overlay MTU UserOverlay uses too).
    private static void KernelUp()
    {
        foreach (var (me, peer, ip) in new[] { ("a", "192.0.2.2", "198.18.0.1"), ("b", "192.0.2.1", "198.18.0.2") })
        {
            string local = peer == "192.0.2.2" ? "192.0.2.1" : "192.0.2.2";
            Must("ip", "-n", Ns(me), "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "remote", peer, "local", local, "dev", "ul0");
            Must("ip", "-n", Ns(me), "link", "set", "vx0", "mtu", "1450");
            Must("ip", "-n", Ns(me), "addr", "add", ip + "/24", "dev", "vx0");
            Must("ip", "-n", Ns(me), "link", "set", "vx0", "up");
        }
        _client = Ns("a");
        _server = Ns("b");
    }

    private static void KernelDown()
    {
        Exec("ip", "-n", Ns("a"), "link", "del", "vx0");
        Exec("ip", "-n", Ns("b"), "link", "del", "vx0");
    }

    private static string _client = "", _server = "";
    private static readonly List<(Process P, string Name)> Routers = [];

    private static int[] UserOverlayUp(string cli, bool encrypted, bool espUdp = false)
    {
        string state = Path.Combine(Path.GetTempPath(), Prefix + "state");
        // A fixed benchmark key: 32 bytes for AES-256, its first 16 for AES-128.
        string key = _keyBits == 256 ? "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" : "AAECAwQFBgcICQoLDA0ODw==";
        Routers.Clear();
        foreach (var (host, self, peer, work, ip) in new[] { ("a", "192.0.2.1", "192.0.2.2", "wa", "198.18.0.1"), ("b", "192.0.2.2", "192.0.2.1", "wb", "198.18.0.2") })
        {
            string name = Ns(host);
            string cfg = Path.Combine(Path.GetTempPath(), name + ".yaml");
            File.WriteAllText(cfg, $$"""
                underlay: { address: {{self}} }
                peers: [{{peer}}]{{(_queues >= 0 ? $"\nqueues: {_queues}" : "")}}
                encryption: { state_dir: {{state}}, esp: {{(espUdp ? "udp" : "transport")}} }
                networks: [ { name: bench, vni: 42, subnet: 198.18.0.0/24{{(encrypted ? $", encrypted: true, key: \"{key}\"" : ", mtu: 1450")}} } ]
                endpoints: [ { network: bench, netns: {{Ns(work)}}, address: {{ip}}/24 } ]
                """);
            var p = Start("ip", ["netns", "exec", Ns(host), .. CliCommand(cli), "up", "--config", cfg, "--name", name, "--log-level", "Warning"]);
            Routers.Add((p, name));
        }
        foreach (var (p, name) in Routers)
        {
            var sw = Stopwatch.StartNew();
            while (!File.Exists($"/run/useroverlay/{name}.sock"))
            {
                if (p.HasExited || sw.Elapsed > TimeSpan.FromSeconds(30)) throw new InvalidOperationException($"router {name} did not start");
                Thread.Sleep(50);
            }
        }
        Thread.Sleep(300);
        _client = Ns("wa");
        _server = Ns("wb");
        return Routers.Select(r => r.P.Id).ToArray();
    }

    private static void UserOverlayDown()
    {
        foreach (var (p, _) in Routers)
        {
            Exec("kill", "-TERM", p.Id.ToString(CultureInfo.InvariantCulture));
            if (!p.WaitForExit(10_000)) p.Kill();
        }
        Routers.Clear();
    }

    // ---- one pass -------------------------------------------------------------------------

    private static Pass Measure(int seconds, Action up, Action down, int[] routerPids, string? cli = null)
    {
        up();
        try
        {
            // Warm-up: ARP/FDB learning, and the JIT of the router's paths.
            Exec("ip", "netns", "exec", _client, "ping", "-n", "-c", "5", "-i", "0.1", "-W", "2", "198.18.0.2");
            Iperf(seconds: 1, udp: false);

            long cpuBefore = routerPids.Sum(CpuTicks);
            var (allocBefore, framesBefore) = cli is null ? (0L, 0L) : Allocation(cli);
            var tcp = Iperf(seconds, udp: false);
            long cpuAfter = routerPids.Sum(CpuTicks);
            var (allocAfter, framesAfter) = cli is null ? (0L, 0L) : Allocation(cli);
            double gb = tcp.Bytes / 1e9;
            double cpu = routerPids.Length == 0 ? double.NaN : (cpuAfter - cpuBefore) / 100.0 / gb; // USER_HZ = 100
            double alloc = cli is null || framesAfter == framesBefore ? double.NaN : (allocAfter - allocBefore) / (double)(framesAfter - framesBefore);

            var udp = Iperf(seconds, udp: true);

            Thread.Sleep(500); // let the UDP test's queues drain
            var ping = Exec("ip", "netns", "exec", _client, "ping", "-n", "-c", "100", "-i", "0.05", "-W", "2", "198.18.0.2");
            var m = Regex.Match(ping.Out, @"= [\d.]+/([\d.]+)/");
            double rtt = m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
            var times = Regex.Matches(ping.Out, @"time=([\d.]+) ms").Select(t => double.Parse(t.Groups[1].Value, CultureInfo.InvariantCulture)).Order().ToList();
            double At(double q) => times.Count == 0 ? double.NaN : times[Math.Min(times.Count - 1, (int)(q * times.Count))];
            return new Pass(tcp.BitsPerSecond / 1e9, udp.Delivered / seconds / 1000.0, rtt, cpu, alloc, At(0.5), At(0.9));
        }
        finally
        {
            down();
        }
    }

    private sealed record IperfResult(double BitsPerSecond, double Bytes, double Delivered);

    private static IperfResult Iperf(int seconds, bool udp)
    {
        var server = Start("ip", "netns", "exec", _server, "iperf3", "-s", "-1", "-B", "198.18.0.2");
        Thread.Sleep(300);
        try
        {
            var args = new List<string> { "netns", "exec", _client, "iperf3", "-c", "198.18.0.2", "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J" };
            if (udp) args.AddRange(["-u", "-l", "64", "-b", "0"]);
            var r = Exec("ip", [.. args]);
            using var doc = JsonDocument.Parse(r.Out);
            var end = doc.RootElement.GetProperty("end");
            if (udp)
            {
                var sum = end.GetProperty("sum");
                double packets = sum.GetProperty("packets").GetDouble(), lost = sum.GetProperty("lost_packets").GetDouble();
                return new IperfResult(sum.GetProperty("bits_per_second").GetDouble(), sum.GetProperty("bytes").GetDouble(), packets - lost);
            }
            var recv = end.GetProperty("sum_received");
            return new IperfResult(recv.GetProperty("bits_per_second").GetDouble(), recv.GetProperty("bytes").GetDouble(), 0);
        }
        finally
        {
            if (!server.WaitForExit(5000)) server.Kill();
        }
    }

    /// <summary>GC-allocated bytes and frames carried, summed over both routers (from their status).</summary>
    private static (long Alloc, long Frames) Allocation(string cli)
    {
        long alloc = 0, frames = 0;
        foreach (var (_, name) in Routers)
        {
            string[] command = CliCommand(cli);
            var r = Exec(command[0], [.. command[1..], "status", "--name", name, "--json"]);
            using var doc = JsonDocument.Parse(r.Out);
            alloc += doc.RootElement.GetProperty("gc_allocated_bytes").GetInt64();
            foreach (var n in doc.RootElement.GetProperty("networks").EnumerateArray())
            {
                var c = n.GetProperty("counters");
                frames += c.GetProperty("tx_frames").GetInt64() + c.GetProperty("rx_frames").GetInt64();
            }
        }
        return (alloc, frames);
    }

    private static double Busy()
    {
        static (long Busy, long Total) Read()
        {
            var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
            long idle = f[3] + f[4];
            return (f.Sum() - idle, f.Sum());
        }
        var a = Read();
        Thread.Sleep(1000);
        var b = Read();
        return 100.0 * (b.Busy - a.Busy) / Math.Max(1, b.Total - a.Total);
    }

}
