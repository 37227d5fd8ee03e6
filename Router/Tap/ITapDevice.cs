using System.Runtime.InteropServices;

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
    /// <c>bufs[i].Span[offset..]</c> and its length to <c>sizes[i]</c>. Returns the number of frames
    /// read, 0 when none is ready. A future offload-capable device may return several frames
    /// segmented from one read.
    /// </summary>
    int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, int offset);

    /// <summary>Writes one Ethernet frame to the endpoint. Returns false when the device refused it.</summary>
    bool Write(ReadOnlySpan<byte> frame);

    /// <summary>
    /// A file descriptor that polls readable (epoll, level-triggered) while <see cref="Read"/> would
    /// return frames. For a TAP it is the TAP itself; a test double uses an eventfd.
    /// </summary>
    SafeHandle ReadinessHandle { get; }
}

/// <summary>What the platform needs to create one endpoint's TAP device.</summary>
/// <param name="Netns">Network namespace name or path.</param>
/// <param name="Name">Interface name inside the namespace.</param>
/// <param name="Mac">MAC address to set.</param>
/// <param name="Mtu">MTU to set.</param>
/// <param name="Address">IPv4 address (host order) to assign.</param>
/// <param name="PrefixLength">Its prefix length.</param>
public sealed record TapRequest(string Netns, string Name, MacAddress Mac, int Mtu, uint Address, int PrefixLength);
