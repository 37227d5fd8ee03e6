using System.Net;

namespace UserOverlay.Membership.Transport;

/// <summary>A datagram as received. <see cref="Data"/> is owned by the receiver (never reused by the transport).</summary>
/// <param name="Data">The datagram's bytes.</param>
/// <param name="From">Sender's address and port.</param>
/// <param name="ReceivedAt">Receive time, in <see cref="System.Diagnostics.Stopwatch"/> ticks (used for RTTs).</param>
public readonly record struct IncomingPacket(ReadOnlyMemory<byte> Data, IPEndPoint From, long ReceivedAt);
