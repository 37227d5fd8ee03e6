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
}

/// <summary>
/// The underlay edge: a UDP socket on this host's VTEP address. Implementations: <c>UdpUnderlay</c>
/// (recvmmsg/sendmmsg on Linux) and <see cref="Testing.InMemoryUnderlay"/>. Receive is called by
/// one thread at a time; Send may be called concurrently with Receive (not with another Send).
/// </summary>
public interface IUnderlay : IDisposable
{
    /// <summary>The local address and port datagrams are received on and sent from.</summary>
    VtepEndpoint LocalEndpoint { get; }

    /// <summary>
    /// Blocks until at least one datagram arrives, then returns up to <c>datagrams.Length</c> of them.
    /// <c>datagrams[i].Buffer</c> must be set by the caller; the payload is written at
    /// <paramref name="offset"/> and Offset/Length/Peer/Truncated are filled in. Returns 0 once
    /// <see cref="Close"/> has been called.
    /// </summary>
    int Receive(Span<UnderlayDatagram> datagrams, int offset);

    /// <summary>Sends the datagrams (one sendmmsg where possible). Returns how many could not be sent.</summary>
    int Send(ReadOnlySpan<UnderlayDatagram> datagrams);

    /// <summary>Wakes a blocked <see cref="Receive"/> and makes every later one return 0.</summary>
    void Close();
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
}
