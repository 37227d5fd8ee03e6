using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Gossip;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// The daemon as a service runs it: started from the root directory (systemd's default working directory),
/// telling its supervisor when it is ready (sd_notify on NOTIFY_SOCKET), stopped with SIGTERM.
/// </summary>
public sealed class DaemonTests
{
    [Fact]
    public async Task A_router_started_from_the_root_directory_watches_no_files_and_serves_its_control_socket_and_metrics()
    {
        Requires.Root();
        using var net = new TestNetwork("dm");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1");
        using var router = new RouterProcess(net, host, $"{net.Prefix}h1", $$"""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.2]
            metrics: 127.0.0.1:9464
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: blue, netns: {{c1}}, address: 198.18.0.11/24 } ]
            """) { WorkingDirectory = "/" };
        await router.StartAsync();

        Assert.Equal("/", Path.GetFullPath(new DirectoryInfo($"/proc/{router.Pid}/cwd").ResolveLinkTarget(returnFinalTarget: false)!.FullName));
        // No inotify instance at all: a configuration file watcher on the working directory would watch every
        // directory below it (here the whole filesystem) and wake for every file written on the machine.
        var inotify = Directory.GetFiles($"/proc/{router.Pid}/fd")
            .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
            .Where(t => t == "anon_inode:inotify")
            .ToList();
        Assert.Empty(inotify);

        var status = await router.StatusAsync();
        Assert.Equal("blue", Assert.Single(status.Networks).Name);
        using var socket = NetnsSockets.TcpSocket(host);
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9464), TestContext.Current.CancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler { ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new System.Net.Sockets.NetworkStream(socket, ownsSocket: false)) })
        { Timeout = TimeSpan.FromSeconds(10) };
        string metrics = await http.GetStringAsync("http://127.0.0.1:9464/metrics", TestContext.Current.CancellationToken);
        Assert.Contains("useroverlay_gc_allocated_bytes_total", metrics);
    }

    [Fact]
    public async Task Ready_is_notified_once_the_router_forwards_and_the_control_socket_answers_and_SIGTERM_stops_it_cleanly()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("dn");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1"), c2 = net.AddNamespace("c2");
        using var notify = new NotifySocket(Path.Combine(Path.GetTempPath(), $"{net.Prefix}notify.sock"));
        using var router = new RouterProcess(net, host, $"{net.Prefix}h1", $$"""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.2]
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints:
              - { network: blue, netns: {{c1}}, address: 198.18.0.11/24 }
              - { network: blue, netns: {{c2}}, address: 198.18.0.12/24 }
            """) { EnvironmentVariables = new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path } };
        router.Launch();

        await notify.WaitForAsync("READY=1", router);
        // At this moment, not eventually: the control socket answers and the router forwards between its endpoints.
        Assert.True(File.Exists(ControlApi.SocketPath(router.Name)), $"READY=1 came before the control socket {ControlApi.SocketPath(router.Name)} existed");
        using (var client = new ControlClient(ControlApi.SocketPath(router.Name)))
            Assert.Equal("OK", await client.GetAsync("_ping", TestContext.Current.CancellationToken));
        Assert.True(TestNetwork.Ping(c1, "198.18.0.12", count: 1, waitSeconds: 2), "c1 → c2 through the router right after READY=1");
        Assert.Equal(2, (await router.StatusAsync()).Networks.Single().Endpoints.Count);

        Assert.Equal(0, await router.StopAsync());
        await notify.WaitForAsync("STOPPING=1", null);
        Assert.NotEqual(0, TestNetwork.Exec(c1, "ip link show eth0").ExitCode); // the TAP devices went with the router
        Assert.NotEqual(0, TestNetwork.Exec(c2, "ip link show eth0").ExitCode);
        Assert.False(File.Exists(ControlApi.SocketPath(router.Name)), "the control socket is removed on stop");
    }

    [Fact]
    public async Task In_gossip_mode_a_daemon_stopped_with_SIGTERM_leaves_the_cluster_and_the_other_host_drops_it_at_once()
    {
        Requires.Root();
        using var net = new TestNetwork("dg");
        var hosts = new[] { net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24") };
        var eps = new[] { net.AddNamespace("b1"), net.AddNamespace("b2") };
        // The LAN profile: failure detection takes seconds (1 s probes, suspicion multiplier 4), so "left" within
        // two seconds can only come from the leave message.
        string Config(int i) => $$"""
            underlay: { address: 192.0.2.{{i}} }
            gossip: { bind: 192.0.2.{{i}}, join: [192.0.2.1], name: h{{i}} }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: blue, netns: {{eps[i - 1]}}, address: 198.18.0.1{{i}}/24 } ]
            """;
        using var r1 = new RouterProcess(net, hosts[0], $"{net.Prefix}h1", Config(1));
        using var r2 = new RouterProcess(net, hosts[1], $"{net.Prefix}h2", Config(2));
        await r1.StartAsync();
        await r2.StartAsync();
        string b2Mac = GossipFixture.Mac("198.18.0.12");
        await Eventually.True(async () => (await MembersAsync(r1)).Members.Any(m => m.Name == "h2" && m.State == "alive")
            && (await r1.StatusAsync()).Networks.Single().Fdb.Any(e => e.Mac == b2Mac && e.Source == "gossip"), TimeSpan.FromSeconds(30), "h1 knows h2 and its endpoint");

        var stopped = Stopwatch.StartNew();
        Assert.Equal(0, await r2.StopAsync());
        Assert.NotEqual(0, TestNetwork.Exec(eps[1], "ip link show eth0").ExitCode);
        await Eventually.True(async () => (await MembersAsync(r1)).Members.Any(m => m.Name == "h2" && m.State == "left")
            && !(await r1.StatusAsync()).Networks.Single().Fdb.Any(e => e.Mac == b2Mac), TimeSpan.FromSeconds(2), "h1 sees h2 left (not failed) and drops its endpoint");
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(10), $"stop and leave took {stopped.Elapsed}");
    }

    [Fact]
    public void A_part_that_fails_to_start_stops_the_parts_already_started_and_the_daemon_exits_with_one_sentence()
    {
        Requires.Root();
        using var net = new TestNetwork("df");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1");
        // Metrics start last: by then the router has made c1's TAP and the control socket is open.
        using var taken = NetnsSockets.TcpListener(host, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9464));
        using var router = new RouterProcess(net, host, $"{net.Prefix}h1", $$"""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.2]
            metrics: 127.0.0.1:9464
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: blue, netns: {{c1}}, address: 198.18.0.11/24 } ]
            """);
        var r = router.Cli("up", "--config", router.ConfigPath, "--name", router.Name);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("cannot serve metrics on 127.0.0.1:9464", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr); // a sentence, not a stack trace
        Assert.NotEqual(0, TestNetwork.Exec(c1, "ip link show eth0").ExitCode); // no TAP left behind
        Assert.False(File.Exists(ControlApi.SocketPath(router.Name)), "the control socket that had opened is removed");
    }

    private static async Task<MembersResponse> MembersAsync(RouterProcess r)
    {
        using var c = new ControlClient(ControlApi.SocketPath(r.Name));
        return ControlJson.Read(await c.GetAsync("v1/members"), ControlJson.Default.MembersResponse);
    }

    /// <summary>A supervisor's end of sd_notify: a Unix datagram socket the daemon finds in NOTIFY_SOCKET.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly List<string> _received = [];

        public string Path { get; }

        public NotifySocket(string path)
        {
            Path = path;
            File.Delete(path);
            _socket.Bind(new UnixDomainSocketEndPoint(path));
        }

        /// <summary>Waits (30 s at most) for a message with the line <paramref name="line"/>; fails early if <paramref name="process"/> exits.</summary>
        public async Task WaitForAsync(string line, RouterProcess? process)
        {
            var buffer = new byte[4096];
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(30));
            while (!_received.Any(m => m.Split('\n').Contains(line)))
            {
                var receive = _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token).AsTask();
                while (await Task.WhenAny(receive, Task.Delay(100, TestContext.Current.CancellationToken)) != receive)
                {
                    if (process is { IsRunning: false })
                        Assert.Fail($"router {process.Name} exited before sending {line}:\n{process.Output}");
                    if (cts.IsCancellationRequested)
                        Assert.Fail($"no {line} in 30 s (received: {string.Join(" | ", _received)}){(process is null ? "" : ":\n" + process.Output)}");
                }
                _received.Add(Encoding.UTF8.GetString(buffer, 0, await receive));
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            try { File.Delete(Path); } catch (IOException) { }
        }
    }
}
