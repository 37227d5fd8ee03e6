using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Control.Gossip;
using UserOverlay.Membership;
using UserOverlay.Membership.Security;
using UserOverlay.Router;
using DropReason = UserOverlay.Membership.DropReason;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Control.Tests;

/// <summary>
/// <see cref="GossipAgent.SetKeys"/>: the control plane rotates the gossip key of two running agents (loopback UDP and
/// TCP, the real transport) in memberlist's order while endpoints keep being published: every one arrives, no probe fails.
/// </summary>
public sealed class GossipKeyRotationTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static readonly GossipNetwork Green = new("green", 5000);

    private static byte[] K(int generation) => [.. Enumerable.Range(0, 32).Select(i => (byte)(generation * 13 + i))];

    private static async Task<(GossipAgent Agent, RecordingSink Sink)> Start(int i, Keyring? ring, string[] seeds)
    {
        var sink = new RecordingSink();
        var agent = await GossipAgent.StartAsync(new GossipAgentOptions
        {
            Membership = GossipAgentTests.Fast($"k{i}") with
            {
                BindAddress = IPAddress.Loopback,
                BindPort = 0,
                Keyring = ring,
                ProbeTimeout = TimeSpan.FromMilliseconds(150),
                TcpTimeout = TimeSpan.FromSeconds(2),
            },
            Seeds = seeds,
            Sink = sink,
            Vtep = Vtep(i),
            Networks = [Green],
        }, NullLoggerFactory.Instance, TestContext.Current.CancellationToken);
        return (agent, sink);
    }

    private static LocalEndpointInfo Endpoint(int host, int n) =>
        new("green", Green.Vni, MacAddress.FromIPv4(IPAddress.Parse($"198.18.{host}.{n}")), Ip($"198.18.{host}.{n}"), 16);

    [Fact]
    public async Task SetKeys_rotates_the_gossip_key_of_running_agents_without_a_lost_record_or_a_failed_probe()
    {
        var (a, sinkA) = await Start(1, new Keyring(K(1)), []);
        await using var _a = a;
        var (b, sinkB) = await Start(2, new Keyring(K(1)), [$"127.0.0.1:{a.Table.Memberlist.AdvertiseEndPoint.Port}"]);
        await using var _b = b;
        await Eventually.True(() => b.Joined && a.Table.Memberlist.NumMembers == 2, Wait, "b joined a over loopback");
        Memberlist ma = a.Table.Memberlist, mb = b.Table.Memberlist;
        long probes = ma.Stats.Probes + mb.Stats.Probes;

        int n = 0;
        async Task PublishAndSee()
        {
            n++;
            LocalEndpointInfo ea = Endpoint(1, n), eb = Endpoint(2, n);
            a.PublishEndpoint(ea);
            b.PublishEndpoint(eb);
            await Eventually.True(() => sinkB.Endpoints.ContainsKey(("green", ea.Mac)) && sinkA.Endpoints.ContainsKey(("green", eb.Mac)), Wait,
                $"endpoints #{n} reach the other host");
            await Task.Delay(200); // a probe round or so under these keys
        }

        await PublishAndSee();
        for (int g = 1; g <= 2; g++)
        {
            byte[] old = K(g), next = K(g + 1);
            b.SetKeys(old, [next]);   // accept the new key everywhere first
            await PublishAndSee();
            a.SetKeys(old, [next]);
            await PublishAndSee();
            a.SetKeys(next, [old]);   // then encrypt with it
            await PublishAndSee();
            b.SetKeys(next, [old]);
            await PublishAndSee();
            a.SetKeys(next);          // then forget the old one
            await PublishAndSee();
            b.SetKeys(next);
            await PublishAndSee();
        }
        await mb.PushPullAsync(ma.AdvertiseEndPoint, TestContext.Current.CancellationToken);

        Assert.Equal(2 * n, sinkA.Endpoints.Count + sinkB.Endpoints.Count);
        Assert.True(ma.Stats.Probes + mb.Stats.Probes - probes >= 10, "probes ran during the rotation");
        Assert.Equal(0, ma.Stats.ProbesFailed + mb.Stats.ProbesFailed);
        foreach (Memberlist m in new[] { ma, mb })
        {
            Assert.Equal(0, m.Drops[DropReason.DecryptionFailed]);
            Assert.Equal(0, m.Drops[DropReason.NotEncrypted]);
        }
        Assert.True(ma.Options.Keyring!.PrimaryKey.Span.SequenceEqual(K(3)));
        Assert.Equal(1, mb.Options.Keyring!.Count);

        // A key the other host never got: its messages are dropped there (so the test above could fail).
        a.SetKeys(K(9), [K(3)]);
        LocalEndpointInfo lost = Endpoint(1, 99);
        a.PublishEndpoint(lost);
        await Eventually.True(() => mb.Drops[DropReason.DecryptionFailed] >= 1, Wait, "b cannot decrypt a's gossip");
        Assert.False(sinkB.Endpoints.ContainsKey(("green", lost.Mac)));
    }

    [Fact]
    public async Task SetKeys_refuses_an_agent_without_keys_and_bad_keys()
    {
        var (plain, _) = await Start(3, null, []);
        await using var _p = plain;
        Assert.Contains("without encryption keys", Assert.Throws<InvalidOperationException>(() => plain.SetKeys(K(1))).Message);

        var ring = new Keyring(K(1));
        var (enc, _) = await Start(4, ring, []);
        await using var _e = enc;
        Assert.Contains("16, 24 or 32", Assert.Throws<ArgumentException>(() => enc.SetKeys(K(2), [new byte[3]])).Message);
        Assert.True(ring.PrimaryKey.Span.SequenceEqual(K(1)));
        Assert.Equal(1, ring.Count);
    }
}
