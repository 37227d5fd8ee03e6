using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// ESP-in-UDP (RFC 3948, port 4500), the default wire form (`esp: udp`; the configuration here names no form): two
/// hosts, an encrypted network; TCP super-frames leave as UDP GSO sends of equal-size ESP packets and come back
/// coalesced (UDP GRO).
/// </summary>
public sealed class EncryptedUdpTests
{
    [Fact]
    public async Task Esp_in_udp_carries_20_MB_intact_and_the_wire_is_only_udp_4500()
    {
        string tshark = Requires.Tool("tshark", "tshark");
        string tcpdump = Requires.Tool("tcpdump", "tcpdump");
        using var net = new TestNetwork("espu");
        string state = Directory.CreateTempSubdirectory("uo-espu-").FullName;
        var ns = new Dictionary<string, string>();
        for (int i = 1; i <= 2; i++) { ns[$"h{i}"] = net.AddHost($"h{i}", $"192.0.2.{i}/24"); ns[$"s{i}"] = net.AddNamespace($"s{i}"); }
        string Config(int i) => $$"""
            underlay: { address: 192.0.2.{{i}} }
            peers: [192.0.2.{{3 - i}}]
            encryption: { state_dir: {{state}} }
            networks:
              - { name: secret, vni: 5000, subnet: 198.18.2.0/24, encrypted: true, key: "{{EncryptedOverlayFixture.Key}}" }
            endpoints:
              - { network: secret, netns: {{ns[$"s{i}"]}}, address: 198.18.2.1{{i}}/24 }
            """;
        using var r1 = new RouterProcess(net, ns["h1"], $"{net.Prefix}h1", Config(1));
        using var r2 = new RouterProcess(net, ns["h2"], $"{net.Prefix}h2", Config(2));
        try
        {
            await Task.WhenAll(r1.StartAsync(), r2.StartAsync());
            Assert.True(TestNetwork.Ping(ns["s1"], "198.18.2.12", count: 3, minReplies: 2));
            Assert.Equal(1408, (await r1.StatusAsync()).Networks[0].Mtu); // the default MTU follows the default wire form

            string pcap = Path.Combine(Path.GetTempPath(), $"{net.Prefix}espu.pcap");
            var cap = net.Start(ns["h1"], tcpdump, ["-i", "eth0", "-U", "-c", "200", "-w", pcap, "udp"]);
            await Task.Delay(1000, TestContext.Current.CancellationToken);
            var (sent, received) = await Tcp.Transfer(ns["s2"], "198.18.2.12", ns["s1"], 20 << 20);
            Assert.Equal(sent, received);
            await cap.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);

            var ports = Shell.Run(tshark, ["-r", pcap, "-T", "fields", "-e", "udp.dstport", "-e", "esp.spi"]).EnsureSuccess().StdOut
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(ports.Length >= 100, $"only {ports.Length} datagrams captured");
            Assert.All(ports, p => Assert.StartsWith("4500\t0x", p)); // every datagram is ESP-in-UDP to 4500: no VXLAN in clear

            // tshark decrypts the capture with the SAs `useroverlay sa` derives from the configuration, checking every ICV.
            var sas = ControlJson.Read(r1.Cli("sa", "--config", r1.ConfigPath, "--json").EnsureSuccess().StdOut, ControlJson.Default.SaResponse).Sas;
            Assert.All(sas, d => Assert.Equal(UserOverlay.Crypto.EspEncapsulation.Udp, d.Encapsulation));
            var args = new List<string> { "-r", pcap, "-Y", "esp", "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE" };
            foreach (var d in sas) args.AddRange(["-o", "uat:esp_sa:" + d.ToWiresharkUat()]);
            args.AddRange(["-T", "fields", "-E", "separator=,", "-e", "frame.len", "-e", "esp.icv_good", "-e", "vxlan.vni", "-e", "tcp.srcport"]);
            var rows = Shell.Run(tshark, args).EnsureSuccess().StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            // h1 sends the data: tcpdump sees its UDP GSO sends whole, before the kernel cuts them into ESP packets, so
            // only what fits one Ethernet frame (the received ACKs' ESP, and short sends) is one ESP packet tshark can open.
            var single = rows.Where(r => int.Parse(r.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture) <= 1514).ToList();
            Assert.True(single.Count >= 20, $"tshark saw only {single.Count} single ESP packets of {rows.Length}");
            Assert.All(single, r => Assert.Matches(@"^\d+,(1|True),5000,\d+$", r)); // ICV good, VNI 5000, a TCP segment inside
            File.Delete(pcap);

            var s = await r2.StatusAsync();
            Assert.Equal("udp", s.Esp!.Encapsulation);
            Assert.Equal(0, s.Esp.Dropped.Values.Sum());
        }
        finally
        {
            try { Directory.Delete(state, recursive: true); } catch (IOException) { }
        }
    }
}
