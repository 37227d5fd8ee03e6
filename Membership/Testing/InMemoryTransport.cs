using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using UserOverlay.Membership.Transport;

namespace UserOverlay.Membership.Testing;

/// <summary>One node's view of an <see cref="InMemoryNetwork"/>.</summary>
internal sealed class InMemoryTransport : IMembershipTransport
{
    private readonly InMemoryNetwork _net;
    private readonly Channel<IncomingPacket> _packets = Channel.CreateBounded<IncomingPacket>(new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Channel<IncomingStream> _streams = Channel.CreateUnbounded<IncomingStream>(new UnboundedChannelOptions { SingleReader = true });
    private volatile bool _closed;

    public InMemoryTransport(InMemoryNetwork net, string name, IPEndPoint ep)
    {
        _net = net;
        Name = name;
        LocalEndPoint = ep;
    }

    public string Name { get; }
    public IPEndPoint LocalEndPoint { get; }
    public bool IsClosed => _closed;
    public ChannelReader<IncomingPacket> Packets => _packets.Reader;
    public ChannelReader<IncomingStream> Streams => _streams.Reader;

    public ValueTask SendPacketAsync(ReadOnlyMemory<byte> packet, IPEndPoint destination, CancellationToken cancellationToken = default)
    {
        if (!_closed) _net.Deliver(this, packet, destination);
        return ValueTask.CompletedTask;
    }

    public ValueTask<Stream> DialAsync(IPEndPoint destination, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (_closed) throw new ObjectDisposedException(nameof(InMemoryTransport));
        return _net.DialAsync(this, destination, timeout, cancellationToken);
    }

    internal bool Receive(byte[] data, IPEndPoint from) =>
        !_closed && _packets.Writer.TryWrite(new IncomingPacket(data, from, Stopwatch.GetTimestamp()));

    internal bool Accept(Stream s, IPEndPoint from) => !_closed && _streams.Writer.TryWrite(new IncomingStream(s, from));

    public ValueTask DisposeAsync()
    {
        _closed = true;
        _net.Remove(this);
        _packets.Writer.TryComplete();
        _streams.Writer.TryComplete();
        while (_streams.Reader.TryRead(out var s)) s.Stream.Dispose();
        return ValueTask.CompletedTask;
    }
}
