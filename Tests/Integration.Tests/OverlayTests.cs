using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>Three real hosts in namespaces, real TAPs, real VXLAN over a real underlay bridge.</summary>
[Collection(nameof(OverlayCollection))]
public sealed class OverlayTests(OverlayFixture f)
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(20);

    private string Ns(string n) => f.Ns[n];

    [Fact]
    public async Task Every_pair_in_each_network_pings()
    {
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var pairs = from a in OverlayFixture.Endpoints
                    from b in OverlayFixture.Endpoints
                    where a.Network == b.Network && a.Ns != b.Ns
                    select (a, b);
        // Ping in parallel per source namespace (ping itself retries ARP; the first may flood).
        await Parallel.ForEachAsync(pairs.GroupBy(p => p.a.Ns + p.a.Network), async (g, _) =>
        {
            foreach (var (a, b) in g)
                if (!TestNetwork.Ping(Ns(a.Ns), b.Address, count: 3, interval: 0.2, minReplies: 2))
                    failures.Add($"{a.Ns}({a.Network}) → {b.Ns} {b.Address}");
            await Task.CompletedTask;
        });
        Assert.True(failures.IsEmpty, "no replies: " + string.Join(", ", failures));
    }

    [Fact]
    public async Task Tcp_transfer_of_20_MB_arrives_intact_and_the_data_path_does_not_allocate_per_frame()
    {
        // Baseline: what one status request (and the idle process) allocates, measured the same way.
        var s0 = await f.Routers[0].StatusAsync();
        var s1 = await f.Routers[0].StatusAsync();
        long baseline = s1.GcAllocatedBytes - s0.GcAllocatedBytes;
        var (sent, received) = await Tcp.Transfer(Ns("b3"), "198.18.0.13", Ns("b1"), 20 << 20);
        Assert.Equal(sent, received);

        var s2 = await f.Routers[0].StatusAsync();
        long frames = s2.Networks.Sum(n => n.Counters.TxFrames + n.Counters.RxFrames) - s1.Networks.Sum(n => n.Counters.TxFrames + n.Counters.RxFrames);
        long allocated = s2.GcAllocatedBytes - s1.GcAllocatedBytes - baseline;
        Assert.True(frames > 14_000, $"only {frames} frames crossed h1");
        // One object allocated per frame would cost ≥ 24 B/frame; the rest is timers and the control socket.
        Assert.True(allocated / (double)frames < 8, $"{allocated} bytes allocated over {frames} frames ({allocated / (double)frames:0.0} B/frame; a status request costs {baseline} B)");
    }

    [Fact]
    public async Task Red_transfer_with_the_same_subnet_as_blue_is_intact()
    {
        var (sent, received) = await Tcp.Transfer(Ns("r1"), "198.18.0.21", Ns("r2"), 4 << 20);
        Assert.Equal(sent, received);
    }

    [Fact]
    public async Task Nothing_crosses_between_networks_that_share_a_subnet()
    {
        // 198.18.0.21 is r1 on red; from blue's b2 it must not answer, however many times we ask.
        Assert.False(TestNetwork.Ping(Ns("b2"), "198.18.0.21", count: 3, interval: 0.2, waitSeconds: 1, minReplies: 1));
        // A blue broadcast reaches blue endpoints on other hosts, and no red endpoint.
        using var blueRx = NetnsSockets.Udp(Ns("b3"), new IPEndPoint(IPAddress.Any, 9999));
        using var redRx = NetnsSockets.Udp(Ns("r3"), new IPEndPoint(IPAddress.Any, 9999));
        using var redRx2 = NetnsSockets.Udp(Ns("r2"), new IPEndPoint(IPAddress.Any, 9999));
        using var tx = NetnsSockets.Udp(Ns("b2"), new IPEndPoint(IPAddress.Parse("198.18.0.12"), 0));
        tx.EnableBroadcast = true;
        for (int i = 0; i < 10; i++) tx.SendTo("blue-broadcast"u8.ToArray(), new IPEndPoint(IPAddress.Parse("198.18.0.255"), 9999));
        var buf = new byte[100];
        blueRx.ReceiveTimeout = 3000;
        Assert.Equal("blue-broadcast", System.Text.Encoding.ASCII.GetString(buf, 0, blueRx.Receive(buf)));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.Equal(0, redRx.Available);
        Assert.Equal(0, redRx2.Available);
        var s3 = await f.Routers[2].StatusAsync();
        Assert.DoesNotContain(s3.Networks.Single(n => n.Name == "red").Fdb, e => e.Mac == "02:00:c6:12:00:0c"); // b2's MAC never learned on red
    }

    [Fact]
    public async Task A_kernel_vxlan_peer_talks_to_useroverlay_endpoints_both_ways()
    {
        Assert.True(TestNetwork.Ping(f.Kernel, "198.18.0.12", count: 3, minReplies: 2), "kernel VXLAN → b2 on h2");
        Assert.True(TestNetwork.Ping(Ns("b1"), "198.18.0.99", count: 3, minReplies: 2), "b1 on h1 → kernel VXLAN");
        var (s1, r1) = await Tcp.Transfer(f.Kernel, "198.18.0.99", Ns("b3"), 4 << 20);   // TCP: UserOverlay → kernel
        Assert.Equal(s1, r1);
        var (s2, r2) = await Tcp.Transfer(Ns("b2"), "198.18.0.12", f.Kernel, 4 << 20);   // TCP: kernel → UserOverlay
        Assert.Equal(s2, r2);
        var st = await f.Routers[1].StatusAsync();
        Assert.Contains(st.Networks.Single(n => n.Name == "blue").Fdb, e => e.Mac == "02:42:c6:12:00:63" && e.Destination == "192.0.2.9:4789");
    }

    [Fact]
    public async Task A_restarted_router_removes_its_taps_and_resumes_forwarding()
    {
        var h2 = f.Routers[1];
        Assert.True(TestNetwork.Ping(Ns("b1"), "198.18.0.12", count: 2, minReplies: 1));
        Assert.Equal(0, await h2.StopAsync());
        Assert.NotEqual(0, TestNetwork.Exec(Ns("b2"), "ip link show eth0").ExitCode); // the TAP went with the router
        Assert.False(File.Exists(Cli.Daemon.ControlApi.SocketPath(h2.Name)));
        Assert.False(TestNetwork.Ping(Ns("b1"), "198.18.0.12", count: 1, waitSeconds: 1));
        await h2.StartAsync();
        await Eventually.True(() => TestNetwork.Ping(Ns("b1"), "198.18.0.12", count: 1, waitSeconds: 1), Converge, "b1 → b2 after h2's router restarted");
        Assert.True(TestNetwork.Ping(Ns("b2"), "198.18.0.11", count: 2, minReplies: 2));
    }

    [Fact]
    public async Task Hostile_datagrams_are_dropped_and_counted_while_ping_keeps_working()
    {
        var h1 = f.Routers[0];
        var before = await h1.StatusAsync();
        var to = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789);
        var inner = new byte[60]; // an Ethernet frame: dst b1's MAC, src a random unicast MAC
        new byte[] { 0x02, 0x00, 0xc6, 0x12, 0x00, 0x0b, 0x02, 0x99, 0, 0, 0, 1, 0x08, 0x00 }.CopyTo(inner, 0);
        byte[] Vxlan(uint vni, byte flags = 0x08) => [flags, 0, 0, 0, (byte)(vni >> 16), (byte)(vni >> 8), (byte)vni, 0, .. inner];

        var ping = Task.Run(() => TestNetwork.Exec(Ns("b2"), "ping -n -c 30 -i 0.05 -W 1 198.18.0.11", TimeSpan.FromSeconds(30)), TestContext.Current.CancellationToken);
        using (var stranger = NetnsSockets.Udp(f.Stranger, new IPEndPoint(IPAddress.Any, 0)))
        using (var fromPeer = NetnsSockets.Udp(f.Ns["h2"], new IPEndPoint(IPAddress.Parse("192.0.2.2"), 0))) // a peer's address, another port
        {
            var rnd = new Random(7);
            for (int i = 0; i < 200; i++)
            {
                var garbage = new byte[rnd.Next(0, 1600)];
                rnd.NextBytes(garbage);
                stranger.SendTo(garbage, to);                       // garbage from a stranger
                stranger.SendTo(Vxlan(4097), to);                   // well-formed VXLAN from a stranger
                fromPeer.SendTo(Vxlan(4242), to);                   // unknown VNI
                fromPeer.SendTo(Vxlan(4097, flags: 0x00), to);      // no I flag
                fromPeer.SendTo(Vxlan(4097)[..12], to);             // truncated
            }
        }
        var result = await ping;
        Assert.Contains(" 0% packet loss", result.StdOut);

        var after = await h1.StatusAsync();
        long D(string reason) => after.Drops[reason] - before.Drops[reason];
        Assert.True(D("unknown_source") >= 400, $"unknown_source +{D("unknown_source")}");
        Assert.True(D("unknown_vni") >= 200, $"unknown_vni +{D("unknown_vni")}");
        Assert.True(D("bad_vxlan_flags") >= 200, $"bad_vxlan_flags +{D("bad_vxlan_flags")}");
        Assert.True(D("truncated") >= 200, $"truncated +{D("truncated")}");
        Assert.True(h1.IsRunning);
    }

    [Fact]
    public void Status_command_prints_networks_fdb_and_counters_and_json_for_scripts()
    {
        var h1 = f.Routers[0];
        Assert.True(TestNetwork.Ping(Ns("b1"), "198.18.0.13", count: 1));
        var text = h1.Cli("status", "--name", h1.Name).EnsureSuccess().StdOut;
        Assert.Contains("Network blue   VNI 4097   MTU 1450   subnet 198.18.0.0/24", text);
        Assert.Contains("Network red   VNI 4098", text);
        Assert.Contains("02:00:c6:12:00:0d   192.0.2.3:4789", text); // b3 learned behind h3
        Assert.Contains("Peers: 192.0.2.2:4789, 192.0.2.3:4789, 192.0.2.9:4789", text);
        var json = System.Text.Json.JsonDocument.Parse(h1.Cli("status", "--name", h1.Name, "--json").EnsureSuccess().StdOut);
        Assert.Equal("192.0.2.1:4789", json.RootElement.GetProperty("underlay").GetString());
        Assert.Equal(3, json.RootElement.GetProperty("networks").GetArrayLength());
    }

    [Fact]
    public void A_second_router_on_the_same_port_or_name_fails_with_one_clear_sentence()
    {
        const string sameAddress = """
            underlay: { address: 192.0.2.1 }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """;
        using var dup = new RouterProcess(f.Net, f.Ns["h1"], f.Routers[0].Name + "-dup", sameAddress);
        var r = dup.Cli("up", "--config", dup.ConfigPath, "--name", dup.Name);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("192.0.2.1:4789/udp: the port is already in use", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr); // a sentence, not a stack trace

        using var otherPort = new RouterProcess(f.Net, f.Ns["h1"], f.Routers[0].Name + "-dup2", sameAddress.Replace("192.0.2.1 }", "192.0.2.1, port: 4790 }"));
        var n = otherPort.Cli("up", "--config", otherPort.ConfigPath, "--name", f.Routers[0].Name);
        Assert.Equal(1, n.ExitCode);
        Assert.Contains("is already running", n.StdErr);
        Assert.True(f.Routers[0].IsRunning);
    }
}

[CollectionDefinition(nameof(OverlayCollection))]
public sealed class OverlayCollection : ICollectionFixture<OverlayFixture>;
