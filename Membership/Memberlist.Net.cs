// Encoding, sending and receiving. Datagram layering (memberlist's):
//   send:    msg → [compound with piggybacked broadcasts] → [compress if smaller] → [hasCrc if the
//            peer understands protocol 5] → [encrypt with the primary key]
//   receive: [decrypt with any key] → [check CRC] → dispatch (compound/compress recurse)
// Streams: type byte + msgpack, compressed always (when enabled), then encrypted as
// 0x0a | BE32 length | vsn|nonce|ciphertext|tag with the 5-byte header as AAD.
// Every malformed input ends as a counted drop (DropReason); nothing here throws to a loop.

using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Transport;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership;

public sealed partial class Memberlist
{
    /// <summary>Most compound/compress nesting we follow (memberlist produces at most compress(compound)).</summary>
    private const int MaxNesting = 4;

    private readonly ConcurrentDictionary<uint, AckHandler> _ackHandlers = new();
    private readonly HandoffQueue _handoff;
    private int _pushPullRequests;

    private bool EncryptOutgoing => _opt.Keyring is not null && _opt.GossipVerifyOutgoing;

    /// <summary>Waits for the ack (or counts nacks) of one probe sequence number; or relays an indirect probe's ack.</summary>
    private sealed class AckHandler
    {
        private readonly TaskCompletionSource _acked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _nacks;
        public Action<byte[]?>? Relay;
        public Task Acked => _acked.Task;
        public int Nacks => Volatile.Read(ref _nacks);
        public byte[]? Payload;
        public long AckTimestamp;

        public void OnAck(byte[]? payload, long ts)
        {
            Payload = payload;
            AckTimestamp = ts;
            if (_acked.TrySetResult()) Relay?.Invoke(payload);
        }

        public void OnNack() => Interlocked.Increment(ref _nacks);
    }

    private void RegisterAckHandler(uint seq, AckHandler h, TimeSpan timeout)
    {
        _ackHandlers[seq] = h;
        _ = Task.Delay(timeout + TimeSpan.FromMilliseconds(50)).ContinueWith(_ =>
            _ackHandlers.TryRemove(new KeyValuePair<uint, AckHandler>(seq, h)), TaskScheduler.Default);
    }

    // ---- send paths -------------------------------------------------------------------------------

    /// <summary>memberlist's sendMsg: a direct message with broadcasts piggybacked in a compound when there is room.</summary>
    private ValueTask SendMsgAsync(IPEndPoint to, byte[] msg, CancellationToken ct)
    {
        int avail = _opt.UdpBufferSize - msg.Length - ProtocolConstants.CompoundHeaderOverhead - (EncryptOutgoing ? PayloadCrypto.Overhead : 0);
        var extra = avail > 0 ? GetBroadcasts(ProtocolConstants.CompoundOverhead, avail) : [];
        if (extra.Count == 0) return RawSendPacketAsync(to, null, msg, ct);
        var msgs = new List<byte[]>(1 + extra.Count) { msg };
        msgs.AddRange(extra);
        return RawSendPacketAsync(to, null, Compound.Make(msgs.Take(Compound.MaxParts).ToList()), ct);
    }

    /// <summary>memberlist's rawSendMsgPacket: compress when smaller, CRC for protocol-5 peers, encrypt, send.</summary>
    private async ValueTask RawSendPacketAsync(IPEndPoint to, NodeState? node, byte[] msg, CancellationToken ct)
    {
        if (_opt.EnableCompression)
        {
            var c = MessageCodec.Compress(msg);
            if (c.Length < msg.Length) msg = c;
        }
        if (node is not null && node.Vsn.ProtocolMax >= 5) msg = Compound.AddCrc(msg);
        if (EncryptOutgoing) msg = PayloadCrypto.Encrypt(_opt.Keyring!.PrimaryKey.Span, msg, []);
        try
        {
            await _transport.SendPacketAsync(msg, to, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Best effort by definition.
        }
    }

    /// <summary>memberlist's rawSendMsgStream: compress (always, when enabled), encrypt with the stream header as AAD, write.</summary>
    private async Task RawSendStreamAsync(Stream s, byte[] msg, CancellationToken ct)
    {
        if (_opt.EnableCompression) msg = MessageCodec.Compress(msg);
        if (EncryptOutgoing)
        {
            int encLen = PayloadCrypto.EncryptedLength(msg.Length);
            var framed = new byte[5 + encLen];
            framed[0] = (byte)MessageType.Encrypt;
            BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)encLen);
            PayloadCrypto.Encrypt(_opt.Keyring!.PrimaryKey.Span, msg, framed.AsSpan(0, 5), framed.AsSpan(5));
            msg = framed;
        }
        await s.WriteAsync(msg, ct).ConfigureAwait(false);
        await s.FlushAsync(ct).ConfigureAwait(false);
    }

    // ---- packets ----------------------------------------------------------------------------------

    private async Task PacketLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var p in _transport.Packets.ReadAllAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await IngestPacketAsync(p, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (Exception e)
                {
                    Drop(p.From, DropReason.Malformed, e.GetType().Name);
                    Log.HandlerFailed(_log, Name, p.From.ToString(), e);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void Drop(IPEndPoint from, DropReason reason, string detail)
    {
        Drops.Increment(reason);
        Log.Dropped(_log, Name, from.ToString(), reason, detail);
    }

    internal async Task IngestPacketAsync(IncomingPacket p, CancellationToken ct)
    {
        var buf = p.Data;
        if (buf.Length < 1) { Drop(p.From, DropReason.Truncated, "empty datagram"); return; }
        if (buf.Length > ProtocolConstants.MaxPacketSize) { Drop(p.From, DropReason.Oversized, "datagram"); return; }
        if (_opt.Keyring is { } ring)
        {
            var plain = PayloadCrypto.TryDecrypt(ring.Snapshot, buf.Span, []);
            if (plain is null)
            {
                if (_opt.GossipVerifyIncoming)
                {
                    Drop(p.From, LooksPlaintext(buf.Span) ? DropReason.NotEncrypted : DropReason.DecryptionFailed, "no installed key could decrypt the message");
                    return;
                }
            }
            else
            {
                buf = plain;
            }
        }
        if (buf.Length < 1) { Drop(p.From, DropReason.Truncated, "empty message"); return; }
        if (buf.Span[0] == (byte)MessageType.HasCrc)
        {
            if (!Compound.TryCheckCrc(buf, out var inner))
            {
                Drop(p.From, buf.Length < 5 ? DropReason.Truncated : DropReason.BadChecksum, "invalid checksum");
                return;
            }
            buf = inner;
        }
        await HandleCommandAsync(buf, p.From, p.ReceivedAt, 0, ct).ConfigureAwait(false);
    }

    /// <summary>Whether a datagram that failed decryption looks like a plaintext memberlist message (for the drop reason only).</summary>
    private static bool LooksPlaintext(ReadOnlySpan<byte> b)
    {
        if (b.Length < 2) return true;
        if (b[0] > 1) return b[0] <= (byte)MessageType.Err; // not an encryption version: a message type
        // 0/1 are both encryption versions and ping/indirect ping: plaintext only if one msgpack value spans the rest.
        try { return MsgPackReader.MeasureValue(b[1..]) == b.Length - 1; }
        catch (MsgPackException) { return false; }
    }

    private async Task HandleCommandAsync(ReadOnlyMemory<byte> buf, IPEndPoint from, long ts, int depth, CancellationToken ct)
    {
        if (buf.Length < 1) { Drop(from, DropReason.Truncated, "missing message type byte"); return; }
        if (depth > MaxNesting) { Drop(from, DropReason.TooDeep, "nesting"); return; }
        var type = (MessageType)buf.Span[0];
        var body = buf[1..];
        try
        {
            switch (type)
            {
                case MessageType.Compound:
                    var parts = new List<ReadOnlyMemory<byte>>();
                    if (!Compound.TrySplit(body, parts, out int truncated)) { Drop(from, DropReason.Truncated, "compound header"); return; }
                    if (truncated > 0) Drop(from, DropReason.Truncated, $"compound had {truncated} truncated parts");
                    foreach (var part in parts) await HandleCommandAsync(part, from, ts, depth + 1, ct).ConfigureAwait(false);
                    break;
                case MessageType.Compress:
                    byte[] plain;
                    try { plain = MessageCodec.Decompress(body.Span); }
                    catch (InvalidDataException e)
                    {
                        Drop(from, e.Message.Contains("too large", StringComparison.Ordinal) ? DropReason.Oversized : DropReason.DecompressionFailed, e.Message);
                        return;
                    }
                    await HandleCommandAsync(plain, from, ts, depth + 1, ct).ConfigureAwait(false);
                    break;
                case MessageType.Ping:
                    await HandlePingAsync(body, from, ct).ConfigureAwait(false);
                    break;
                case MessageType.IndirectPing:
                    await HandleIndirectPingAsync(body, from, ct).ConfigureAwait(false);
                    break;
                case MessageType.AckResp:
                    HandleAck(body, from, ts);
                    break;
                case MessageType.NackResp:
                    HandleNack(body, from);
                    break;
                case MessageType.Alive:
                case MessageType.Suspect:
                case MessageType.Dead:
                case MessageType.User:
                    if (!_handoff.TryEnqueue(new Handoff(type, body, from), highPriority: type == MessageType.Alive))
                        Drop(from, DropReason.QueueFull, type.ToString());
                    break;
                default:
                    Drop(from, DropReason.UnknownMessageType, $"type {(byte)type}");
                    break;
            }
        }
        catch (MsgPackException e)
        {
            Drop(from, e.Truncated ? DropReason.Truncated : DropReason.Malformed, $"{type}: {e.Message}");
        }
    }

    private async Task HandlePingAsync(ReadOnlyMemory<byte> body, IPEndPoint from, CancellationToken ct)
    {
        var p = Decode(body, PingMessage.Read);
        if (p.Node.Length > 0 && p.Node != Name) { Drop(from, DropReason.WrongNode, $"ping for '{p.Node}'"); return; }
        var ack = new AckRespMessage(p.SeqNo, AckPayload());
        var to = p.SourceAddr is { Length: 4 or 16 } && p.SourcePort > 0 ? new IPEndPoint(new IPAddress(p.SourceAddr), p.SourcePort) : from;
        await SendMsgAsync(to, MessageCodec.Encode(ack), ct).ConfigureAwait(false);
    }

    private byte[]? AckPayload()
    {
        if (_opt.Ping is null) return null;
        try { return _opt.Ping.AckPayload(); }
        catch (Exception e) { Log.DelegateFailed(_log, Name, e); return null; }
    }

    private async Task HandleIndirectPingAsync(ReadOnlyMemory<byte> body, IPEndPoint from, CancellationToken ct)
    {
        var ind = Decode(body, IndirectPingMessage.Read);
        if (ind.Target.Length is not (4 or 16)) { Drop(from, DropReason.Malformed, "indirect ping target"); return; }
        ushort port = ind.Port != 0 ? ind.Port : (ushort)_transport.LocalEndPoint.Port;
        uint localSeq = NextSeqNo();
        var self = AdvertiseEndPoint;
        var ping = new PingMessage(localSeq, ind.Node, AddressBytes(self.Address), (ushort)self.Port, Name);
        var requester = ind.SourceAddr is { Length: 4 or 16 } && ind.SourcePort > 0 ? new IPEndPoint(new IPAddress(ind.SourceAddr), ind.SourcePort) : from;

        var handler = new AckHandler
        {
            Relay = payload => { var t = SendMsgAsync(requester, MessageCodec.Encode(new AckRespMessage(ind.SeqNo, null)), ct).AsTask(); },
        };
        RegisterAckHandler(localSeq, handler, _opt.ProbeTimeout);
        await SendMsgAsync(new IPEndPoint(new IPAddress(ind.Target), port), MessageCodec.Encode(ping), ct).ConfigureAwait(false);

        if (ind.Nack)
        {
            _ = Task.Run(async () =>
            {
                if (await WaitAsync(handler.Acked, _opt.ProbeTimeout, ct).ConfigureAwait(false)) return;
                await SendMsgAsync(requester, MessageCodec.Encode(new NackRespMessage(ind.SeqNo)), ct).ConfigureAwait(false);
            }, CancellationToken.None);
        }
    }

    private void HandleAck(ReadOnlyMemory<byte> body, IPEndPoint from, long ts)
    {
        var ack = Decode(body, AckRespMessage.Read);
        if (_ackHandlers.TryRemove(ack.SeqNo, out var h)) h.OnAck(ack.Payload, ts);
        else Drop(from, DropReason.UnexpectedAck, $"ack {ack.SeqNo}");
    }

    private void HandleNack(ReadOnlyMemory<byte> body, IPEndPoint from)
    {
        var nack = Decode(body, NackRespMessage.Read);
        if (_ackHandlers.TryGetValue(nack.SeqNo, out var h)) h.OnNack();
        else Drop(from, DropReason.UnexpectedAck, $"nack {nack.SeqNo}");
    }

    private delegate T ReadFn<out T>(ref MsgPackReader r);

    private static T Decode<T>(ReadOnlyMemory<byte> body, ReadFn<T> read)
    {
        var r = new MsgPackReader(body.Span);
        return read(ref r);
    }

    // ---- handoff (state changes and user messages, in order, alive first) --------------------------

    private readonly record struct Handoff(MessageType Type, ReadOnlyMemory<byte> Body, IPEndPoint From);

    /// <summary>Two bounded FIFO queues (alive first, then suspect/dead/user), as memberlist's handoff queues.</summary>
    private sealed class HandoffQueue(int depth)
    {
        private readonly Queue<Handoff> _high = new(), _low = new();
        private readonly SemaphoreSlim _signal = new(0);
        private volatile bool _completed;

        public bool TryEnqueue(Handoff h, bool highPriority)
        {
            var q = highPriority ? _high : _low;
            lock (this)
            {
                if (_completed || q.Count >= depth) return false;
                q.Enqueue(h);
            }
            _signal.Release();
            return true;
        }

        public async ValueTask<Handoff?> DequeueAsync(CancellationToken ct)
        {
            while (true)
            {
                await _signal.WaitAsync(ct).ConfigureAwait(false);
                lock (this)
                {
                    if (_high.TryDequeue(out var h)) return h;
                    if (_low.TryDequeue(out h)) return h;
                    if (_completed) return null;
                }
            }
        }

        public void Complete()
        {
            _completed = true;
            _signal.Release();
        }
    }

    private async Task HandoffLoopAsync(CancellationToken ct)
    {
        try
        {
            while (await _handoff.DequeueAsync(ct).ConfigureAwait(false) is { } h)
            {
                try
                {
                    HandleHandoff(h);
                }
                catch (MsgPackException e)
                {
                    Drop(h.From, e.Truncated ? DropReason.Truncated : DropReason.Malformed, $"{h.Type}: {e.Message}");
                }
                catch (Exception e)
                {
                    Log.HandlerFailed(_log, Name, h.From.ToString(), e);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void HandleHandoff(Handoff h)
    {
        switch (h.Type)
        {
            case MessageType.Alive:
                var a = Decode(h.Body, AliveMessage.Read);
                if (a.Addr.Length is not (4 or 16) || a.Node.Length == 0) { Drop(h.From, DropReason.InvalidAlive, "address"); return; }
                if ((a.Meta?.Length ?? 0) > ProtocolConstants.MetaMaxSize) { Drop(h.From, DropReason.Oversized, "node meta"); return; }
                if (a.Port == 0) a = a with { Port = (ushort)_transport.LocalEndPoint.Port };
                lock (_stateLock) AliveNode(a, null, bootstrap: false);
                break;
            case MessageType.Suspect:
                var s = Decode(h.Body, SuspectOrDeadMessage.Read);
                lock (_stateLock) SuspectNode(s);
                break;
            case MessageType.Dead:
                var d = Decode(h.Body, SuspectOrDeadMessage.Read);
                lock (_stateLock) DeadNode(d);
                break;
            case MessageType.User:
                if (_opt.Delegate is { } del && h.Body.Length > 0)
                {
                    try { del.OnUserMessage(h.Body.Span); }
                    catch (Exception e) { Log.DelegateFailed(_log, Name, e); }
                }
                break;
        }
    }

    // ---- streams ----------------------------------------------------------------------------------

    private async Task StreamLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var s in _transport.Streams.ReadAllAsync(ct).ConfigureAwait(false))
                _ = Task.Run(() => HandleStreamAsync(s, ct), CancellationToken.None);
        }
        catch (OperationCanceledException) { }
    }

    private async Task HandleStreamAsync(IncomingStream conn, CancellationToken shutdown)
    {
        await using var stream = conn.Stream;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        cts.CancelAfter(_opt.TcpTimeout);
        var ct = cts.Token;
        try
        {
            var (type, reader) = await ReadStreamAsync(new StreamMessageReader(stream), ct).ConfigureAwait(false);
            switch (type)
            {
                case MessageType.User:
                    var hdr = Decode(await reader.ReadValueAsync(ct).ConfigureAwait(false), UserMsgHeader.Read);
                    if (hdr.UserMsgLen < 0 || hdr.UserMsgLen > ProtocolConstants.MaxPushStateBytes) throw new StreamProtocolException(DropReason.Oversized, "user message too large");
                    var payload = await reader.ReadExactAsync(hdr.UserMsgLen, ct).ConfigureAwait(false);
                    if (!_handoff.TryEnqueue(new Handoff(MessageType.User, payload, conn.RemoteEndPoint), highPriority: false))
                        Drop(conn.RemoteEndPoint, DropReason.QueueFull, "user");
                    break;
                case MessageType.PushPull:
                    int concurrent = Interlocked.Increment(ref _pushPullRequests);
                    try
                    {
                        if (concurrent >= ProtocolConstants.MaxPushPullRequests)
                            throw new StreamProtocolException(DropReason.TooManyPushPulls, "Too many pending push/pull requests");
                        var (join, nodes, user) = await ReadRemoteStateAsync(reader, ct).ConfigureAwait(false);
                        await SendLocalStateAsync(stream, join, ct).ConfigureAwait(false);
                        MergeRemoteState(join, nodes, user);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _pushPullRequests);
                    }
                    break;
                case MessageType.Ping:
                    var p = Decode(await reader.ReadValueAsync(ct).ConfigureAwait(false), PingMessage.Read);
                    if (p.Node.Length > 0 && p.Node != Name) { Drop(conn.RemoteEndPoint, DropReason.WrongNode, $"TCP ping for '{p.Node}'"); return; }
                    await RawSendStreamAsync(stream, MessageCodec.Encode(new AckRespMessage(p.SeqNo, null)), ct).ConfigureAwait(false);
                    break;
                default:
                    throw new StreamProtocolException(DropReason.UnknownMessageType, $"Received invalid msgType ({(byte)type})");
            }
        }
        catch (StreamProtocolException e)
        {
            Drop(conn.RemoteEndPoint, e.Reason, e.Message);
            try { await RawSendStreamAsync(stream, MessageCodec.Encode(new ErrRespMessage(e.Message)), ct).ConfigureAwait(false); }
            catch (Exception) { }
        }
        catch (MsgPackException e)
        {
            Drop(conn.RemoteEndPoint, e.Truncated ? DropReason.Truncated : DropReason.Malformed, e.Message);
        }
        catch (EndOfStreamException)
        {
            // The peer connected and closed (memberlist does not log this either).
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or TimeoutException)
        {
            Log.StreamFailed(_log, Name, conn.RemoteEndPoint.ToString(), e.Message);
        }
        catch (Exception e)
        {
            Drop(conn.RemoteEndPoint, DropReason.Malformed, e.GetType().Name);
            Log.HandlerFailed(_log, Name, conn.RemoteEndPoint.ToString(), e);
        }
    }

    /// <summary>memberlist's readStream: handles the encrypt and compress wrappers and returns the inner message type and a reader positioned after it.</summary>
    private async Task<(MessageType, StreamMessageReader)> ReadStreamAsync(StreamMessageReader reader, CancellationToken ct)
    {
        var type = (MessageType)await reader.ReadByteAsync(ct).ConfigureAwait(false);
        if (type == MessageType.Encrypt)
        {
            if (_opt.Keyring is null)
                throw new StreamProtocolException(DropReason.EncryptedWithoutKey, "Remote state is encrypted and encryption is not configured");
            uint len = await reader.ReadUInt32BigEndianAsync(ct).ConfigureAwait(false);
            if (len > ProtocolConstants.MaxPushStateBytes)
                throw new StreamProtocolException(DropReason.Oversized, $"Remote node state is larger than limit ({len})");
            var ciphertext = await reader.ReadExactAsync((int)len, ct).ConfigureAwait(false);
            Span<byte> aad = stackalloc byte[5];
            aad[0] = (byte)MessageType.Encrypt;
            BinaryPrimitives.WriteUInt32BigEndian(aad[1..], len);
            var plain = PayloadCrypto.TryDecrypt(_opt.Keyring.Snapshot, ciphertext.Span, aad)
                ?? throw new StreamProtocolException(DropReason.DecryptionFailed, "No installed keys could decrypt the message");
            if (plain.Length < 1) throw new StreamProtocolException(DropReason.Truncated, "empty stream message");
            type = (MessageType)plain[0];
            reader = StreamMessageReader.FromMemory(plain.AsMemory(1));
        }
        else if (_opt.Keyring is not null && _opt.GossipVerifyIncoming)
        {
            throw new StreamProtocolException(DropReason.NotEncrypted, "Encryption is configured but remote state is not encrypted");
        }

        if (type == MessageType.Compress)
        {
            var value = await reader.ReadValueAsync(ct).ConfigureAwait(false);
            byte[] plain;
            try { plain = MessageCodec.Decompress(value.Span); }
            catch (InvalidDataException e) { throw new StreamProtocolException(DropReason.DecompressionFailed, e.Message); }
            type = (MessageType)plain[0];
            reader = StreamMessageReader.FromMemory(plain.AsMemory(1));
        }
        return (type, reader);
    }

    private async Task<(bool Join, List<PushNodeState> Nodes, ReadOnlyMemory<byte> User)> ReadRemoteStateAsync(StreamMessageReader reader, CancellationToken ct)
    {
        var header = Decode(await reader.ReadValueAsync(ct).ConfigureAwait(false), PushPullHeader.Read);
        if (header.Nodes < 0 || header.Nodes > ProtocolConstants.MaxPushPullNodes)
            throw new StreamProtocolException(DropReason.Oversized, $"push/pull with {header.Nodes} nodes");
        if (header.UserStateLen < 0 || header.UserStateLen > ProtocolConstants.MaxPushStateBytes)
            throw new StreamProtocolException(DropReason.Oversized, $"push/pull user state of {header.UserStateLen} bytes");
        var nodes = new List<PushNodeState>(Math.Min(header.Nodes, 1024));
        for (int i = 0; i < header.Nodes; i++)
        {
            var n = Decode(await reader.ReadValueAsync(ct).ConfigureAwait(false), PushNodeState.Read);
            if (n.Port == 0) n = n with { Port = (ushort)_transport.LocalEndPoint.Port };
            nodes.Add(n);
        }
        ReadOnlyMemory<byte> user = header.UserStateLen > 0 ? await reader.ReadExactAsync(header.UserStateLen, ct).ConfigureAwait(false) : default;
        return (header.Join, nodes, user);
    }

    private async Task SendLocalStateAsync(Stream s, bool join, CancellationToken ct)
    {
        var nodes = LocalNodeStates();
        byte[] user = [];
        if (_opt.State is { } sd)
        {
            try { user = sd.GetLocalState(join) ?? []; }
            catch (Exception e) { Log.DelegateFailed(_log, Name, e); }
        }
        var w = new MsgPackWriter(256 + nodes.Count * 96 + user.Length);
        w.WriteByte((byte)MessageType.PushPull);
        new PushPullHeader(nodes.Count, user.Length, join).Write(w);
        foreach (var n in nodes) n.Write(w);
        w.WriteRawBytes(user);
        await RawSendStreamAsync(s, w.ToArray(), ct).ConfigureAwait(false);
    }

    private void MergeRemoteState(bool join, List<PushNodeState> nodes, ReadOnlyMemory<byte> user)
    {
        lock (_stateLock)
        {
            VerifyProtocol(nodes);
            MergeState(nodes);
        }
        if (user.Length > 0 && _opt.State is { } sd)
        {
            try { sd.MergeRemoteState(user.Span, join); }
            catch (Exception e) { Log.DelegateFailed(_log, Name, e); }
        }
    }

    /// <summary>memberlist's pushPullNode: exchange full state with one node over TCP and merge.</summary>
    private async Task PushPullNodeAsync(IPEndPoint to, bool join, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct, _shutdown.Token);
        cts.CancelAfter(_opt.TcpTimeout);
        await using var s = await _transport.DialAsync(to, _opt.TcpTimeout, cts.Token).ConfigureAwait(false);
        await SendLocalStateAsync(s, join, cts.Token).ConfigureAwait(false);
        var (type, reader) = await ReadStreamAsync(new StreamMessageReader(s), cts.Token).ConfigureAwait(false);
        if (type == MessageType.Err)
        {
            var err = Decode(await reader.ReadValueAsync(cts.Token).ConfigureAwait(false), ErrRespMessage.Read);
            throw new IOException($"remote error: {err.Error}");
        }
        if (type != MessageType.PushPull)
            throw new StreamProtocolException(DropReason.UnknownMessageType, $"received invalid msgType ({(byte)type}), expected pushPullMsg");
        var (_, nodes, user) = await ReadRemoteStateAsync(reader, cts.Token).ConfigureAwait(false);
        MergeRemoteState(join, nodes, user);
    }

    private enum TcpPingResult
    {
        /// <summary>The node acked over TCP: it lives, only UDP fails.</summary>
        Acked,
        /// <summary>No ack within the time (timeout, reset, wrong answer): no evidence either way.</summary>
        NoAnswer,
        /// <summary>The connection was refused: the node's host answered that nothing listens on the gossip port.</summary>
        Refused,
    }

    /// <summary>The TCP fallback probe: Acked only if the node acked our ping within <paramref name="timeout"/>.</summary>
    private async Task<TcpPingResult> TcpPingAsync(IPEndPoint to, PingMessage ping, TimeSpan timeout, CancellationToken ct)
    {
        if (timeout <= TimeSpan.Zero) return TcpPingResult.NoAnswer;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            Stream s;
            try
            {
                s = await _transport.DialAsync(to, timeout, cts.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return TcpPingResult.Refused;
            }
            await using var _ = s.ConfigureAwait(false);
            await RawSendStreamAsync(s, MessageCodec.Encode(ping), cts.Token).ConfigureAwait(false);
            var (type, reader) = await ReadStreamAsync(new StreamMessageReader(s), cts.Token).ConfigureAwait(false);
            if (type != MessageType.AckResp) return TcpPingResult.NoAnswer;
            var ack = Decode(await reader.ReadValueAsync(cts.Token).ConfigureAwait(false), AckRespMessage.Read);
            return ack.SeqNo == ping.SeqNo ? TcpPingResult.Acked : TcpPingResult.NoAnswer;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return TcpPingResult.NoAnswer;
        }
    }
}
