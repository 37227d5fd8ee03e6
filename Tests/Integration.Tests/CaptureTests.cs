using System.Diagnostics;
using System.Text.RegularExpressions;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Two hosts with an encrypted network (secret, ESP-in-UDP, the default) and `useroverlay capture` on host 1, read back
/// with tshark: the inner frames in clear, the filter, -c, a slow reader, and root only.
/// </summary>
public sealed class CaptureFixture : IAsyncLifetime
{
    public const string Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    public TestNetwork Net { get; private set; } = null!;
    public RouterProcess[] Routers { get; private set; } = [];
    public Dictionary<string, string> Ns { get; } = new();
    public string Tshark { get; private set; } = "";
    private string _stateDir = "";

    public async ValueTask InitializeAsync()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        Tshark = Requires.Tool("tshark", "tshark");
        Net = new TestNetwork("cap");
        _stateDir = Directory.CreateTempSubdirectory("uo-cap-state-").FullName;
        for (int i = 1; i <= 2; i++)
        {
            Ns[$"h{i}"] = Net.AddHost($"h{i}", $"192.0.2.{i}/24");
            Ns[$"s{i}"] = Net.AddNamespace($"s{i}");
        }
        Routers = Enumerable.Range(1, 2).Select(i => new RouterProcess(Net, Ns[$"h{i}"], $"{Net.Prefix}h{i}", $$"""
            underlay: { address: 192.0.2.{{i}} }
            peers: [192.0.2.{{3 - i}}]
            metrics: 127.0.0.1:9464
            encryption: { rekey_interval: 3s, state_dir: {{_stateDir}}/h{{i}} }
            networks:
              - { name: secret, vni: 5000, subnet: 198.18.2.0/24, encrypted: true, key: "{{Key}}" }
            endpoints:
              - { network: secret, netns: {{Ns[$"s{i}"]}}, address: 198.18.2.1{{i}}/24 }
            """)).ToArray();
        await Task.WhenAll(Routers.Select(r => r.StartAsync()));
        Assert.True(TestNetwork.Ping(Ns["s1"], "198.18.2.12", count: 3, minReplies: 1), "s1 → s2 before any capture");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in Routers) r.Dispose();
        Net?.Dispose();
        try { Directory.Delete(_stateDir, recursive: true); } catch (IOException) { }
        await Task.CompletedTask;
    }
}

[CollectionDefinition(nameof(CaptureCollection))]
public sealed class CaptureCollection : ICollectionFixture<CaptureFixture>;

[Collection(nameof(CaptureCollection))]
public sealed class CaptureTests(CaptureFixture f)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>`useroverlay capture -H ROUTER ARGS` in host 1's namespace, its stdout not read (the caller owns it).</summary>
    private Process StartCapture(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "netns", "exec", f.Ns["h1"] }.Concat(RouterProcess.Command).Concat(["capture", "-H", f.Routers[0].Name]).Concat(args))
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>Waits for the capture's "capturing ..." line on stderr; returns a task with the rest of stderr.</summary>
    private static async Task<Task<string>> Started(Process p)
    {
        string? first = await p.StandardError.ReadLineAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Wait, TestContext.Current.CancellationToken);
        if (first is null || !first.StartsWith("capturing ", StringComparison.Ordinal))
            Assert.Fail($"the capture did not start: {first}");
        return p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
    }

    private string[] TsharkFields(string pcap, params string[] fields)
    {
        var r = Shell.Run(f.Tshark, new[] { "-r", pcap, "-T", "fields" }.Concat(fields.SelectMany(x => new[] { "-e", x })), TimeSpan.FromSeconds(60)).EnsureSuccess();
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task A_capture_on_the_encrypted_network_streams_the_pings_ICMP_in_clear_to_tshark_live()
    {
        using var cap = StartCapture("--network", "secret", "-w", "-", "-c", "6", "icmp");
        var tsharkInfo = new ProcessStartInfo(f.Tshark) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "-r", "-", "-l", "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type" }) tsharkInfo.ArgumentList.Add(a);
        using var tshark = Process.Start(tsharkInfo)!;
        var pipe = cap.StandardOutput.BaseStream.CopyToAsync(tshark.StandardInput.BaseStream, TestContext.Current.CancellationToken).ContinueWith(_ => tshark.StandardInput.Close(), TaskScheduler.Default);
        var stderr = await Started(cap);
        var tsharkOut = tshark.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);

        Assert.True(TestNetwork.Ping(f.Ns["s1"], "198.18.2.12", count: 5, interval: 0.2, minReplies: 3));
        await cap.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Wait, TestContext.Current.CancellationToken); // -c 6: it stops by itself
        await pipe.WaitAsync(Wait, TestContext.Current.CancellationToken);
        await tshark.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Wait, TestContext.Current.CancellationToken);
        Assert.Equal(0, cap.ExitCode);
        var lines = (await tsharkOut).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.Contains("198.18.2.11\t198.18.2.12\t8", lines); // echo requests, decrypted: the router holds them in clear
        Assert.Contains("198.18.2.12\t198.18.2.11\t0", lines);
        Assert.All(lines, l => Assert.Matches(@"^198\.18\.2\.1[12]\t198\.18\.2\.1[12]\t(0|8)$", l));
        Assert.Contains("6 frame(s) written", await stderr);
    }

    [Fact]
    public async Task A_filter_keeps_only_what_it_names_and_count_stops_the_capture_after_count_frames()
    {
        string pcap = Path.Combine(Path.GetTempPath(), $"{f.Net.Prefix}requests.pcap");
        try
        {
            using var cap = StartCapture("--network", "secret", "--direction", "out", "-w", pcap, "-c", "3", "icmp[icmptype]", "==", "icmp-echo");
            var stderr = await Started(cap);
            // ARP, echo replies and other frames cross too; ping keeps going after the capture has its three.
            TestNetwork.Exec(f.Ns["s1"], "ip neigh flush dev eth0");
            var ping = Task.Run(() => TestNetwork.Ping(f.Ns["s1"], "198.18.2.12", count: 10, interval: 0.2, minReplies: 8));
            await cap.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Wait, TestContext.Current.CancellationToken);
            Assert.False(ping.IsCompleted, "the capture stopped only when ping had finished: -c did not stop it");
            Assert.True(await ping);
            Assert.Equal(0, cap.ExitCode);
            Assert.Contains("3 frame(s) written", await stderr);
            var frames = TsharkFields(pcap, "ip.src", "ip.dst", "icmp.type", "icmp.seq");
            Assert.Equal(3, frames.Length);
            Assert.All(frames, l => Assert.StartsWith("198.18.2.11\t198.18.2.12\t8\t", l, StringComparison.Ordinal));
            Assert.Equal(3, frames.Select(l => l.Split('\t')[3]).Distinct().Count());
        }
        finally { File.Delete(pcap); }
    }

    [Fact]
    public async Task A_slow_reader_loses_captured_frames_while_forwarding_loses_none()
    {
        // The capture's stdout is a pipe nobody reads: it fills, the CLI blocks, the stream stops draining, the
        // router's small rings fill and captured frames are dropped — while a flood ping crosses the network.
        PrometheusText Scrape() => PrometheusText.Parse(TestNetwork.Exec(f.Ns["h1"], "curl -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut);
        using var cap = StartCapture("--network", "secret", "--buffer", "16", "-w", "-");
        await Started(cap);
        await Eventually.True(() => Scrape().Value("useroverlay_captures_running") == 1, TimeSpan.FromSeconds(10), "the router counts the running capture");
        var ping = TestNetwork.Exec(f.Ns["s1"], "ping -n -q -f -c 3000 -W 1 198.18.2.12", TimeSpan.FromSeconds(120));
        Assert.Contains(" 0% packet loss", ping.StdOut);
        Assert.Contains("3000 received", ping.StdOut);

        // The router counted the captured frames it dropped for this reader (never a forwarded one: the ping above).
        await Eventually.True(() => Scrape().Value("useroverlay_capture_dropped_frames_total") > 0, TimeSpan.FromSeconds(10),
            "the router counts the captured frames the stalled reader lost");

        // The client goes away (killed, its pipe never read): the router ends the capture and runs none.
        cap.Kill();
        await cap.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Wait, TestContext.Current.CancellationToken);
        await Eventually.True(() => Scrape().Value("useroverlay_captures_running") == 0, TimeSpan.FromSeconds(10), "the router stops the capture its client left");
    }

    [Fact]
    public void Only_root_may_capture()
    {
        string setpriv = Requires.Tool("setpriv", "util-linux");
        string curl = Requires.Tool("curl", "curl");
        string socket = ControlApi.SocketPath(f.Routers[0].Name);
        // uid 65534 with gid 0: the socket's group lets it connect; capturing (decrypted traffic) is decided by its uid.
        var r = Shell.Run(setpriv, ["--reuid=65534", "--regid=0", "--clear-groups", curl, "-s", "-m", "5", "-w", "\n%{http_code}", "--unix-socket", socket,
            "http://useroverlay/v1/capture?network=secret"]);
        Assert.EndsWith("\n403", r.StdOut.TrimEnd());
        Assert.Contains("permission_denied", r.StdOut);
        Assert.Contains("you are uid 65534", r.StdOut);

        var bad = f.Routers[0].Cli("capture", "-H", f.Routers[0].Name, "--network", "nosuch");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("network: 'nosuch' is not on this router", bad.StdErr);
        var filter = f.Routers[0].Cli("capture", "-H", f.Routers[0].Name, "--network", "secret", "icmp", "and", "(");
        Assert.Equal(2, filter.ExitCode);
        Assert.Contains("FILTER: libpcap cannot compile", filter.StdErr);
    }
}
