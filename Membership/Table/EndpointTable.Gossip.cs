// Per-network gossip: one transmit-limited queue per network, sent to random members of that network,
// and the receiving side (user messages carrying batches of table events).

using System.Net;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    private TransmitLimitedQueue NetworkQueue(string net)
    {
        if (!_networkQueues.TryGetValue(net, out var q))
        {
            q = new TransmitLimitedQueue(() => NetworkSize(net), _opt.Membership.RetransmitMult);
            _networkQueues[net] = q;
        }
        return q;
    }

    // Members per network (peers + us), for the per-network retransmit limit. Kept outside the table
    // lock because queues call it under their own lock (lock order is table → queue, never back).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _networkSizes = new(StringComparer.Ordinal);

    private int NetworkSize(string net) => _networkSizes.TryGetValue(net, out int n) ? n : 1;

    /// <summary>Per network: send pending endpoint events to GossipNodes random members of that network.</summary>
    private async Task GossipLoopAsync()
    {
        var ct = _stop.Token;
        var interval = _opt.Membership.GossipInterval > TimeSpan.Zero ? _opt.Membership.GossipInterval : TimeSpan.FromMilliseconds(200);
        int limit = _opt.Membership.UdpBufferSize - 64 - (_opt.Membership.Keyring is null ? 0 : Security.PayloadCrypto.Overhead) - TableCodec.BatchOverhead;
        try
        {
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                List<(TransmitLimitedQueue Q, List<IPEndPoint> Targets)> work = [];
                lock (_lock)
                {
                    foreach (var (net, q) in _networkQueues)
                    {
                        if (q.Count == 0) continue;
                        var targets = ComputePeersLocked(net).Select(p => _ml.GetMember(p.NodeName)?.EndPoint).OfType<IPEndPoint>().ToList();
                        Shuffle(targets);
                        if (targets.Count > _opt.Membership.GossipNodes) targets.RemoveRange(_opt.Membership.GossipNodes, targets.Count - _opt.Membership.GossipNodes);
                        if (targets.Count > 0) work.Add((q, targets));
                    }
                }
                foreach (var (q, targets) in work)
                {
                    foreach (var to in targets)
                    {
                        var msgs = q.GetBroadcasts(0, limit);
                        if (msgs.Count == 0) break;
                        await _ml.SendBestEffortAsync(to, TableCodec.EncodeBatch(msgs), ct).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static void Shuffle<T>(List<T> l)
    {
        for (int i = l.Count - 1; i > 0; i--)
        {
            int j = Random.Shared.Next(i + 1);
            (l[i], l[j]) = (l[j], l[i]);
        }
    }

    private void OnUserMessage(ReadOnlySpan<byte> msg)
    {
        if (msg.Length < 2 || msg[0] != TableCodec.Magic) return;
        List<TableEvent> events;
        try { events = TableCodec.DecodeBatch(msg[1..]); }
        catch (MsgPackException) { Interlocked.Increment(ref _malformed); return; }
        lock (_lock)
        {
            foreach (var e in events) ApplyEvent(e, fromGossip: true);
        }
    }
}
