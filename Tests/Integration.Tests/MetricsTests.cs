using UserOverlay.Router;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// /metrics of a running daemon, read back by a strict text-format parser (<see cref="PrometheusText"/>): the series
/// README lists each move with the traffic, hostile input or time that should move them. (The cluster's series are
/// asserted by ClusterTests; the captures' by CaptureTests' slow reader; the gossip members' by FailureDetectionTests.)
/// </summary>
[Collection(nameof(CaptureCollection))]
public sealed class MetricsTests(CaptureFixture f)
{
    private PrometheusText Scrape(int host = 1) =>
        PrometheusText.Parse(TestNetwork.Exec(f.Ns[$"h{host}"], "curl -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut);

    [Fact]
    public async Task Every_series_moves_with_what_it_counts_and_the_exposition_is_valid_text_format()
    {
        Requires.Tool("curl", "curl");
        var before = Scrape();
        string[] secret = ["network=secret", "vni=5000"];

        // Traffic: a ping (tx, rx, sent, delivered), ARP for a known neighbour answered by proxy (after a flush), and an
        // IP broadcast (flooded).
        Assert.True(TestNetwork.Ping(f.Ns["s1"], "198.18.2.12", count: 3, interval: 0.2, minReplies: 3));
        TestNetwork.Exec(f.Ns["s1"], "ip neigh flush dev eth0");
        Assert.True(TestNetwork.Ping(f.Ns["s1"], "198.18.2.12", count: 2, interval: 0.2, minReplies: 2));
        TestNetwork.Exec(f.Ns["s1"], "ping -n -b -c 2 -i 0.2 -W 1 198.18.2.255");

        // Hostile input from the peer's address: VXLAN without the I flag (no network), plain VXLAN for the encrypted
        // VNI (secret's), and an ESP-in-UDP packet of an SPI nobody has.
        Shell.Run("ip", ["netns", "exec", f.Ns["h2"], "bash", "-c",
            @"printf '\x00\x00\x00\x00\x00\x13\x88\x00xxxxxxxxxxxxxx' > /dev/udp/192.0.2.1/4789;
              printf '\x08\x00\x00\x00\x00\x13\x88\x00\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00' > /dev/udp/192.0.2.1/4789;
              printf '\x7f\x7f\x7f\x7f\x00\x00\x00\x01yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy' > /dev/udp/192.0.2.1/4500"]).EnsureSuccess();

        PrometheusText after = before;
        string Dropped(string reason) => DropReasons.Name(Enum.Parse<DropReason>(reason));
        // Some of it takes a rekey (3 s epochs) or a moment to be counted: poll.
        await Eventually.True(() =>
        {
            after = Scrape();
            return after.Value("useroverlay_esp_rekeys_total") > before.Value("useroverlay_esp_rekeys_total")
                && after.Value("useroverlay_drops_total", "network=", "reason=" + Dropped("EspUnknownSpi")) > before.Value("useroverlay_drops_total", "network=", "reason=" + Dropped("EspUnknownSpi"));
        }, TimeSpan.FromSeconds(15), "a rekey and the hostile ESP counted");

        void Moved(string name, params string[] labels)
        {
            double b = before.Value(name, labels), a = after.Value(name, labels);
            Assert.True(after.Find(name, labels).Any(), $"{name}{{{string.Join(",", labels)}}} is not exposed");
            Assert.True(a > b, $"{name}{{{string.Join(",", labels)}}} did not move: {b} → {a}");
        }
        Moved("useroverlay_network_frames_total", [.. secret, "direction=tx"]);
        Moved("useroverlay_network_frames_total", [.. secret, "direction=rx"]);
        Moved("useroverlay_network_bytes_total", [.. secret, "direction=tx"]);
        Moved("useroverlay_network_bytes_total", [.. secret, "direction=rx"]);
        Moved("useroverlay_network_vxlan_datagrams_sent_total", secret);
        Moved("useroverlay_network_delivered_frames_total", secret);
        Moved("useroverlay_network_flooded_frames_total", secret);
        Moved("useroverlay_network_proxy_arp_replies_total", secret);
        Moved("useroverlay_drops_total", "network=", "reason=" + Dropped("BadVxlanFlags"));
        Moved("useroverlay_drops_total", "network=secret", "reason=" + Dropped("PlaintextOnEncrypted"));
        Moved("useroverlay_drops_total", "network=", "reason=" + Dropped("EspUnknownSpi"));
        Assert.True(after.Value("useroverlay_fdb_entries", "network=secret", "source=local") >= 1);
        Assert.True(after.Value("useroverlay_fdb_entries", "network=secret", "source=learned") >= 1);
        Moved("useroverlay_uptime_seconds");
        Moved("useroverlay_gc_allocated_bytes_total");
        Moved("useroverlay_peer_datagrams_received_total", "peer=192.0.2.2:4789");
        Assert.InRange(after.Value("useroverlay_peer_last_heard_seconds", "peer=192.0.2.2:4789"), 0, 5);
        Assert.InRange(after.Value("useroverlay_esp_sa_age_seconds"), 0, 3.5);
        Moved("useroverlay_esp_rekeys_total");
        Moved("useroverlay_worker_busy_seconds_total");
        Assert.InRange(after.Value("useroverlay_worker_busy_seconds_total"), 0, after.Value("useroverlay_uptime_seconds") * after.Find("useroverlay_worker_busy_seconds_total").Count());
        Assert.True(after.Has("useroverlay_captures_running") && after.Has("useroverlay_capture_dropped_frames_total"));

        // The types a dashboard relies on.
        Assert.Equal("counter", after.Types["useroverlay_network_frames_total"]);
        Assert.Equal("gauge", after.Types["useroverlay_fdb_entries"]);
        Assert.Equal("gauge", after.Types["useroverlay_peer_last_heard_seconds"]);
    }

    [Fact]
    public async Task Fdb_unanswered_removed_counts_a_learned_entry_whose_static_peer_went_silent()
    {
        Requires.Tool("curl", "curl");
        // A router of its own on a plain network, its static peer 192.0.2.2 a bare host: what comes from there is
        // a datagram this test sends, and nothing there answers.
        using var net = new TestNetwork("mu");
        string h1 = net.AddHost("h1", "192.0.2.1/24"), h2 = net.AddHost("h2", "192.0.2.2/24");
        string c1 = net.AddNamespace("c1");
        using var router = new RouterProcess(net, h1, $"{net.Prefix}h1", $$"""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.2]
            metrics: 127.0.0.1:9464
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: blue, netns: {{c1}}, address: 198.18.0.11/24 } ]
            """);
        await router.StartAsync();
        PrometheusText Metrics() => PrometheusText.Parse(TestNetwork.Exec(h1, "curl -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut);
        string[] blue = ["network=blue", "vni=4097"];
        var before = Metrics();
        Assert.Equal(0, before.Value("useroverlay_network_fdb_unanswered_removed_total", blue));
        Assert.Equal(0, before.Value("useroverlay_fdb_entries", "network=blue", "source=learned"));

        // The peer's VTEP (192.0.2.2:4789) announces 198.18.0.99 at 02:00:00:00:00:99: a gratuitous ARP in VXLAN.
        byte[] mac = [0x02, 0, 0, 0, 0, 0x99], ip = [198, 18, 0, 99];
        byte[] frame = [0, 0, 0, 0, 0, 0, 0, 0, .. new byte[60]];
        frame[0] = 0x08; // I flag
        frame[4] = 0x00; frame[5] = 0x10; frame[6] = 0x01; // VNI 4097
        byte[] inner = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, .. mac, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, .. mac, .. ip, 0, 0, 0, 0, 0, 0, .. ip];
        inner.CopyTo(frame, 8);
        using (var vtep = NetnsSockets.Udp(h2, new System.Net.IPEndPoint(System.Net.IPAddress.Parse("192.0.2.2"), 4789)))
            vtep.SendTo(frame, new System.Net.IPEndPoint(System.Net.IPAddress.Parse("192.0.2.1"), 4789));
        await Eventually.True(() => Metrics().Value("useroverlay_fdb_entries", "network=blue", "source=learned") == 1,
            TimeSpan.FromSeconds(5), "the router learned the MAC behind the peer");

        // c1 sends to it for 8 s; nothing answers from that MAC, so after the 5 s window (fdb_unanswered) the entry goes.
        TestNetwork.Exec(c1, "ip neigh replace 198.18.0.99 lladdr 02:00:00:00:00:99 dev eth0 nud permanent").EnsureSuccess();
        var ping = Task.Run(() => TestNetwork.Exec(c1, "ping -n -q -i 0.2 -w 8 198.18.0.99", TimeSpan.FromSeconds(20)));
        PrometheusText after = before;
        await Eventually.True(() => (after = Metrics()).Value("useroverlay_network_fdb_unanswered_removed_total", blue) == 1,
            TimeSpan.FromSeconds(15), "useroverlay_network_fdb_unanswered_removed_total moved to 1");
        Assert.Equal("counter", after.Types["useroverlay_network_fdb_unanswered_removed_total"]);
        Assert.Equal(0, after.Value("useroverlay_fdb_entries", "network=blue", "source=learned"));
        Assert.Equal(1, after.Value("useroverlay_fdb_entries", "network=blue", "source=local"));
        await ping;
    }

    [Fact]
    public void Every_expression_of_the_grafana_dashboard_names_series_the_router_exports()
    {
        Requires.Tool("curl", "curl");
        var exposition = Scrape();
        // Families a router registers (Cli/Daemon: Create*("name", ...)): exposed even where this fixture has none of
        // their samples (gossip members in static mode).
        var registered = Directory.GetFiles(Path.Combine(Repo.Root, "Cli", "Daemon"), "*.cs")
            .SelectMany(file => System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(file), @"Create(?:Counter|Gauge|Histogram|Summary)\(""(useroverlay_[a-z_]+)""")
            .Select(m => m.Groups[1].Value)).ToHashSet();
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "samples", "grafana", "useroverlay-dashboard.json")));
        var exprs = json.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        Assert.True(exprs.Count >= 10, $"{exprs.Count} expressions");
        foreach (string expr in exprs)
        {
            var names = System.Text.RegularExpressions.Regex.Matches(expr, "useroverlay_[a-z_]+").Select(m => m.Value).ToList();
            Assert.NotEmpty(names);
            foreach (string name in names)
                Assert.True(exposition.Has(name) || registered.Contains(name), $"the dashboard's '{expr}' names {name}, which the router does not export");
        }
        // The fixture's router exposes most of them itself.
        Assert.True(exprs.SelectMany(e => System.Text.RegularExpressions.Regex.Matches(e, "useroverlay_[a-z_]+").Select(m => m.Value)).Distinct().Count(exposition.Has) >= 15);
    }

    [Theory]
    [InlineData("useroverlay_x_total 1\n", "before its family's TYPE")]
    [InlineData("# TYPE a counter\na{b=\"1} 2\n", "unterminated")]
    [InlineData("# TYPE a counter\na{b=1} 2\n", "unquoted")]
    [InlineData("# TYPE a gauge\na one\n", "not a float")]
    [InlineData("# TYPE a gauge\na 1\na 2\n", "same series twice")]
    [InlineData("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 2\n", "not together")]
    [InlineData("# TYPE a counter\na -1\n", "negative counter")]
    public void The_parser_refuses_what_a_scraper_would(string text, string why) =>
        Assert.Contains(why, Assert.Throws<FormatException>(() => PrometheusText.Parse(text)).Message);
}
