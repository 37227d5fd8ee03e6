using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using UserOverlay.Router;

namespace UserOverlay.Router.Tests;

/// <summary>Test frames built (and parsed) with PacketDotNet, so tests read as protocol, not bytes.</summary>
public static class Packets
{
    public static PhysicalAddress Phys(MacAddress mac)
    {
        var b = new byte[6];
        mac.Write(b);
        return new PhysicalAddress(b);
    }

    public static MacAddress Mac(string s) => MacAddress.Parse(s);

    /// <summary>An ARP request "who has <paramref name="targetIp"/>? tell <paramref name="senderIp"/>", broadcast.</summary>
    public static byte[] ArpRequest(MacAddress senderMac, string senderIp, string targetIp)
    {
        var eth = new EthernetPacket(Phys(senderMac), PhysicalAddress.Parse("FF-FF-FF-FF-FF-FF"), EthernetType.Arp);
        eth.PayloadPacket = new ArpPacket(ArpOperation.Request, PhysicalAddress.Parse("00-00-00-00-00-00"), IPAddress.Parse(targetIp),
            Phys(senderMac), IPAddress.Parse(senderIp));
        return eth.Bytes;
    }

    /// <summary>An ARP reply "<paramref name="senderIp"/> is at <paramref name="senderMac"/>" to the requester.</summary>
    public static byte[] ArpReply(MacAddress senderMac, string senderIp, MacAddress targetMac, string targetIp)
    {
        var eth = new EthernetPacket(Phys(senderMac), Phys(targetMac), EthernetType.Arp);
        eth.PayloadPacket = new ArpPacket(ArpOperation.Response, Phys(targetMac), IPAddress.Parse(targetIp), Phys(senderMac), IPAddress.Parse(senderIp));
        return eth.Bytes;
    }

    /// <summary>An Ethernet/IPv4/UDP frame with <paramref name="payloadLength"/> bytes of payload (a counting pattern).</summary>
    public static byte[] Udp4(MacAddress src, MacAddress dst, string srcIp, string dstIp, int payloadLength = 32, ushort srcPort = 40000, ushort dstPort = 5000)
    {
        var udp = new UdpPacket(srcPort, dstPort) { PayloadData = Enumerable.Range(0, payloadLength).Select(i => (byte)i).ToArray() };
        var ip = new IPv4Packet(IPAddress.Parse(srcIp), IPAddress.Parse(dstIp)) { PayloadPacket = udp, TimeToLive = 64 };
        var eth = new EthernetPacket(Phys(src), Phys(dst), EthernetType.IPv4) { PayloadPacket = ip };
        udp.UpdateCalculatedValues();
        ip.UpdateCalculatedValues();
        udp.UpdateUdpChecksum();
        ip.UpdateIPChecksum();
        return eth.Bytes;
    }

    /// <summary>Parses an Ethernet frame.</summary>
    public static EthernetPacket Parse(byte[] frame) => (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);

    /// <summary>Builds a VXLAN payload (header + inner frame) for <paramref name="vni"/>, with raw flag and reserved bytes when given.</summary>
    public static byte[] Vxlan(uint vni, byte[] inner, byte flags = 0x08, byte reserved = 0)
    {
        var b = new byte[8 + inner.Length];
        b[0] = flags;
        b[1] = b[2] = b[3] = reserved;
        b[4] = (byte)(vni >> 16);
        b[5] = (byte)(vni >> 8);
        b[6] = (byte)vni;
        b[7] = reserved;
        inner.CopyTo(b, 8);
        return b;
    }

    /// <summary>The VNI of a VXLAN payload.</summary>
    public static uint VniOf(byte[] vxlan) => (uint)(vxlan[4] << 16 | vxlan[5] << 8 | vxlan[6]);
}
