using System.Net;
using System.Threading.Channels;

namespace UserOverlay.Membership.Transport;

/// <summary>
/// What a member needs from the network (memberlist's Transport): best-effort packets (UDP) and
/// reliable streams (TCP). Implementations: <see cref="NetTransport"/> (sockets) and
/// <c>UserOverlay.Membership.Testing.InMemoryNetwork</c>.
/// Thread contract: <see cref="SendPacketAsync"/> and <see cref="DialAsync"/> may be called
/// concurrently from any thread; <see cref="Packets"/> and <see cref="Streams"/> have exactly one
/// reader (the member). Disposing completes both channels and fails pending operations.
/// </summary>
public interface IMembershipTransport : IAsyncDisposable
{
    /// <summary>Where this transport is reachable (the default advertise address and port).</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Sends one datagram, best effort (loss is not an error). Borrowed: <paramref name="packet"/> is only read during the call.</summary>
    ValueTask SendPacketAsync(ReadOnlyMemory<byte> packet, IPEndPoint destination, CancellationToken cancellationToken = default);

    /// <summary>Incoming datagrams.</summary>
    ChannelReader<IncomingPacket> Packets { get; }

    /// <summary>Opens a stream to <paramref name="destination"/>; throws (IOException, SocketException, TimeoutException, OperationCanceledException) if it cannot within <paramref name="timeout"/>. The caller owns the stream.</summary>
    ValueTask<Stream> DialAsync(IPEndPoint destination, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Incoming streams.</summary>
    ChannelReader<IncomingStream> Streams { get; }
}
