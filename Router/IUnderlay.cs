namespace UserOverlay.Router;

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
