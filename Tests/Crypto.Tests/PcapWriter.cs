using System.Buffers.Binary;
using System.Net;

namespace UserOverlay.Crypto.Tests;

/// <summary>A minimal pcap writer (LINKTYPE_ETHERNET), enough for tshark.</summary>
internal sealed class PcapWriter : IDisposable
{
    private readonly FileStream _file;
    private uint _seconds = 1767225600;

    public PcapWriter(string path)
    {
        _file = File.Create(path);
        Span<byte> h = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0xa1b2c3d4);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], 65535);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        _file.Write(h);
    }

    /// <summary>Writes Ethernet / IPv4 (protocol 50, or UDP to <paramref name="udpPort"/> if given) / <paramref name="esp"/>.</summary>
    public void WriteIPv4(IPAddress src, IPAddress dst, ReadOnlySpan<byte> esp, int? udpPort = null)
    {
        int udp = udpPort is null ? 0 : 8;
        int ipLen = 20 + udp + esp.Length;
        byte[] frame = new byte[14 + ipLen];
        Hex.Bytes("0200c0000202").CopyTo(frame, 0);
        Hex.Bytes("0200c0000201").CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        Packets.WriteIPv4(frame.AsSpan(14), ipLen, udpPort is null ? (byte)Esp.IpProtocol : (byte)17, src, dst);
        if (udpPort is int port)
        {
            Span<byte> u = frame.AsSpan(34);
            BinaryPrimitives.WriteUInt16BigEndian(u, (ushort)port);
            BinaryPrimitives.WriteUInt16BigEndian(u[2..], (ushort)port);
            BinaryPrimitives.WriteUInt16BigEndian(u[4..], (ushort)(8 + esp.Length));
        }
        esp.CopyTo(frame.AsSpan(14 + 20 + udp));
        Span<byte> r = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(r, _seconds++);
        BinaryPrimitives.WriteUInt32LittleEndian(r[8..], (uint)frame.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(r[12..], (uint)frame.Length);
        _file.Write(r);
        _file.Write(frame);
    }

    public void Dispose() => _file.Dispose();
}
