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
