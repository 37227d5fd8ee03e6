using System.Runtime.InteropServices;
using PacketDotNet;
using SharpPcap;
using SharpPcap.LibPcap;

namespace UserOverlay.Cli.Client;

/// <summary>
/// SharpPcap's pcap writer (<see cref="CaptureFileWriterDevice"/>, libpcap's pcap_dump) with a flush after each frame,
/// so a reader at the other end of a pipe sees every frame as it comes. The file "-" is standard output: libpcap's
/// pcap_dump_open writes to stdout for that name, through C stdio, whose buffer SharpPcap never flushes (its writer
/// has no flush) — hence <see cref="Flush"/>, libpcap's pcap_dump_flush on the writer's own dump handle.
/// </summary>
internal sealed partial class PcapWriter : CaptureFileWriterDevice
{
    public PcapWriter(string path) : base(path, FileMode.Create) { }

    /// <summary>Opens the file with the link type and snap length of the capture.</summary>
    public void Open(int linkType, int snapLength) =>
        Open(new DeviceConfiguration { LinkLayerType = (LinkLayers)linkType, Snaplen = snapLength, TimestampResolution = TimestampResolution.Microsecond });

    /// <summary>Writes one frame.</summary>
    public void Write(ReadOnlySpan<byte> frame, int originalLength, long unixNanoseconds)
    {
        long us = unixNanoseconds / 1000;
        var header = new PcapHeader((uint)(us / 1_000_000), (uint)(us % 1_000_000), (uint)originalLength, (uint)frame.Length);
        Write(frame, ref header);
    }

    /// <summary>Pushes what libpcap buffered to the file or pipe; false when that fails (the reader is gone: EPIPE).</summary>
    public bool Flush() => m_pcapDumpHandle != IntPtr.Zero && pcap_dump_flush(m_pcapDumpHandle) == 0;

    // The same library SharpPcap resolves (it registers its resolver for "wpcap"; libpcap is libpcap.so.0.8 on Debian).
    [LibraryImport("libpcap.so.0.8")]
    private static partial int pcap_dump_flush(IntPtr dumper);
}
