// The socket transport: one UDP socket and one TCP listener on the same address and port, as
// memberlist's NetTransport. Control-plane code: one receive loop and one accept loop, each an
// async loop on the thread pool; every datagram is copied into its own array (clarity over zero
// allocation, as memberlist's udpListen does).

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace UserOverlay.Membership.Transport;

/// <summary>UDP + TCP transport bound to one address and port. See <see cref="IMembershipTransport"/> for the thread contract.</summary>
public sealed class NetTransport : IMembershipTransport
{
    /// <summary>Receive buffer asked of the kernel for the UDP socket (memberlist asks 2 MB).</summary>
    public const int UdpReceiveBufferSize = 2 * 1024 * 1024;

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly Channel<IncomingPacket> _packets = Channel.CreateBounded<IncomingPacket>(new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Channel<IncomingStream> _streams = Channel.CreateBounded<IncomingStream>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _udpLoop, _tcpLoop;

    private NetTransport(Socket udp, Socket tcp, IPEndPoint local)
    {
        _udp = udp;
        _tcp = tcp;
        LocalEndPoint = local;
        _udpLoop = Task.Run(UdpLoopAsync);
        _tcpLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds UDP and TCP on <paramref name="address"/>:<paramref name="port"/>; port 0 picks one free for both.</summary>
    public static NetTransport Bind(IPAddress address, int port)
    {
        for (int attempt = 0; ; attempt++)
        {
            var tcp = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            var udp = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                tcp.Bind(new IPEndPoint(address, port));
                tcp.Listen(128);
                int bound = ((IPEndPoint)tcp.LocalEndPoint!).Port;
                udp.Bind(new IPEndPoint(address, bound));
                try { udp.ReceiveBufferSize = UdpReceiveBufferSize; } catch (SocketException) { }
                return new NetTransport(udp, tcp, new IPEndPoint(address, bound));
            }
            catch (SocketException) when (port == 0 && attempt < 10)
            {
                tcp.Dispose();
                udp.Dispose();
            }
            catch
            {
                tcp.Dispose();
                udp.Dispose();
                throw;
            }
        }
    }

    /// <inheritdoc/>
    public IPEndPoint LocalEndPoint { get; }

    /// <inheritdoc/>
    public ChannelReader<IncomingPacket> Packets => _packets.Reader;

    /// <inheritdoc/>
    public ChannelReader<IncomingStream> Streams => _streams.Reader;

    /// <inheritdoc/>
    public async ValueTask SendPacketAsync(ReadOnlyMemory<byte> packet, IPEndPoint destination, CancellationToken cancellationToken = default)
    {
        try
        {
            await _udp.SendToAsync(packet, SocketFlags.None, destination, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // Best effort: unreachable peers are the failure detector's business, not an error here.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc/>
    public async ValueTask<Stream> DialAsync(IPEndPoint destination, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var s = new Socket(destination.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cts.Token);
        cts.CancelAfter(timeout > TimeSpan.Zero ? timeout : TimeSpan.FromMilliseconds(1));
        try
        {
            await s.ConnectAsync(destination, cts.Token).ConfigureAwait(false);
            return new NetworkStream(s, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            s.Dispose();
            throw new TimeoutException($"connecting to {destination} timed out");
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private async Task UdpLoopAsync()
    {
        var buf = new byte[Wire.ProtocolConstants.MaxPacketSize];
        EndPoint any = new IPEndPoint(_udp.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!_cts.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try
            {
                r = await _udp.ReceiveFromAsync(buf, SocketFlags.None, any, _cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException) { continue; } // e.g. ICMP errors surfacing on the socket
            if (r.ReceivedBytes == 0) continue;
            long ts = Stopwatch.GetTimestamp();
            var data = buf.AsSpan(0, r.ReceivedBytes).ToArray();
            _packets.Writer.TryWrite(new IncomingPacket(data, (IPEndPoint)r.RemoteEndPoint, ts));
        }
        _packets.Writer.TryComplete();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket c;
            try
            {
                c = await _tcp.AcceptAsync(_cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException)
            {
                try { await Task.Delay(5, _cts.Token).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                continue;
            }
            c.NoDelay = true;
            var remote = (IPEndPoint)c.RemoteEndPoint!;
            var stream = new NetworkStream(c, ownsSocket: true);
            try
            {
                await _streams.Writer.WriteAsync(new IncomingStream(stream, remote), _cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                break;
            }
        }
        _streams.Writer.TryComplete();
    }

    /// <summary>Closes both sockets and completes the channels.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_cts.IsCancellationRequested) return;
        _cts.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        try { await Task.WhenAll(_udpLoop, _tcpLoop).ConfigureAwait(false); } catch (Exception) { }
        while (_streams.Reader.TryRead(out var s)) await s.Stream.DisposeAsync().ConfigureAwait(false);
    }
}
