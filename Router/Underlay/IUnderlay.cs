namespace UserOverlay.Router;

/// <summary>
/// One datagram on the underlay: its bytes are <c>Buffer.Span[Offset..(Offset+Length)]</c>;
/// <see cref="Peer"/> is the source (receive) or destination (send). A plain struct, so arrays of
/// them are reused batch after batch without allocation.
/// </summary>
public struct UnderlayDatagram
{
    public PacketBuffer Buffer;
    public int Offset;
    public int Length;
    public VtepEndpoint Peer;
    /// <summary>Set on receive when the datagram did not fit the buffer and was cut short.</summary>
    public bool Truncated;
    /// <summary>
    /// 0 for one datagram. Otherwise the bytes are several datagrams of this size back to back (the last may be
    /// shorter): on send, one UDP GSO send (UDP_SEGMENT) the kernel cuts into wire datagrams; on receive, datagrams
    /// the kernel coalesced (UDP_GRO). Only on an underlay with <see cref="IUnderlay.SupportsSegmentation"/>.
    /// </summary>
    public int SegmentSize;
}

/// <summary>
/// The underlay edge: a UDP socket on this host's VTEP address. Implementations: <c>UdpUnderlay</c>
/// (recvmmsg/sendmmsg on Linux) and <see cref="Testing.InMemoryUnderlay"/>. Like a TAP, it is
/// non-blocking and signals readiness through a pollable handle, so one pipeline worker waits on
/// the socket and on every TAP with a single epoll. Receive and Send are called by one thread at a time.
/// </summary>
public interface IUnderlay : IDisposable
{
    /// <summary>A file descriptor that polls readable (epoll, level-triggered) while <see cref="Receive"/> would return datagrams.</summary>
    System.Runtime.InteropServices.SafeHandle ReadinessHandle { get; }

    /// <summary>The local address and port datagrams are received on and sent from.</summary>
    VtepEndpoint LocalEndpoint { get; }

    /// <summary>
    /// Returns up to <c>datagrams.Length</c> datagrams without blocking (0 when none is queued).
    /// <c>datagrams[i].Buffer</c> must be set by the caller; the payload is written at
    /// <paramref name="offset"/> and Offset/Length/Peer/Truncated are filled in.
    /// </summary>
    int Receive(Span<UnderlayDatagram> datagrams, int offset);

    /// <summary>Sends the datagrams (one sendmmsg where possible). Returns how many could not be sent.</summary>
    int Send(ReadOnlySpan<UnderlayDatagram> datagrams);

    /// <summary>True when <see cref="UnderlayDatagram.SegmentSize"/> may be used (UDP GSO on send, GRO on receive).</summary>
    bool SupportsSegmentation { get; }

    /// <summary>False for a send-only socket, which the worker does not poll.</summary>
    bool Receives => true;
}

/// <summary>
/// Creates the router's I/O edges. <c>LinuxPlatform</c> makes real TAP devices and UDP sockets;
/// <see cref="Testing.InMemoryPlatform"/> makes test doubles.
/// </summary>
public interface IRouterPlatform
{
    /// <summary>Creates and configures one endpoint's TAP device (inside its namespace).</summary>
    ITapDevice CreateTap(TapRequest request);

    /// <summary>Opens the data-path socket bound to <paramref name="local"/>.</summary>
    IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize);

    /// <summary>
    /// Opens the ESP socket on <paramref name="local"/>'s address: IP protocol 50 when <paramref name="udpPort"/> is 0
    /// (transport mode), else UDP on that port (ESP-in-UDP). Received datagrams start at the SPI.
    /// </summary>
    IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize);

    /// <summary>
    /// How many queues (pipeline workers) to run for a request of <paramref name="requested"/> (0: the platform's
    /// choice). A platform that answers more than 1 must implement the queue-aware overloads below.
    /// </summary>
    int QueueCount(int requested) => 1;

    /// <summary>Opens queue <paramref name="queue"/> of <paramref name="queues"/> data-path sockets on <paramref name="local"/>.</summary>
    IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize, int queue, int queues) =>
        queues == 1 ? OpenUnderlay(local, batchSize) : throw new NotSupportedException("this platform has one queue");

    /// <summary>Opens queue <paramref name="queue"/> of <paramref name="queues"/> ESP sockets (see <see cref="OpenEspUnderlay(VtepEndpoint, int, int)"/>).</summary>
    IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize, int queue, int queues) =>
        queues == 1 ? OpenEspUnderlay(local, udpPort, batchSize) : throw new NotSupportedException("this platform has one queue");
}
