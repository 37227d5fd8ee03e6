using System.Runtime.InteropServices;
using UserOverlay.Router.Offload;

namespace UserOverlay.Router;

/// <summary>
/// The overlay edge: an endpoint's virtual Ethernet port. Implementations: <c>LinuxTap</c>
/// (a TAP device in the endpoint's network namespace) and <see cref="Testing.ChannelTap"/>.
/// Contract (wireguard-go's tun.Device, adapted): reads are batch-first and non-blocking, so one
/// pipeline thread can drain many devices after one readiness wait; buffers are caller-owned.
/// Read is called by one thread at a time; Write may be called from any pipeline thread.
/// </summary>
public interface ITapDevice : IDisposable
{
    /// <summary>Interface name as seen in the endpoint's namespace (e.g. eth0).</summary>
    string Name { get; }

    /// <summary>
    /// Reads up to <c>bufs.Length</c> frames without blocking. Frame i is written at
    /// <c>bufs[i].Span[offset..]</c>, its length to <c>sizes[i]</c> and its offload metadata to
    /// <c>offloads[i]</c> (default for a plain frame; a device with <see cref="SupportsOffload"/> may
    /// return TCP super-frames of up to 64 KB and frames with a partial checksum, so its buffers must
    /// hold <see cref="Constants.GsoBufferSize"/> bytes). The <paramref name="offset"/> must leave at
    /// least <see cref="Constants.Headroom"/> bytes in front. Returns the number of frames read, 0 when
    /// none is ready; fewer than <c>bufs.Length</c> means the device had no more (the worker then stops
    /// asking until epoll reports it readable again).
    /// </summary>
    int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<OffloadInfo> offloads, int offset);

    /// <summary>Writes one Ethernet frame (checksums complete) to the endpoint. Returns false when the device refused it.</summary>
    bool Write(ReadOnlySpan<byte> frame);

    /// <summary>
    /// True when the device exchanges offload metadata: it may return super-frames from <see cref="Read"/>
    /// and accepts them in <see cref="WriteOffload"/> (a TAP with IFF_VNET_HDR and TSO enabled).
    /// </summary>
    bool SupportsOffload { get; }

    /// <summary>
    /// True when <see cref="WriteOffload"/> also takes UDP super-frames (<see cref="GsoKind.UdpL4"/>): a TAP on a
    /// kernel that knows UDP segmentation offload (Linux 6.2+). Reads never return them.
    /// </summary>
    bool SupportsUdpSegmentation => false;

    /// <summary>Writes a frame with offload metadata (a coalesced TCP or UDP super-frame). Only when <see cref="SupportsOffload"/>.</summary>
    bool WriteOffload(ReadOnlySpan<byte> frame, in OffloadInfo info);

    /// <summary>
    /// A file descriptor that polls readable (epoll, level-triggered) while <see cref="Read"/> would
    /// return frames. For a TAP it is the TAP itself; a test double uses an eventfd.
    /// </summary>
    SafeHandle ReadinessHandle { get; }

    /// <summary>Number of queues (a multi-queue TAP: one per pipeline worker). 1 for a plain device.</summary>
    int QueueCount => 1;

    /// <summary>
    /// Queue <paramref name="index"/>'s reading side: worker <c>index</c> reads and polls it (<see cref="Read"/>,
    /// <see cref="ReadinessHandle"/>). Queue 0 is the device itself. Writes may go through any queue.
    /// </summary>
    ITapDevice Queue(int index) => this;
}
