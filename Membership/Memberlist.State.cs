// The SWIM/Lifeguard state machine. Every method named *Node runs under _stateLock (callers take it);
// they queue broadcasts and events but never call the embedder or the network directly.

using System.Diagnostics;
using System.Net;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership;

public sealed partial class Memberlist
{
    // ---- probing ------------------------------------------------------------------------------

    /// <summary>One probe round: pick the next live node round-robin (reaping and reshuffling on wrap-around) and probe it.</summary>
    private async Task ProbeAsync(CancellationToken ct)
    {
        NodeState? target = null;
        lock (_stateLock)
        {
            int checks = 0;
            while (target is null)
            {
                if (checks >= _nodes.Count) return;
                if (_probeIndex >= _nodes.Count)
                {
                    ResetNodes();
                    _probeIndex = 0;
                    checks++;
                    continue;
                }
                var n = _nodes[_probeIndex++];
                if (n.Name == Name || n.DeadOrLeft)
                {
                    checks++;
                    continue;
                }
                target = Copy(n);
            }
        }
        await ProbeNodeAsync(target, ct).ConfigureAwait(false);
    }

    private static NodeState Copy(NodeState n) => new()
    {
        Name = n.Name,
        Addr = n.Addr,
        Port = n.Port,
        Meta = n.Meta,
        Incarnation = n.Incarnation,
        State = n.State,
        StateChange = n.StateChange,
        StateChangeUtc = n.StateChangeUtc,
        Vsn = n.Vsn,
    };

    /// <summary>Reaps dead/left nodes past GossipToTheDeadTime and shuffles the probe order.</summary>
    private void ResetNodes()
    {
        long now = Now;
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            var n = _nodes[i];
            if (n.DeadOrLeft && now - n.StateChange > (long)_opt.GossipToTheDeadTime.TotalMilliseconds)
            {
                if (n.State == MemberState.Dead) _reaped[n.Name] = (n.EndPoint, n.StateChange);
                _nodes.RemoveAt(i);
                _nodeMap.Remove(n.Name);
                if (_nodeTimers.Remove(n.Name, out var t)) t.Dispose();
            }
        }
        _numNodes = _nodes.Count;
        for (int i = _nodes.Count - 1; i > 0; i--)
        {
            int j = Random.Shared.Next(i + 1);
            (_nodes[i], _nodes[j]) = (_nodes[j], _nodes[i]);
        }
    }

    /// <summary>Probes one node: direct ping, then k indirect pings plus a TCP ping, then suspicion (memberlist's probeNode).</summary>
    private async Task ProbeNodeAsync(NodeState node, CancellationToken ct)
    {
        Interlocked.Increment(ref Stats._probes);
        var probeInterval = _awareness.ScaleTimeout(_opt.ProbeInterval);
        uint seq = NextSeqNo();
        var self = AdvertiseEndPoint;
        var ping = new PingMessage(seq, node.Name, AddressBytes(self.Address), (ushort)self.Port, Name);
        var handler = new AckHandler();
        RegisterAckHandler(seq, handler, probeInterval);
        long sent = Stopwatch.GetTimestamp();
        var deadline = TimeSpan.FromTicks(probeInterval.Ticks);
        int awarenessDelta = 0;
        try
        {
            if (node.State == MemberState.Alive)
            {
                await SendMsgAsync(node.EndPoint, MessageCodec.Encode(ping), ct).ConfigureAwait(false);
            }
            else
            {
                // Tack a suspect on so the node can refute as soon as possible.
                var compound = Compound.Make([MessageCodec.Encode(ping), MessageCodec.EncodeSuspect(new SuspectOrDeadMessage(node.Incarnation, node.Name, Name))]);
                await RawSendPacketAsync(node.EndPoint, node, compound, ct).ConfigureAwait(false);
            }
            awarenessDelta = -1;

            if (await WaitAsync(handler.Acked, _opt.ProbeTimeout, ct).ConfigureAwait(false))
            {
                NotifyPingComplete(node, sent, handler);
                return;
            }

            // Indirect probes through k live members, and a TCP ping to the node itself.
            Interlocked.Increment(ref Stats._indirectProbes);
            List<NodeState> peers;
            lock (_stateLock)
                peers = KRandomNodes(_opt.IndirectChecks, n => n.Name == Name || n.Name == node.Name || n.State != MemberState.Alive);
            int expectedNacks = 0;
            foreach (var peer in peers)
            {
                bool nack = peer.Vsn.ProtocolMax >= 4;
                if (nack) expectedNacks++;
                var ind = new IndirectPingMessage(seq, node.Addr, node.Port, node.Name, nack, AddressBytes(self.Address), (ushort)self.Port, Name);
                await SendMsgAsync(peer.EndPoint, MessageCodec.Encode(ind), ct).ConfigureAwait(false);
            }

            var remaining = deadline - Stopwatch.GetElapsedTime(sent);
            Task<TcpPingResult> fallback = !_opt.DisableTcpPings && node.Vsn.ProtocolMax >= 3
                ? TcpPingAsync(node.EndPoint, ping, remaining, ct)
                : Task.FromResult(TcpPingResult.NoAnswer);

            remaining = deadline - Stopwatch.GetElapsedTime(sent);
            if (await WaitAsync(handler.Acked, remaining, ct).ConfigureAwait(false))
            {
                NotifyPingComplete(node, sent, handler);
                return;
            }
            var tcp = await fallback.ConfigureAwait(false);
            if (tcp == TcpPingResult.Acked)
            {
                Interlocked.Increment(ref Stats._tcpFallbackRescues);
                Log.TcpOnly(_log, Name, node.Name);
                return;
            }

            // Lifeguard: missing nacks mean *we* may be the problem.
            int nacks = handler.Nacks;
            awarenessDelta = expectedNacks > 0 ? Math.Max(0, expectedNacks - nacks) : 1;
            Interlocked.Increment(ref Stats._probesFailed);
            bool refused = tcp == TcpPingResult.Refused && _opt.RefusedProbeSuspicionTimeout > TimeSpan.Zero;
            if (refused)
            {
                // Its host answered for it: nothing listens on its gossip port, so the process is gone
                // (a stopped, overloaded or cut-off member never refuses: see RefusedProbeSuspicionTimeout).
                // Our own health does not matter for this evidence.
                awarenessDelta = 0;
                Interlocked.Increment(ref Stats._probesRefused);
                Log.SuspectRefused(_log, Name, node.Name);
            }
            else
            {
                Log.SuspectNoAck(_log, Name, node.Name);
            }
            lock (_stateLock)
                SuspectNode(new SuspectOrDeadMessage(node.Incarnation, node.Name, Name), refused ? _opt.RefusedProbeSuspicionTimeout : null);
        }
        finally
        {
            _ackHandlers.TryRemove(new KeyValuePair<uint, AckHandler>(seq, handler));
            _awareness.ApplyDelta(awarenessDelta);
        }
    }

    private void NotifyPingComplete(NodeState node, long sent, AckHandler handler)
    {
        if (_opt.Ping is null) return;
        var rtt = Stopwatch.GetElapsedTime(sent, handler.AckTimestamp);
        try { _opt.Ping.OnPingComplete(node.ToInfo(), rtt, handler.Payload); }
        catch (Exception e) { Log.DelegateFailed(_log, Name, e); }
    }

    private static async Task<bool> WaitAsync(Task t, TimeSpan timeout, CancellationToken ct)
    {
        if (t.IsCompleted) return true;
        if (timeout <= TimeSpan.Zero) return false;
        try
        {
            await t.WaitAsync(timeout, ct).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Up to k random nodes not excluded. Call under _stateLock.</summary>
    private List<NodeState> KRandomNodes(int k, Func<NodeState, bool> exclude)
    {
        var candidates = _nodes.Where(n => !exclude(n)).ToList();
        for (int i = 0; i < Math.Min(k, candidates.Count); i++)
        {
            int j = Random.Shared.Next(i, candidates.Count);
            (candidates[i], candidates[j]) = (candidates[j], candidates[i]);
        }
        if (candidates.Count > k) candidates.RemoveRange(k, candidates.Count - k);
        return candidates.Select(Copy).ToList();
    }

    private int EstNumNodes => _numNodes;

    /// <summary>serf-style reconnect: a push/pull with one random failed member (dead in the table, or reaped but remembered).</summary>
    private async Task ReconnectAsync(CancellationToken ct)
    {
        IPEndPoint? target = null;
        lock (_stateLock)
        {
            long now = Now;
            long keep = (long)Math.Min(_opt.ReconnectTimeout.TotalMilliseconds, long.MaxValue / 2);
            foreach (var name in _reaped.Where(r => now - r.Value.FailedAt > keep || _nodeMap.ContainsKey(r.Key)).Select(r => r.Key).ToList())
                _reaped.Remove(name);
            var candidates = _nodes.Where(n => n.State == MemberState.Dead && now - n.StateChange <= keep).Select(n => n.EndPoint)
                .Concat(_reaped.Values.Select(r => r.EndPoint)).ToList();
            if (candidates.Count > 0) target = candidates[Random.Shared.Next(candidates.Count)];
        }
        if (target is null) return;
        try
        {
            await PushPullNodeAsync(target, join: false, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log.PushPullFailed(_log, Name, target.ToString(), e.Message);
        }
    }

    // ---- state transitions (call under _stateLock) ------------------------------------------------

    private void Broadcast(string node, byte[] msg, TaskCompletionSource? notify = null) =>
        _broadcasts.Queue(msg, "node:" + node, notify is null ? null : () => notify.TrySetResult());

    /// <summary>memberlist's aliveNode: learn a node, accept a newer incarnation, or refute one about us.</summary>
    private void AliveNode(AliveMessage a, TaskCompletionSource? notify, bool bootstrap)
    {
        if (_leaving && a.Node == Name) return;
        if (a.Vsn is { Length: >= 3 } v && (v[0] == 0 || v[1] == 0 || v[0] > v[1]))
        {
            Drops.Increment(DropReason.InvalidAlive);
            return;
        }

        bool updatesNode = false;
        if (!_nodeMap.TryGetValue(a.Node, out var state))
        {
            state = new NodeState { Name = a.Node, Addr = a.Addr, Port = a.Port, Meta = a.Meta ?? [], State = MemberState.Dead };
            if (a.Vsn is { Length: >= 6 }) state.Vsn = ProtocolVersions.FromVsn(a.Vsn);
            _nodeMap[a.Node] = state;
            // Insert at a random offset so that a new node is probed at a random point of the round.
            int n = _nodes.Count;
            int offset = n == 0 ? 0 : Random.Shared.Next(n + 1);
            _nodes.Add(state);
            (_nodes[offset], _nodes[n]) = (_nodes[n], _nodes[offset]);
            _numNodes = _nodes.Count;
        }
        else if (!state.Addr.AsSpan().SequenceEqual(a.Addr) || state.Port != a.Port)
        {
            bool canReclaim = _opt.DeadNodeReclaimTime > TimeSpan.Zero && Now - state.StateChange > (long)_opt.DeadNodeReclaimTime.TotalMilliseconds;
            if (state.State == MemberState.Left || (state.State == MemberState.Dead && canReclaim))
            {
                updatesNode = true;
            }
            else
            {
                Log.Conflict(_log, Name, a.Node, $"{new IPAddress(state.Addr)}:{state.Port}", $"{new IPAddress(a.Addr)}:{a.Port}");
                return;
            }
        }

        bool isLocal = state.Name == Name;
        if (a.Incarnation <= state.Incarnation && !isLocal && !updatesNode) return;
        if (a.Incarnation < state.Incarnation && isLocal) return;

        if (_nodeTimers.Remove(a.Node, out var timer)) timer.Dispose();

        var oldState = state.State;
        var oldMeta = state.Meta;

        if (!bootstrap && isLocal)
        {
            var versions = state.Vsn.ToVsn();
            if (a.Incarnation == state.Incarnation && (a.Meta ?? []).AsSpan().SequenceEqual(state.Meta) && (a.Vsn ?? []).AsSpan().SequenceEqual(versions))
                return;
            Refute(state, a.Incarnation);
            Log.Refuting(_log, Name, "alive", a.Node);
            return;
        }

        Broadcast(a.Node, MessageCodec.Encode(a), notify);
        if (a.Vsn is { Length: > 0 }) state.Vsn = ProtocolVersions.FromVsn(a.Vsn);
        state.Incarnation = a.Incarnation;
        state.Meta = a.Meta ?? [];
        state.Addr = a.Addr;
        state.Port = a.Port;
        if (state.State != MemberState.Alive) state.SetState(MemberState.Alive);

        if (oldState is MemberState.Dead or MemberState.Left)
        {
            var info = state.ToInfo();
            Log.NodeJoined(_log, Name, info.Name, $"{info.Address}:{info.Port}");
            if (_opt.Events is { } ev) QueueEvent(() => ev.OnJoin(info));
        }
        else if (!oldMeta.AsSpan().SequenceEqual(state.Meta))
        {
            var info = state.ToInfo();
            if (_opt.Events is { } ev) QueueEvent(() => ev.OnUpdate(info));
        }
    }

    /// <summary>
    /// memberlist's suspectNode: start (or confirm) suspicion, or refute one about us. With
    /// <paramref name="evidence"/> (our own TCP probe was refused) the suspicion ends within that time.
    /// </summary>
    private void SuspectNode(SuspectOrDeadMessage s, TimeSpan? evidence = null)
    {
        if (!_nodeMap.TryGetValue(s.Node, out var state)) return;
        if (s.Incarnation < state.Incarnation)
        {
            if (state.Name == Name) Reannounce(state);
            return;
        }

        if (_nodeTimers.TryGetValue(s.Node, out var timer))
        {
            if (timer.Confirm(s.From)) Broadcast(s.Node, MessageCodec.EncodeSuspect(s));
            if (evidence is { } within) timer.EndWithin(within);
            return;
        }
        if (state.State != MemberState.Alive) return;

        if (state.Name == Name)
        {
            Refute(state, s.Incarnation);
            Log.Refuting(_log, Name, "suspect", s.From);
            return;
        }
        Broadcast(s.Node, MessageCodec.EncodeSuspect(s));

        state.Incarnation = s.Incarnation;
        state.SetState(MemberState.Suspect);
        Interlocked.Increment(ref Stats._suspicionsStarted);
        long changeTime = state.StateChange;

        // Expect k = SuspicionMult − 2 confirmations (none if the cluster is too small), so the nominal
        // timeout is hit about two probe intervals short of what the multiplier alone would give.
        int k = _opt.SuspicionMult - 2;
        int n = EstNumNodes;
        if (n - 2 < k) k = 0;
        var min = Scaling.SuspicionTimeout(_opt.SuspicionMult, n, _opt.ProbeInterval);
        var max = min * _opt.SuspicionMaxTimeoutMult;
        string name = s.Node;
        var suspicion = new Suspicion(s.From, k, min, max, confirmations =>
        {
            lock (_stateLock)
            {
                if (IsShutdown) return;
                if (_nodeMap.TryGetValue(name, out var st) && st.State == MemberState.Suspect && st.StateChange == changeTime)
                {
                    Log.MarkedDead(_log, Name, name, confirmations);
                    DeadNode(new SuspectOrDeadMessage(st.Incarnation, name, Name));
                }
            }
        });
        _nodeTimers[name] = suspicion;
        if (evidence is { } end) suspicion.EndWithin(end);
    }

    /// <summary>memberlist's deadNode: mark dead (or left when From == Node), or refute one about us.</summary>
    private void DeadNode(SuspectOrDeadMessage d)
    {
        if (!_nodeMap.TryGetValue(d.Node, out var state)) return;
        if (d.Incarnation < state.Incarnation)
        {
            if (state.Name == Name && !_leaving) Reannounce(state);
            return;
        }
        if (_nodeTimers.Remove(d.Node, out var timer)) timer.Dispose();
        if (state.DeadOrLeft) return;

        if (state.Name == Name)
        {
            if (!_leaving)
            {
                Refute(state, d.Incarnation);
                Log.Refuting(_log, Name, "dead", d.From);
                return;
            }
            Broadcast(d.Node, MessageCodec.EncodeDead(d), _leaveBroadcast);
        }
        else
        {
            Broadcast(d.Node, MessageCodec.EncodeDead(d));
        }

        state.Incarnation = d.Incarnation;
        state.SetState(d.Node == d.From ? MemberState.Left : MemberState.Dead);
        if (state.State == MemberState.Dead) Interlocked.Increment(ref Stats._declaredDead);
        var info = state.ToInfo();
        Log.NodeGone(_log, Name, info.Name, info.State);
        if (_opt.Events is { } ev) QueueEvent(() => ev.OnLeave(info));
    }

    /// <summary>
    /// An accusation about us at an incarnation we already refuted: its sender missed our refutation
    /// (lost under packet loss) and would otherwise wait out its suspicion alone and declare us dead.
    /// memberlist ignores it; we gossip our current alive again (no new incarnation, no health cost),
    /// which only a member behind on us accepts.
    /// </summary>
    private void Reannounce(NodeState me) =>
        Broadcast(me.Name, MessageCodec.Encode(new AliveMessage(me.Incarnation, me.Name, me.Addr, me.Port, me.Meta, me.Vsn.ToVsn())));

    /// <summary>Beats an accusation about us with a higher incarnation, and counts it against our health.</summary>
    private void Refute(NodeState me, uint accusedInc)
    {
        uint inc = NextIncarnation();
        if (accusedInc >= inc) inc = SkipIncarnation(accusedInc - inc + 1);
        me.Incarnation = inc;
        _awareness.ApplyDelta(1);
        Interlocked.Increment(ref Stats._refutations);
        var a = new AliveMessage(inc, me.Name, me.Addr, me.Port, me.Meta, me.Vsn.ToVsn());
        Broadcast(me.Name, MessageCodec.Encode(a));
    }

    // ---- gossip ---------------------------------------------------------------------------------

    /// <summary>Sends pending broadcasts to GossipNodes random members (live, suspect, or recently dead).</summary>
    private async Task GossipAsync(CancellationToken ct)
    {
        List<NodeState> targets;
        long now = Now;
        long deadWindow = (long)_opt.GossipToTheDeadTime.TotalMilliseconds;
        lock (_stateLock)
        {
            targets = KRandomNodes(_opt.GossipNodes, n =>
                n.Name == Name || n.State switch
                {
                    MemberState.Alive or MemberState.Suspect => false,
                    MemberState.Dead => now - n.StateChange > deadWindow,
                    _ => true,
                });
        }
        int bytesAvail = _opt.UdpBufferSize - ProtocolConstants.CompoundHeaderOverhead - (EncryptOutgoing ? Security.PayloadCrypto.Overhead : 0);
        foreach (var node in targets)
        {
            var msgs = GetBroadcasts(ProtocolConstants.CompoundOverhead, bytesAvail);
            if (msgs.Count == 0) return;
            if (msgs.Count == 1)
            {
                await RawSendPacketAsync(node.EndPoint, node, msgs[0], ct).ConfigureAwait(false);
            }
            else
            {
                foreach (var c in Compound.MakeMany(msgs))
                    await RawSendPacketAsync(node.EndPoint, node, c, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>memberlist's broadcasts first, then the embedder's in the space left.</summary>
    private List<byte[]> GetBroadcasts(int overhead, int limit)
    {
        var toSend = new List<byte[]>(_broadcasts.GetBroadcasts(overhead, limit));
        if (_opt.Broadcasts is { } src)
        {
            int used = toSend.Sum(m => m.Length + overhead);
            int avail = limit - used;
            if (avail > overhead + ProtocolConstants.UserMsgOverhead)
            {
                IReadOnlyList<byte[]> user;
                try { user = src.GetBroadcasts(overhead + ProtocolConstants.UserMsgOverhead, avail); }
                catch (Exception e) { Log.DelegateFailed(_log, Name, e); user = []; }
                foreach (var m in user) toSend.Add(MessageCodec.EncodeUserPacket(m));
            }
        }
        return toSend;
    }

    // ---- push/pull --------------------------------------------------------------------------------

    private async Task PeriodicPushPullAsync(CancellationToken ct)
    {
        List<NodeState> nodes;
        lock (_stateLock)
            nodes = KRandomNodes(1, n => n.Name == Name || n.State != MemberState.Alive);
        if (nodes.Count == 0) return;
        try
        {
            await PushPullNodeAsync(nodes[0].EndPoint, join: false, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log.PushPullFailed(_log, Name, nodes[0].Name, e.Message);
        }
    }

    /// <summary>memberlist's verifyProtocol: every live node's current versions must lie within every live node's range.</summary>
    private void VerifyProtocol(IReadOnlyList<PushNodeState> remote)
    {
        int maxpmin = 0, minpmax = 255, maxdmin = 0, mindmax = 255;
        foreach (var rn in remote)
        {
            if (rn.State != MemberState.Alive || rn.Vsn is not { Length: >= 6 } v) continue;
            maxpmin = Math.Max(maxpmin, v[0]); minpmax = Math.Min(minpmax, v[1]);
            maxdmin = Math.Max(maxdmin, v[3]); mindmax = Math.Min(mindmax, v[4]);
        }
        foreach (var n in _nodes)
        {
            if (n.State != MemberState.Alive) continue;
            maxpmin = Math.Max(maxpmin, n.Vsn.ProtocolMin); minpmax = Math.Min(minpmax, n.Vsn.ProtocolMax);
            maxdmin = Math.Max(maxdmin, n.Vsn.DelegateMin); mindmax = Math.Min(mindmax, n.Vsn.DelegateMax);
        }
        foreach (var rn in remote)
        {
            int pcur = 0, dcur = 0;
            if (rn.Vsn is { Length: >= 6 } v) { pcur = v[2]; dcur = v[5]; }
            if (pcur < maxpmin || pcur > minpmax)
                throw new Transport.StreamProtocolException(DropReason.IncompatibleProtocol, $"Node '{rn.Name}' protocol version ({pcur}) is incompatible: [{maxpmin}, {minpmax}]");
            if (dcur < maxdmin || dcur > mindmax)
                throw new Transport.StreamProtocolException(DropReason.IncompatibleProtocol, $"Node '{rn.Name}' delegate protocol version ({dcur}) is incompatible: [{maxdmin}, {mindmax}]");
        }
        foreach (var n in _nodes)
        {
            if (n.Vsn.ProtocolCurrent < maxpmin || n.Vsn.ProtocolCurrent > minpmax)
                throw new Transport.StreamProtocolException(DropReason.IncompatibleProtocol, $"Node '{n.Name}' protocol version ({n.Vsn.ProtocolCurrent}) is incompatible: [{maxpmin}, {minpmax}]");
            if (n.Vsn.DelegateCurrent < maxdmin || n.Vsn.DelegateCurrent > mindmax)
                throw new Transport.StreamProtocolException(DropReason.IncompatibleProtocol, $"Node '{n.Name}' delegate protocol version ({n.Vsn.DelegateCurrent}) is incompatible: [{maxdmin}, {mindmax}]");
        }
    }

    /// <summary>Merges a remote node list (memberlist's mergeState): a remote "dead" only makes us suspect.</summary>
    private void MergeState(IReadOnlyList<PushNodeState> remote)
    {
        foreach (var r in remote)
        {
            switch (r.State)
            {
                case MemberState.Alive:
                    if (r.Addr.Length is not (4 or 16) || (r.Meta?.Length ?? 0) > ProtocolConstants.MetaMaxSize)
                    {
                        Drops.Increment(DropReason.InvalidAlive);
                        break;
                    }
                    AliveNode(new AliveMessage(r.Incarnation, r.Name, r.Addr, r.Port, r.Meta, r.Vsn), null, bootstrap: false);
                    break;
                case MemberState.Left:
                    DeadNode(new SuspectOrDeadMessage(r.Incarnation, r.Name, r.Name));
                    break;
                case MemberState.Dead:
                case MemberState.Suspect:
                    SuspectNode(new SuspectOrDeadMessage(r.Incarnation, r.Name, Name));
                    break;
            }
        }
    }

    private List<PushNodeState> LocalNodeStates()
    {
        lock (_stateLock)
            return _nodes.Select(n => new PushNodeState(n.Name, n.Addr, n.Port, n.Meta, n.Incarnation, n.State, n.Vsn.ToVsn())).ToList();
    }
}
