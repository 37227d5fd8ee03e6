using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using UserOverlay.Crypto;
using UserOverlay.Router.Testing;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>
/// Two routers (real pipeline threads and ESP, in-memory TAP and underlay) whose network key rings the control plane
/// changes at run time through <see cref="MutableNetworkKeySource"/>, while frames flow both ways all the time. Each
/// router picks a change up on its own ESP timer tick (every 500 ms), so the hosts switch at different moments.
/// </summary>
public class EncryptedKeyRotationTests : InMemoryHostsTest
{
    private static readonly MacAddress S1 = MacAddress.FromIPv4(IPAddress.Parse("198.18.2.11"));
    private static readonly MacAddress S2 = MacAddress.FromIPv4(IPAddress.Parse("198.18.2.12"));

    internal static NetworkKey Key(int generation) =>
        new("secret", Enumerable.Range(0, 32).Select(i => (byte)(generation * 29 + i)).ToArray());

    private (OverlayRouter R, InMemoryPlatform P) Host(int i, int peer, MutableNetworkKeySource keys) =>
        Hosts.Add(i, [peer], [EncryptedSwitchingTests.Secret], [Endpoint("secret", $"s{i}", $"198.18.2.1{i}")], o => o with
        {
            Encryption = new EncryptionOptions { Keys = keys, Esp = new EspOptions { SequenceStore = new InMemorySequenceStore() } },
        });

    /// <summary>Frames numbered by UDP source port, injected at each end every millisecond or so, and collected at the other.</summary>
    private sealed class Flow : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _tasks;
        public readonly ConcurrentDictionary<int, bool> AtB = new(), AtA = new();
        public int Sent;

        public Flow(InMemoryPlatform a, InMemoryPlatform b)
        {
            _tasks =
            [
                Task.Run(() =>
                {
                    for (int n = 1; !_stop.IsCancellationRequested && n < ushort.MaxValue; n++)
                    {
                        a.Tap("s1").Inject(Packets.Udp4(S1, S2, "198.18.2.11", "198.18.2.12", 64, srcPort: (ushort)n));
                        b.Tap("s2").Inject(Packets.Udp4(S2, S1, "198.18.2.12", "198.18.2.11", 64, srcPort: (ushort)n));
                        Volatile.Write(ref Sent, n);
                        Thread.Sleep(1);
                    }
                }),
                Task.Run(() => Collect(b.Tap("s2"), AtB)),
                Task.Run(() => Collect(a.Tap("s1"), AtA)),
            ];
        }

        private void Collect(ChannelTap tap, ConcurrentDictionary<int, bool> into)
        {
            while (!_stop.IsCancellationRequested || tap.WrittenCount > 0)
            {
                if (tap.WaitTake(TimeSpan.FromMilliseconds(50)) is { } f && f.Length >= 36 && f[23] == 17)
                    into[BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(34))] = true;
            }
        }

        public int Missing(ConcurrentDictionary<int, bool> at) => Enumerable.Range(1, Sent).Count(n => !at.ContainsKey(n));

        public void Stop()
        {
            _stop.Cancel();
            Task.WaitAll(_tasks);
        }

        public void Dispose()
        {
            if (!_stop.IsCancellationRequested) Stop();
            _stop.Dispose();
        }
    }

    private static void Resolve(InMemoryPlatform a, InMemoryPlatform b)
    {
        a.Tap("s1").Inject(Packets.ArpRequest(S1, "198.18.2.11", "198.18.2.12"));
        Assert.NotNull(b.Tap("s2").WaitTake(Wait));
        b.Tap("s2").Inject(Packets.ArpReply(S2, "198.18.2.12", S1, "198.18.2.11"));
        Assert.NotNull(a.Tap("s1").WaitTake(Wait));
    }

    internal static EspStatusInfo Esp(OverlayRouter r) => r.GetStatus().Esp!;

    /// <summary>Hands <paramref name="r"/> a new ring and waits until its ESP tick has applied it.</summary>
    internal static void Learn(OverlayRouter r, MutableNetworkKeySource keys, NetworkKeyRing ring, int inboundSas, bool newPrimary)
    {
        long rotations = Esp(r).Rotations;
        keys.Set(ring);
        Assert.True(SpinWait.SpinUntil(() => Esp(r).InboundSas == inboundSas && (!newPrimary || Esp(r).Rotations > rotations), TimeSpan.FromSeconds(10)),
            $"the router applies ring {ring} at its next tick");
        Thread.Sleep(100); // frames keep flowing between the steps
    }

    [Fact]
    public void A_ring_rotated_in_swarm_order_while_frames_flow_loses_none()
    {
        var keysA = new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]);
        var keysB = new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]);
        var (ra, a) = Host(1, 2, keysA);
        var (rb, b) = Host(2, 1, keysB);
        Resolve(a, b);
        using var flow = new Flow(a, b);
        Thread.Sleep(100);

        for (int g = 1; g <= 2; g++)
        {
            NetworkKey[] ring = g == 1 ? [Key(1), Key(2)] : [Key(1), Key(2), Key(3)];
            int oldPrimary = g == 1 ? 0 : 1, sas = 3 * ring.Length;
            Learn(rb, keysB, new NetworkKeyRing(ring, oldPrimary), sas, newPrimary: false);     // B accepts the new key
            Learn(ra, keysA, new NetworkKeyRing(ring, oldPrimary), sas, newPrimary: false);     // A too
            Learn(ra, keysA, new NetworkKeyRing(ring, oldPrimary + 1), sas, newPrimary: true);  // A seals with it
            Learn(rb, keysB, new NetworkKeyRing(ring, oldPrimary + 1), sas, newPrimary: true);  // B too
        }
        var last = new NetworkKeyRing([Key(2), Key(3)], 1);                                    // k1 leaves
        Learn(ra, keysA, last, 6, newPrimary: false);
        Learn(rb, keysB, last, 6, newPrimary: false);
        flow.Stop();

        SpinWait.SpinUntil(() => flow.Missing(flow.AtB) == 0 && flow.Missing(flow.AtA) == 0, Wait);
        Assert.True(flow.Sent > 300, $"{flow.Sent} frames each way");
        Assert.Equal(0, flow.Missing(flow.AtB));
        Assert.Equal(0, flow.Missing(flow.AtA));
        foreach (var r in new[] { ra, rb })
        {
            Assert.All(Esp(r).Dropped, d => Assert.Equal(0, d.Value));
            Assert.All(Esp(r).NotSent, d => Assert.Equal(0, d.Value));
        }
    }

    [Fact]
    public void A_primary_switched_before_the_peer_has_the_key_loses_frames()
    {
        var keysA = new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]);
        var keysB = new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]);
        var (ra, a) = Host(1, 2, keysA);
        var (rb, b) = Host(2, 1, keysB);
        Resolve(a, b);
        using var flow = new Flow(a, b);
        Learn(ra, keysA, new NetworkKeyRing([Key(1), Key(2)], 1), 6, newPrimary: true);
        Assert.True(SpinWait.SpinUntil(() => rb.GetStatus().GlobalDrop("esp_unknown_spi") > 0, Wait), "B drops A's frames under k2");
        flow.Stop();
        Assert.True(flow.Missing(flow.AtB) > 0);
    }
}
