using System.Runtime.InteropServices;
using UserOverlay.Router.Offload;

namespace UserOverlay.Router;

/// <summary>
/// The overlay edge: an endpoint's virtual Ethernet port. Implementations: <c>LinuxTap</c>
/// (a TAP device in the endpoint's network namespace) and <see cref="Testing.ChannelTap"/>.
/// Contract (wireguard-go's tun.Device, adapted): reads are batch-first and non-blocking, so one
/// pipeline thread can drain many devices after one readiness wait; buffers are caller-owned.
/// Read is called by one thread at a time; Write may be called from any pipeline thread.
/// Optional capabilities: a device the router's workers may write through their io_uring implements the internal
/// <c>IRingWritableTap</c> (the kernel TAP does; the test doubles do not, and take the same worker path with plain writes).
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

    /// <summary>
    /// The read a pipeline worker makes, once per batch, for every device: <see cref="Read(ReadOnlySpan{PacketBuffer}, Span{int}, Span{OffloadInfo}, int)"/>
    /// with the worker's <paramref name="context"/> (its round, and its io_uring), reporting in <paramref name="more"/>
    /// whether the device may hold more frames this round (false: the worker stops asking until epoll reports the
    /// device readable again). The default reads once and reports more when the batch was filled. The router's kernel
    /// TAP overrides it: a quiet queue is read once, a busy one drained, through the ring when it has one.
    /// Called by the queue's worker thread only.
    /// </summary>
    int Read(in TapReadContext context, ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<OffloadInfo> offloads, int offset, out bool more)
    {
        int got = Read(bufs, sizes, offloads, offset);
        more = got == bufs.Length;
        return got;
    }

    /// <summary>Writes one Ethernet frame (checksums complete) to the endpoint. Returns false when the device refused it.</summary>
    bool Write(ReadOnlySpan<byte> frame);

    /// <summary>
    /// True when the device exchanges offload metadata: it may return super-frames from <see cref="Read(ReadOnlySpan{PacketBuffer}, Span{int}, Span{OffloadInfo}, int)"/>
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
    /// A file descriptor that polls readable (epoll, level-triggered) while <see cref="Read(ReadOnlySpan{PacketBuffer}, Span{int}, Span{OffloadInfo}, int)"/> would
    /// return frames. For a TAP it is the TAP itself; a test double uses an eventfd.
    /// </summary>
    SafeHandle ReadinessHandle { get; }

    /// <summary>
    /// True once a read has failed with an error that does not pass (not "nothing to read"): the device went away under
    /// the router, as a TAP does when its interface is deleted in its namespace. The worker reading this queue then stops
    /// watching it (it would be reported readable forever) and counts it; the endpoint stays attached until it is detached.
    /// Per queue (<see cref="Queue"/>). Default: never.
    /// </summary>
    bool IsGone => false;

    /// <summary>Number of queues (a multi-queue TAP: one per pipeline worker). 1 for a plain device.</summary>
    int QueueCount => 1;

    /// <summary>
    /// Queue <paramref name="index"/>'s reading side: worker <c>index</c> reads and polls it (<see cref="Read(ReadOnlySpan{PacketBuffer}, Span{int}, Span{OffloadInfo}, int)"/>,
    /// <see cref="ReadinessHandle"/>). Queue 0 is the device itself. Writes may go through any queue.
    /// </summary>
    ITapDevice Queue(int index) => this;
}
