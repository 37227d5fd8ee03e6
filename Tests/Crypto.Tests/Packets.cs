using System.Buffers.Binary;
using System.Net;

namespace UserOverlay.Crypto.Tests;

/// <summary>Builds the packets the router will seal: UDP(4789) / VXLAN / Ethernet / IPv4 / ICMP echo, and outer IPv4 headers.</summary>
internal static class Packets
{
    public static readonly IPAddress HostA = IPAddress.Parse("192.0.2.1");
    public static readonly IPAddress HostB = IPAddress.Parse("192.0.2.2");
    public static readonly IPAddress HostC = IPAddress.Parse("192.0.2.3");

    /// <summary>UDP datagram to 4789 carrying VXLAN (VNI) / Ethernet / IPv4 198.18.0.1 → 198.18.0.2 / ICMP echo request with <paramref name="icmpData"/> bytes.</summary>
    public static byte[] VxlanIcmp(uint vni, ushort icmpSeq, int icmpData = 56)
    {
        int ipLen = 20 + 8 + icmpData;
        int frameLen = 14 + ipLen;
        byte[] d = new byte[8 + 8 + frameLen];
        Span<byte> s = d;
        // UDP
        BinaryPrimitives.WriteUInt16BigEndian(s, 49152);
        BinaryPrimitives.WriteUInt16BigEndian(s[2..], 4789);
        BinaryPrimitives.WriteUInt16BigEndian(s[4..], (ushort)d.Length);
        // checksum 0 (allowed for UDP over IPv4)
        // VXLAN
        s[8] = 0x08;
        BinaryPrimitives.WriteUInt32BigEndian(s[12..], vni << 8);
        // Ethernet
        Span<byte> eth = s[16..];
        Hex.Bytes("0200c6120002").CopyTo(eth);
        Hex.Bytes("0200c6120001").CopyTo(eth[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(eth[12..], 0x0800);
        // IPv4
        Span<byte> ip = eth[14..];
        WriteIPv4(ip, ipLen, 1, IPAddress.Parse("198.18.0.1"), IPAddress.Parse("198.18.0.2"));
        // ICMP echo
        Span<byte> icmp = ip[20..];
        icmp[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], 0x4f52);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], icmpSeq);
        for (int i = 0; i < icmpData; i++)
            icmp[8 + i] = (byte)(0x10 + i);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum(icmp[..(8 + icmpData)]));
        return d;
    }

    public static void WriteIPv4(Span<byte> ip, int totalLength, byte protocol, IPAddress src, IPAddress dst)
    {
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000);
        ip[8] = 64;
        ip[9] = protocol;
        src.TryWriteBytes(ip[12..], out _);
        dst.TryWriteBytes(ip[16..], out _);
        ip[10] = ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip[..20]));
    }

    public static ushort Checksum(ReadOnlySpan<byte> b)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < b.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
        if ((b.Length & 1) != 0)
            sum += (uint)b[^1] << 8;
        while (sum > 0xffff)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>Puts <paramref name="payload"/> into a fresh buffer at offset <paramref name="headroom"/> with <see cref="Esp.MaxTrailerLength"/> + <paramref name="extraTail"/> bytes after it.</summary>
    public static byte[] InBuffer(ReadOnlySpan<byte> payload, int headroom = 64, int extraTail = 0)
    {
        byte[] b = new byte[headroom + payload.Length + Esp.MaxTrailerLength + extraTail];
        payload.CopyTo(b.AsSpan(headroom));
        return b;
    }
}
