using System.Buffers.Binary;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The body of <c>GET /v1/capture</c>: a stream of records, each a 24-byte header and its data (little-endian):
/// <c>kind u8 | direction u8 (1 in, 2 out) | 0 u16 | length u32 | original length u32 | 0 u32 | time i64 (Unix ns)</c>.
/// Kinds: <see cref="Frame"/> (data: the frame), <see cref="Stats"/> (data: captured i64, dropped i64, sent every
/// quarter second and last), <see cref="Ended"/> (the same data; the capture ended on the router's side: its network
/// was removed or the router stopped). The response headers <see cref="LinkTypeHeader"/> and
/// <see cref="SnapLengthHeader"/> give the pcap link type and the snap length. A private format between the daemon
/// and <c>useroverlay capture</c>, which writes pcap.
/// </summary>
internal static class CaptureStream
{
    public const int HeaderLength = 24;
    public const byte Frame = 1, Stats = 2, Ended = 3;
    public const string LinkTypeHeader = "X-UserOverlay-LinkType";
    public const string SnapLengthHeader = "X-UserOverlay-SnapLength";
    public const string ContentType = "application/vnd.useroverlay.capture";

    public static void WriteHeader(Span<byte> b, byte kind, byte direction, int length, int original, long unixNs)
    {
        b[..HeaderLength].Clear();
        b[0] = kind;
        b[1] = direction;
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], length);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], original);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], unixNs);
    }

    /// <summary>A stats or ended record (header and its 16 bytes) at <paramref name="b"/>; returns its length.</summary>
    public static int WriteCounts(Span<byte> b, byte kind, long captured, long dropped)
    {
        WriteHeader(b, kind, 0, 16, 16, 0);
        BinaryPrimitives.WriteInt64LittleEndian(b[HeaderLength..], captured);
        BinaryPrimitives.WriteInt64LittleEndian(b[(HeaderLength + 8)..], dropped);
        return HeaderLength + 16;
    }
}
