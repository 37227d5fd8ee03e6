using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>What a follower asks the leader over the forwarding channel.</summary>
internal enum ForwardRequest : byte
{
    /// <summary>Body: a <see cref="RaftEntry"/>-framed command. The leader appends it and answers once it applied it.</summary>
    Propose = 1,

    /// <summary>Body: id, address (each length-prefixed, as in <see cref="RaftEntry"/>).</summary>
    AddMember = 2,

    /// <summary>Body: id.</summary>
    RemoveMember = 3,
}

/// <summary>How the leader answered.</summary>
internal enum ForwardStatus : byte
{
    /// <summary>Done; body: the log index (8, little-endian) of the entry that did it.</summary>
    Ok = 0,

    /// <summary>The member asked is not the leader (any more): ask the new one.</summary>
    NotLeader = 1,

    /// <summary>The leader tried and failed; body: why (UTF-8). Retrying may help.</summary>
    Failed = 2,

    /// <summary>The request itself is wrong; body: why (UTF-8). Retrying does not help.</summary>
    Rejected = 3,
}

/// <summary>The leader's answer.</summary>
internal readonly record struct ForwardReply(ForwardStatus Status, long Index, string Message)
{
    public static ForwardReply Done(long index) => new(ForwardStatus.Ok, index, "");
}

/// <summary>
/// The forwarding channel: a follower hands the leader a proposal or a membership change and waits for the answer.
/// DotNext's TCP transport carries only Raft's own messages, so this is a small protocol of ours beside it, on its own
/// port, under the same mutual TLS: one request at a time per connection, each frame
/// <c>length (4, big-endian) | type or status (1) | body</c>. Frames over the limit, unknown types, failed handshakes
/// and connections over <see cref="MaxConnections"/> are dropped and counted.
/// </summary>
internal sealed class ForwardServer : IAsyncDisposable
{
    /// <summary>Most connections served at once.</summary>
    public const int MaxConnections = 128;

    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>A connection with no request for this long is closed (clients drop theirs sooner: <see cref="ForwardClient.MaxIdle"/>).</summary>
    internal static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(2);

    private readonly Socket listener;
    private readonly SslServerAuthenticationOptions tls;
    private readonly int maxFrame;
    private readonly Func<ForwardRequest, ReadOnlyMemory<byte>, CancellationToken, Task<ForwardReply>> handler;
    private readonly ILogger logger;
    private readonly CancellationTokenSource stop = new();
    private readonly HashSet<Task> connections = [];
    private Task acceptLoop = Task.CompletedTask;
    private long handshakeFailures, oversizeFrames, malformedFrames, overLimit;

    public ForwardServer(IPEndPoint endPoint, SslServerAuthenticationOptions tls, int maxFrame,
        Func<ForwardRequest, ReadOnlyMemory<byte>, CancellationToken, Task<ForwardReply>> handler, ILogger logger)
    {
        this.tls = tls;
        this.maxFrame = maxFrame;
        this.handler = handler;
        this.logger = logger;
        listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endPoint);
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Connections whose TLS handshake failed (a wrong CA, no client certificate, not TLS).</summary>
    public long HandshakeFailures => Interlocked.Read(ref handshakeFailures);

    /// <summary>Frames over the size limit (the connection is dropped).</summary>
    public long OversizeFrames => Interlocked.Read(ref oversizeFrames);

    /// <summary>Frames of an unknown type or an empty one (the connection is dropped).</summary>
    public long MalformedFrames => Interlocked.Read(ref malformedFrames);

    /// <summary>Connections refused because <see cref="MaxConnections"/> were open.</summary>
    public long OverLimit => Interlocked.Read(ref overLimit);

    public void Start() => acceptLoop = AcceptAsync();

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogDebug(e, "raft forward: accept failed");
                continue;
            }
            lock (connections)
            {
                if (connections.Count >= MaxConnections)
                {
                    Interlocked.Increment(ref overLimit);
                    socket.Dispose();
                    continue;
                }
                Task serving = ServeAsync(socket);
                connections.Add(serving);
                _ = serving.ContinueWith(done => { lock (connections) connections.Remove(done); }, TaskScheduler.Default);
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await Task.Yield();
        socket.NoDelay = true;
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        await using (ssl.ConfigureAwait(false))
        {
            try
            {
                using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(stop.Token))
                {
                    handshake.CancelAfter(HandshakeTimeout);
                    await ssl.AuthenticateAsServerAsync(tls, handshake.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref handshakeFailures);
                logger.LogDebug(e, "raft forward: TLS handshake from {Peer} failed", socket.RemoteEndPoint);
                return;
            }
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    byte type;
                    byte[]? body;
                    using (var idle = CancellationTokenSource.CreateLinkedTokenSource(stop.Token))
                    {
                        idle.CancelAfter(IdleTimeout);
                        (type, body) = await ReadFrameAsync(ssl, maxFrame, idle.Token).ConfigureAwait(false);
                    }
                    if (body is null)
                    {
                        if (type == 1)
                            Interlocked.Increment(ref oversizeFrames);
                        return;
                    }
                    if (type is < (byte)ForwardRequest.Propose or > (byte)ForwardRequest.RemoveMember)
                    {
                        Interlocked.Increment(ref malformedFrames);
                        return;
                    }
                    ForwardReply reply;
                    try
                    {
                        reply = await handler((ForwardRequest)type, body, stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (!stop.IsCancellationRequested)
                    {
                        reply = new ForwardReply(ForwardStatus.Failed, 0, e.Message);
                    }
                    await WriteReplyAsync(ssl, reply, stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer went away or we are stopping.
            }
        }
    }

    /// <summary>Reads one frame; body null at the end of the stream (type 0) or for a frame over the limit or empty (type 1).</summary>
    internal static async Task<(byte Type, byte[]? Body)> ReadFrameAsync(Stream stream, int maxFrame, CancellationToken cancellationToken)
    {
        var prefix = new byte[4];
        int read = 0;
        while (read < prefix.Length)
        {
            int n = await stream.ReadAsync(prefix.AsMemory(read), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (read == 0)
                    return (0, null);
                throw new IOException("raft forward: the stream ended inside a frame header");
            }
            read += n;
        }
        uint length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (length == 0 || length > (uint)maxFrame + 64)
            return (1, null);
        var frame = new byte[length];
        await stream.ReadExactlyAsync(frame, cancellationToken).ConfigureAwait(false);
        return (frame[0], frame[1..]);
    }

    internal static async Task WriteFrameAsync(Stream stream, byte type, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var frame = new byte[5 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(1 + body.Length));
        frame[4] = type;
        body.CopyTo(frame.AsMemory(5));
        await stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Task WriteReplyAsync(Stream stream, ForwardReply reply, CancellationToken cancellationToken)
    {
        byte[] body;
        if (reply.Status == ForwardStatus.Ok)
        {
            body = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(body, reply.Index);
        }
        else
        {
            body = Encoding.UTF8.GetBytes(reply.Message.Length > 1024 ? reply.Message[..1024] : reply.Message);
        }
        return WriteFrameAsync(stream, (byte)reply.Status, body, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (stop.IsCancellationRequested)
            return;
        await stop.CancelAsync().ConfigureAwait(false);
        listener.Dispose();
        await acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task[] open;
        lock (connections)
            open = [.. connections];
        await Task.WhenAll(open).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        stop.Dispose();
    }
}

/// <summary>The follower's end of the forwarding channel: a few kept-open TLS connections per leader address.</summary>
internal sealed class ForwardClient(SslClientAuthenticationOptions tls, int maxFrame) : IAsyncDisposable
{
    private const int MaxIdlePerTarget = 4;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);

    /// <summary>An idle connection older than this is not reused (the server closes them at <see cref="ForwardServer.IdleTimeout"/>).</summary>
    internal static readonly TimeSpan MaxIdle = TimeSpan.FromMinutes(1);

    private readonly Dictionary<IPEndPoint, Stack<(SslStream Stream, long Since)>> idle = [];
    private bool disposed;

    /// <summary>Sends one request to <paramref name="target"/> and reads the answer; throws on a connection failure.</summary>
    public async Task<ForwardReply> SendAsync(IPEndPoint target, ForwardRequest type, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        SslStream stream = TakeIdle(target) ?? await ConnectAsync(target, cancellationToken).ConfigureAwait(false);
        try
        {
            await ForwardServer.WriteFrameAsync(stream, (byte)type, body, cancellationToken).ConfigureAwait(false);
            (byte status, byte[]? reply) = await ForwardServer.ReadFrameAsync(stream, maxFrame, cancellationToken).ConfigureAwait(false);
            if (reply is null)
                throw new IOException($"raft forward: {target} closed the connection without an answer");
            ForwardReply answer = (ForwardStatus)status switch
            {
                ForwardStatus.Ok when reply.Length == 8 => ForwardReply.Done(BinaryPrimitives.ReadInt64LittleEndian(reply)),
                ForwardStatus.NotLeader or ForwardStatus.Failed or ForwardStatus.Rejected => new((ForwardStatus)status, 0, Encoding.UTF8.GetString(reply)),
                _ => throw new IOException($"raft forward: {target} sent a malformed answer"),
            };
            ReturnIdle(target, stream);
            return answer;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<SslStream> ConnectAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? ssl = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ConnectTimeout);
            await socket.ConnectAsync(target, timeout.Token).ConfigureAwait(false);
            ssl = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsClientAsync(tls, timeout.Token).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            if (ssl is not null)
                await ssl.DisposeAsync().ConfigureAwait(false);
            else
                socket.Dispose();
            throw;
        }
    }

    private SslStream? TakeIdle(IPEndPoint target)
    {
        List<SslStream> stale = [];
        SslStream? found = null;
        lock (idle)
        {
            if (idle.TryGetValue(target, out var stack))
            {
                while (found is null && stack.TryPop(out var entry))
                {
                    if (Environment.TickCount64 - entry.Since < (long)MaxIdle.TotalMilliseconds)
                        found = entry.Stream;
                    else
                        stale.Add(entry.Stream);
                }
            }
        }
        foreach (SslStream stream in stale)
            stream.Dispose();
        return found;
    }

    private void ReturnIdle(IPEndPoint target, SslStream stream)
    {
        lock (idle)
        {
            if (!disposed)
            {
                if (!idle.TryGetValue(target, out var stack))
                    idle[target] = stack = new Stack<(SslStream, long)>();
                if (stack.Count < MaxIdlePerTarget)
                {
                    stack.Push((stream, Environment.TickCount64));
                    return;
                }
            }
        }
        stream.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        List<SslStream> all;
        lock (idle)
        {
            disposed = true;
            all = [.. idle.Values.SelectMany(static stack => stack.Select(static entry => entry.Stream))];
            idle.Clear();
        }
        foreach (SslStream stream in all)
            stream.Dispose();
        return ValueTask.CompletedTask;
    }
}
