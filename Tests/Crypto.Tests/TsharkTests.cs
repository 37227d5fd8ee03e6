using UserOverlay.Testing.Common;

namespace UserOverlay.Crypto.Tests;

/// <summary>
/// tshark (Wireshark 4.0) decrypts what the library seals, given the SAs as <see cref="EspSaDescription.ToWiresharkUat"/>
/// prints them, verifies every ICV and shows the inner UDP / VXLAN / Ethernet / IPv4 / ICMP.
/// </summary>
public class TsharkTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uo-crypto-tshark-" + Guid.NewGuid().ToString("n"));

    public TsharkTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed record Row(string Spi, string Seq, string IcvGood, string IcvBad, string Vni, string IcmpType, string IcmpSeq);

    private static List<Row> Run(string tshark, string pcap, IEnumerable<EspSaDescription> sas)
    {
        var args = new List<string>
        {
            "-r", pcap,
            "-o", "esp.enable_encryption_decode:TRUE",
            "-o", "esp.enable_authentication_check:TRUE",
        };
        foreach (EspSaDescription sa in sas)
            args.AddRange(["-o", "uat:esp_sa:" + sa.ToWiresharkUat()]);
        args.AddRange(["-T", "fields", "-E", "separator=/t",
            "-e", "esp.spi", "-e", "esp.sequence", "-e", "esp.icv_good", "-e", "esp.icv_bad",
            "-e", "vxlan.vni", "-e", "icmp.type", "-e", "icmp.seq"]);
        CommandResult r = Shell.Run(tshark, args, TimeSpan.FromSeconds(60)).EnsureSuccess();
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t'))
            .Select(f => new Row(f[0], f[1], f[2], f[3], f[4], f[5], f[6]))
            .ToList();
    }

    [Theory]
    [InlineData(EspEncapsulation.Transport, 16)]
    [InlineData(EspEncapsulation.Transport, 32)]
    [InlineData(EspEncapsulation.Udp, 16)]
    [InlineData(EspEncapsulation.Udp, 32)]
    public void Tshark_decrypts_every_packet_verifies_every_icv_and_sees_the_inner_icmp(EspEncapsulation encap, int keyLength)
    {
        string tshark = Requires.Tool("tshark", "tshark");
        var options = new EspOptions { Encapsulation = encap };
        using var pair = new Pair(options, key: Enumerable.Range(0, keyLength).Select(i => (byte)(0xA0 + i)).ToArray());
        string pcap = Path.Combine(_dir, $"esp-{encap}-{keyLength}.pcap");
        int? port = encap == EspEncapsulation.Udp ? Esp.NatTraversalPort : null;
        var expected = new List<(uint Vni, int IcmpSeq)>();
        using (var w = new PcapWriter(pcap))
        {
            for (int i = 1; i <= 12; i++)
            {
                if (i == 7)
                {
                    // Rotate mid-capture: the rest is sealed with the next epoch's SA.
                    pair.A.Tick(Pair.T0 + options.RekeyInterval);
                    pair.B.Tick(Pair.T0 + options.RekeyInterval);
                }
                bool fromA = i % 3 != 0;
                uint vni = (uint)(4096 + i % 2);
                byte[] payload = Packets.VxlanIcmp(vni, (ushort)i, icmpData: 13 * i); // varied lengths → every padding size
                byte[] buf = Packets.InBuffer(payload);
                EspPeer peer = fromA ? pair.AtoB : pair.BtoA;
                Assert.Equal(EspSealStatus.Ok, peer.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int n));
                w.WriteIPv4(fromA ? Packets.HostA : Packets.HostB, fromA ? Packets.HostB : Packets.HostA, buf.AsSpan(48, n), port);
                expected.Add((vni, i));
            }
        }

        // The SAs as `useroverlay sa` would list them on host A at the capture's start: both directions, epochs e-1..e+1.
        var sas = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], pair.Keys.Keys, Pair.T0, options);
        List<Row> rows = Run(tshark, pcap, sas);

        Assert.Equal(expected.Count, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Row r = rows[i];
            Assert.True(r.IcvGood == "1" && r.IcvBad == "0", $"frame {i + 1}: ICV not verified by tshark ({r})");
            Assert.Equal(expected[i].Vni.ToString(), r.Vni);
            Assert.Equal("8", r.IcmpType);
            Assert.Equal(expected[i].IcmpSeq.ToString(), r.IcmpSeq);
        }
        Assert.True(rows.Select(r => r.Spi).Distinct().Count() >= 3, "expected SAs of two directions and two epochs");
    }

    [Fact]
    public void Tshark_flags_a_tampered_packet_so_the_check_is_real()
    {
        string tshark = Requires.Tool("tshark", "tshark");
        using var pair = new Pair();
        string pcap = Path.Combine(_dir, "tampered.pcap");
        using (var w = new PcapWriter(pcap))
        {
            byte[] payload = Packets.VxlanIcmp(4096, 1);
            byte[] buf = Packets.InBuffer(payload);
            Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(buf, 64, payload.Length, 17, out int n));
            buf[48 + n - 1] ^= 1;
            w.WriteIPv4(Packets.HostA, Packets.HostB, buf.AsSpan(48, n)); // protocol 50
        }
        var sas = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], pair.Keys.Keys, Pair.T0, new EspOptions { Encapsulation = EspEncapsulation.Transport });
        Row r = Assert.Single(Run(tshark, pcap, sas));
        Assert.Equal("1", r.IcvBad);
    }
}
