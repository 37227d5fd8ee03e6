using System.Buffers.Binary;
using System.Net;
using ARSoft.Tools.Net.Dns;
using PacketDotNet;
using UserOverlay.Router;
using UserOverlay.Router.Testing;

namespace UserOverlay.Dns.Tests;

/// <summary>
/// One router on in-memory doubles (real pipeline threads, ChannelTap endpoints) with a DNS responder as its gateway
/// handler: queries go in as frames on an endpoint's TAP, answers come out of it, as on a kernel TAP.
/// </summary>
public sealed class DnsHost : IDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    public static readonly MacAddress BlueGatewayMac = Constants.GatewayMac(4097);
    public static readonly MacAddress RedGatewayMac = Constants.GatewayMac(4098);

    public static uint Ip(string dotted) => Ipv4Prefix.TryParseAddress(dotted, out uint a) ? a : throw new ArgumentException(dotted);

    public static readonly NetworkOptions Blue = new() { Name = "blue", Vni = 4097, Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 24), Gateway = Ip("198.18.0.1") };
    public static readonly NetworkOptions Red = new() { Name = "red", Vni = 4098, Subnet = new Ipv4Prefix(Ip("198.18.1.0"), 24), Gateway = Ip("198.18.1.1"), Internal = true };

    public static EndpointOptions Endpoint(string network, string netns, string address) =>
        new() { Network = network, Netns = netns, Address = Ip(address), PrefixLength = 24 };

    public OverlayRouter Router { get; }
    public InMemoryPlatform Platform { get; }
    public NameRegistry Names { get; } = new();
    public DnsResponder Responder { get; }

    public DnsHost(EndpointOptions[] endpoints, DnsResponderOptions? options = null)
    {
        Platform = new InMemoryPlatform(new InMemoryUnderlayNetwork());
        Router = OverlayRouter.Start(new RouterOptions
        {
            Underlay = new VtepEndpoint(Ip("192.0.2.1"), 4789),
            Networks = [Blue, Red],
            Endpoints = endpoints,
        }, Platform);
        Responder = new DnsResponder(Names, Router.InjectFrame, options);
        foreach (var n in new[] { Blue, Red }) Responder.SetNetwork(n.Name, n.Subnet.Network, n.Subnet.Length, n.Internal);
        Router.GatewayHandler = Responder;
    }

    public ChannelTap Tap(string netns) => Platform.Tap(netns);

    /// <summary>The MAC the router gives an endpoint (derived from its address).</summary>
    public static MacAddress MacOf(string address) => MacAddress.FromIPv4(IPAddress.Parse(address));

    /// <summary>A DNS query message, written by hand (so malformed variants can be made from it).</summary>
    public static byte[] Query(ushort id, string name, RecordType type = RecordType.A, bool edns = false, ushort ednsSize = 1232)
    {
        var b = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, (byte)(edns ? 1 : 0) };
        foreach (string label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            b.Add((byte)label.Length);
            b.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        b.Add(0);
        b.Add((byte)((ushort)type >> 8)); b.Add((byte)type);
        b.Add(0); b.Add(1);
        if (edns) b.AddRange([0, 0, 41, (byte)(ednsSize >> 8), (byte)ednsSize, 0, 0, 0, 0, 0, 0]);
        return [.. b];
    }

    /// <summary>An Ethernet/IPv4/UDP frame from <paramref name="srcIp"/> to the gateway's port 53 carrying <paramref name="payload"/>.</summary>
    public static byte[] UdpFrame(string srcIp, string gateway, MacAddress gatewayMac, ushort srcPort, byte[] payload, ushort dstPort = 53)
    {
        var udp = new UdpPacket(srcPort, dstPort) { PayloadData = payload };
        var ip = new IPv4Packet(IPAddress.Parse(srcIp), IPAddress.Parse(gateway)) { PayloadPacket = udp, TimeToLive = 64, Protocol = PacketDotNet.ProtocolType.Udp };
        var eth = new EthernetPacket(Phys(MacOf(srcIp)), Phys(gatewayMac), EthernetType.IPv4) { PayloadPacket = ip };
        ip.UpdateCalculatedValues();
        udp.UpdateCalculatedValues();
        ip.UpdateIPChecksum();
        udp.UpdateUdpChecksum();
        return eth.Bytes;
    }

    public static System.Net.NetworkInformation.PhysicalAddress Phys(MacAddress m) =>
        System.Net.NetworkInformation.PhysicalAddress.Parse(m.ToString().Replace(':', '-').ToUpperInvariant());

    /// <summary>Sends <paramref name="query"/> from the endpoint at <paramref name="srcIp"/> of <paramref name="netns"/> and returns the answer's UDP datagram (null: none).</summary>
    public UdpPacket? Ask(string netns, string srcIp, byte[] query, NetworkOptions? network = null, ushort srcPort = 40000)
    {
        var n = network ?? Blue;
        Tap(netns).Inject(UdpFrame(srcIp, VtepEndpoint.FormatAddress(n.Gateway!.Value), Constants.GatewayMac(n.Vni), srcPort, query));
        var reply = Tap(netns).WaitTake(Wait);
        if (reply is null) return null;
        var eth = Packet.ParsePacket(LinkLayers.Ethernet, reply).Extract<EthernetPacket>();
        Assert.Equal(Phys(Constants.GatewayMac(n.Vni)), eth.SourceHardwareAddress);
        Assert.Equal(Phys(MacOf(srcIp)), eth.DestinationHardwareAddress);
        var ip = eth.Extract<IPv4Packet>();
        Assert.True(ip.ValidIPChecksum, "IPv4 header checksum");
        Assert.Equal(VtepEndpoint.FormatAddress(n.Gateway!.Value), ip.SourceAddress.ToString());
        Assert.Equal(srcIp, ip.DestinationAddress.ToString());
        var udp = ip.Extract<UdpPacket>();
        Assert.True(udp.ValidUdpChecksum, "UDP checksum");
        Assert.Equal(53, udp.SourcePort);
        Assert.Equal(srcPort, udp.DestinationPort);
        return udp;
    }

    /// <summary>Asks and parses the answer with the library (a real parser, not ours).</summary>
    public DnsMessage AskDns(string netns, string srcIp, byte[] query, NetworkOptions? network = null)
    {
        var udp = Ask(netns, srcIp, query, network);
        Assert.NotNull(udp);
        var m = DnsMessage.Parse(new ArraySegment<byte>(udp.PayloadData));
        Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(query), m.TransactionID);
        Assert.False(m.IsQuery);
        return m;
    }

    public void Dispose()
    {
        Router.GatewayHandler = null;
        Responder.Dispose();
        Router.Dispose();
    }
}
