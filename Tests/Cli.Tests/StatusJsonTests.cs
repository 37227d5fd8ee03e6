using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Tests;

/// <summary>The status JSON of the control API gains the peers' last-heard ages and the silent-VTEP removals without breaking older readers or older daemons.</summary>
public class StatusJsonTests
{
    private static RouterStatus Status(IReadOnlyList<PeerStatus>? details, long removed) => new(
        "192.0.2.1:4789", ["192.0.2.2:4789", "192.0.2.3:4789"], true, 300, 12.5,
        [new NetworkStatus("blue", 4097, 1450, "198.18.0.0/24", [], [], [], ["192.0.2.2:4789"],
            new NetworkCounters(1, 2, 3, 4, 5, 6, 7, 8, new Dictionary<string, long>(), FdbUnansweredRemoved: removed))],
        new Dictionary<string, long>(), 0, PeerDetails: details, FdbUnansweredSeconds: 5);

    [Fact]
    public void Peers_stay_a_list_of_strings_and_their_last_heard_ages_come_beside_them()
    {
        string json = JsonSerializer.Serialize(Status([new("192.0.2.2:4789", 0.3), new("192.0.2.3:4789", null)], 2), ControlJson.Default.RouterStatus);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(["192.0.2.2:4789", "192.0.2.3:4789"], root.GetProperty("peers").EnumerateArray().Select(p => p.GetString()));
        var details = root.GetProperty("peer_details").EnumerateArray().ToList();
        Assert.Equal("192.0.2.2:4789", details[0].GetProperty("vtep").GetString());
        Assert.Equal(0.3, details[0].GetProperty("last_heard_seconds").GetDouble());
        Assert.False(details[1].TryGetProperty("last_heard_seconds", out _)); // never heard: left out, like every null
        Assert.Equal(5, root.GetProperty("fdb_unanswered_seconds").GetDouble());
        Assert.Equal(2, root.GetProperty("networks")[0].GetProperty("counters").GetProperty("fdb_unanswered_removed").GetInt64());

        var back = ControlJson.Read(json, ControlJson.Default.RouterStatus);
        Assert.Equal([new PeerStatus("192.0.2.2:4789", 0.3), new PeerStatus("192.0.2.3:4789", null)], back.PeerDetails);
        Assert.Equal(2, back.Networks[0].Counters.FdbUnansweredRemoved);
    }

    [Fact]
    public void A_status_from_a_daemon_without_the_new_fields_still_reads()
    {
        const string old = """
            { "underlay": "192.0.2.1:4789", "peers": ["192.0.2.2:4789"], "learning": true, "fdb_aging_seconds": 300,
              "uptime_seconds": 1, "drops": {}, "gc_allocated_bytes": 0, "queues": 1, "tap_io": "syscalls",
              "networks": [ { "name": "blue", "vni": 4097, "mtu": 1450, "subnet": "198.18.0.0/24", "endpoints": [], "fdb": [],
                "neighbors": [], "flood_list": [], "counters": { "tx_frames": 1, "tx_bytes": 2, "encapsulated_datagrams": 3,
                "rx_frames": 4, "rx_bytes": 5, "delivered_frames": 6, "proxy_arp_replies": 7, "flooded_frames": 8, "drops": {} } } ] }
            """;
        var s = ControlJson.Read(old, ControlJson.Default.RouterStatus);
        Assert.Null(s.PeerDetails);
        Assert.Equal(0, s.FdbUnansweredSeconds);
        Assert.Equal(0, s.Networks[0].Counters.FdbUnansweredRemoved);
        Assert.Equal(8, s.Networks[0].Counters.FloodedFrames);
        Assert.Equal(["192.0.2.2:4789"], s.Peers);
    }
}
