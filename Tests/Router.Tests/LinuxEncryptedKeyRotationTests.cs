using System.Text.RegularExpressions;
using UserOverlay.Crypto;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.EncryptedKeyRotationTests;

namespace UserOverlay.Router.Tests;

/// <summary>
/// Key ring rotation against the kernel: two routers in host namespaces (ESP in the default wire form, ESP-in-UDP), an
/// endpoint each, a ping every 20 ms between them while the control plane rotates both rings in swarm order: every echo is answered.
/// </summary>
[Collection(LinuxDeviceCollection.Name)]
public class LinuxEncryptedKeyRotationTests
{
    [Fact]
    public void Ping_across_two_routers_loses_nothing_while_their_key_rings_rotate()
    {
        Requires.Root();
        using var net = new TestNetwork("krot");
        string[] hosts = [net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24")];
        string c1 = net.AddNamespace("c1"), c2 = net.AddNamespace("c2");
        var keys = new[] { new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]), new MutableNetworkKeySource([new NetworkKeyRing(Key(1))]) };
        RouterOptions Options(int i, string ns) => new()
        {
            Underlay = InMemoryHosts.Vtep(i),
            Peers = [InMemoryHosts.Vtep(3 - i)],
            Networks = [EncryptedSwitchingTests.Secret],
            Endpoints = [InMemoryHosts.Endpoint("secret", ns, $"198.18.2.1{i}")],
            Encryption = new EncryptionOptions { Keys = keys[i - 1], Esp = new EspOptions { SequenceStore = new InMemorySequenceStore() } },
        };
        using var r1 = Netns.Namespaces.RunIn(hosts[0], () => OverlayRouter.Start(Options(1, c1)));
        using var r2 = Netns.Namespaces.RunIn(hosts[1], () => OverlayRouter.Start(Options(2, c2)));
        Assert.True(TestNetwork.Ping(c1, "198.18.2.12", count: 3, minReplies: 1), "encrypted path up before the rotation");

        // One ping every 20 ms for as long as the rotation takes; each reply is one line with its icmp_seq.
        var replies = new HashSet<int>();
        var ping = net.Start(c1, "ping", ["-n", "-i", "0.02", "-W", "1", "198.18.2.12"], line =>
        {
            var r = Regex.Match(line, @"icmp_seq=(\d+) ");
            if (r.Success) lock (replies) replies.Add(int.Parse(r.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        });
        Thread.Sleep(300);
        for (int g = 1; g <= 2; g++)
        {
            NetworkKey[] ring = g == 1 ? [Key(1), Key(2)] : [Key(1), Key(2), Key(3)];
            int oldPrimary = g == 1 ? 0 : 1, sas = 3 * ring.Length;
            Learn(r2, keys[1], new NetworkKeyRing(ring, oldPrimary), sas, newPrimary: false);
            Learn(r1, keys[0], new NetworkKeyRing(ring, oldPrimary), sas, newPrimary: false);
            Learn(r1, keys[0], new NetworkKeyRing(ring, oldPrimary + 1), sas, newPrimary: true);
            Learn(r2, keys[1], new NetworkKeyRing(ring, oldPrimary + 1), sas, newPrimary: true);
        }
        var last = new NetworkKeyRing([Key(2), Key(3)], 1);
        Learn(r1, keys[0], last, 6, newPrimary: false);
        Learn(r2, keys[1], last, 6, newPrimary: false);
        Thread.Sleep(500); // replies to the last echoes sent under the old rings
        ping.Kill();
        ping.WaitForExit();

        int[] got;
        lock (replies) got = [.. replies];
        int highest = got.Max();
        Assert.True(highest > 100, $"{highest} echoes sent during the rotation");
        Assert.Equal([], Enumerable.Range(1, highest).Except(got));
        foreach (var r in new[] { r1, r2 })
        {
            Assert.All(Esp(r).Dropped, d => Assert.Equal(0, d.Value));
            Assert.True(Esp(r).Rotations >= 2);
        }
    }
}
