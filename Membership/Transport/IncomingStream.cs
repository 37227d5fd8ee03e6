using System.Net;

namespace UserOverlay.Membership.Transport;

/// <summary>An accepted stream connection. The consumer owns and disposes <see cref="Stream"/>.</summary>
/// <param name="Stream">The reliable, ordered byte stream.</param>
/// <param name="RemoteEndPoint">The connecting side's address.</param>
public sealed record IncomingStream(Stream Stream, IPEndPoint RemoteEndPoint);
