using UserOverlay.Router.Linux;
using UserOverlay.Router.Tap;
using UserOverlay.Router.Underlay;

namespace UserOverlay.Router;

/// <summary>The real platform: TAP devices in network namespaces and a UDP socket, on Linux.</summary>
public sealed class LinuxPlatform : IRouterPlatform
{
    /// <summary>The one instance.</summary>
    public static readonly LinuxPlatform Instance = new();

    private LinuxPlatform() { }

    /// <inheritdoc />
    public ITapDevice CreateTap(TapRequest request) => LinuxTap.Create(request);

    /// <inheritdoc />
    public IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize) => UdpUnderlay.Open(local, batchSize);

    /// <inheritdoc />
    public IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize) =>
        udpPort == 0 ? RawEspUnderlay.Open(local, batchSize) : UdpUnderlay.Open(local with { Port = (ushort)udpPort }, batchSize);

    /// <inheritdoc />
    public int QueueCount(int requested) => QueuePolicy.QueueCount(requested);

    /// <inheritdoc />
    public IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize, int queue, int queues) => UdpUnderlay.Open(local, batchSize, queue, queues);

    /// <inheritdoc />
    public IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize, int queue, int queues) =>
        udpPort != 0 ? UdpUnderlay.Open(local with { Port = (ushort)udpPort }, batchSize, queue, queues)
        : RawEspUnderlay.Open(local, batchSize, queue, queues); // each raw socket keeps the copies steered to its queue

    /// <summary>True when the process runs as root (effective uid 0).</summary>
    public static bool IsRoot => Interop.Libc.geteuid() == 0;
}
