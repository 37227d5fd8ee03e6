// The table's records and attachments: local operations, queries, and the merge rules for remote versions.

using System.Net;

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    // ---- local operations -------------------------------------------------------------------------

    /// <summary>
    /// Participates in <paramref name="networkId"/>: others add this host to the network's flood list
    /// and send it the network's endpoint records. Existing remote records of the network are reported
    /// as Added, and the peers as a flood-list change. Idempotent.
    /// </summary>
    public void JoinNetwork(string networkId)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        lock (_lock) JoinNetworkLocked(networkId);
        _ = SyncNetworkAsync(networkId);
    }

    private void JoinNetworkLocked(string net)
    {
        if (!_joined.Add(net)) return;
        var att = new NetworkAttachment(NodeName, net, ++_clock, Left: false);
        _attachments[(NodeName, net)] = (att, Now);
        _nodeQueue.Queue(TableCodec.EncodeEvent(att), $"att:{NodeName}:{net}");
        foreach (var (_, (rec, _)) in _endpoints.Where(e => e.Key.Net == net))
            if (!rec.Deleted && rec.OwnerNode != NodeName) Emit(new EndpointChange(EndpointChangeKind.Added, rec, null));
        RecomputePeersLocked(net);
    }

    /// <summary>Stops participating: deletes this host's endpoints in the network, reports remote ones as Removed and an empty flood list.</summary>
    public void LeaveNetwork(string networkId)
    {
        lock (_lock)
        {
            if (!_joined.Remove(networkId)) return;
            foreach (var key in _endpoints.Keys.Where(k => k.Net == networkId).ToList())
            {
                var rec = _endpoints[key].Record;
                if (rec.Deleted) continue;
                if (rec.OwnerNode == NodeName) PublishLocked(rec with { Deleted = true, LamportTime = ++_clock });
                else Emit(new EndpointChange(EndpointChangeKind.Removed, rec, null));
            }
            var att = new NetworkAttachment(NodeName, networkId, ++_clock, Left: true);
            _attachments[(NodeName, networkId)] = (att, Now);
            _nodeQueue.Queue(TableCodec.EncodeEvent(att), $"att:{NodeName}:{networkId}");
            _lastPeers.Remove(networkId);
            Emit(networkId, []);
        }
    }

    /// <summary>
    /// Publishes (or updates) a local endpoint: MAC, optional IP, behind this host's VTEP. Joins the
    /// network if needed. Gossiped to the network's members and included in every push/pull.
    /// </summary>
    public EndpointRecord PublishEndpoint(string networkId, ulong mac, IPAddress? ip, IReadOnlyList<string>? names = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        if (mac > 0xFFFF_FFFF_FFFF) throw new ArgumentOutOfRangeException(nameof(mac), "a MAC has 48 bits");
        EndpointRecord rec;
        lock (_lock)
        {
            JoinNetworkLocked(networkId);
            rec = new EndpointRecord(networkId, mac, ip, _opt.VtepAddress, NodeName, ++_clock, Names: names is { Count: > 0 } ? [.. names] : null);
            PublishLocked(rec);
        }
        return rec;
    }

    /// <summary>Deletes a local endpoint (a tombstone is gossiped). False if this host does not own it.</summary>
    public bool RemoveEndpoint(string networkId, ulong mac)
    {
        lock (_lock)
        {
            if (!_endpoints.TryGetValue((networkId, mac), out var e) || e.Record.Deleted || e.Record.OwnerNode != NodeName) return false;
            PublishLocked(e.Record with { Deleted = true, LamportTime = ++_clock });
            return true;
        }
    }

    private void PublishLocked(EndpointRecord rec)
    {
        _endpoints[(rec.NetworkId, rec.Mac)] = (rec, Now);
        NetworkQueue(rec.NetworkId).Queue(TableCodec.EncodeEvent(rec), $"ep:{rec.NetworkId}:{rec.Mac}");
    }

    // ---- queries ----------------------------------------------------------------------------------

    /// <summary>Live endpoint records of a network (local and remote), sorted by MAC.</summary>
    public IReadOnlyList<EndpointRecord> GetEndpoints(string networkId)
    {
        lock (_lock)
            return _endpoints.Values.Select(e => e.Record).Where(r => r.NetworkId == networkId && !r.Deleted).OrderBy(r => r.Mac).ToList();
    }

    /// <summary>A live record by network and MAC, or null.</summary>
    public EndpointRecord? Lookup(string networkId, ulong mac)
    {
        lock (_lock)
            return _endpoints.TryGetValue((networkId, mac), out var e) && !e.Record.Deleted ? e.Record : null;
    }

    /// <summary>The flood list: other live hosts attached to the network, with their VTEP and data port.</summary>
    public IReadOnlyList<NetworkPeer> GetNetworkPeers(string networkId)
    {
        lock (_lock) return ComputePeersLocked(networkId);
    }

    /// <summary>Parsed overlay meta of every live member (including this one) that publishes it.</summary>
    public IReadOnlyList<(MemberInfo Member, OverlayNodeMeta Meta)> GetOverlayMembers() =>
        _ml.Members.Select(m => OverlayNodeMeta.TryParse(m.Meta.Span, out var meta) ? (m, meta!) : default)
            .Where(x => x.m is not null).ToList();

    // ---- remote events ----------------------------------------------------------------------------

    private bool IsLive(string node)
    {
        if (node == NodeName) return true;
        var s = _ml.GetMember(node)?.State;
        return s is MemberState.Alive or MemberState.Suspect;
    }

    private void ApplyAttachment(NetworkAttachment a, bool fromGossip)
    {
        if (a.LamportTime > _clock) _clock = a.LamportTime;
        if (a.Node == NodeName)
        {
            // Our own past, echoed back (e.g. after a restart): restate the truth with a newer time.
            bool joined = _joined.Contains(a.NetworkId);
            if (_attachments.TryGetValue((NodeName, a.NetworkId), out var mine) ? (a.LamportTime >= mine.Att.LamportTime && a.Left == joined) : !a.Left)
            {
                var fix = new NetworkAttachment(NodeName, a.NetworkId, ++_clock, Left: !joined);
                _attachments[(NodeName, a.NetworkId)] = (fix, Now);
                _nodeQueue.Queue(TableCodec.EncodeEvent(fix), $"att:{NodeName}:{a.NetworkId}");
            }
            return;
        }
        if (!IsLive(a.Node)) { DeferIfUnknown(a.Node, a); return; }
        bool known = _attachments.TryGetValue((a.Node, a.NetworkId), out var cur);
        if (known && a.LamportTime <= cur.Att.LamportTime) return;
        _attachments[(a.Node, a.NetworkId)] = (a, Now);
        // New attachments are passed on however we learned them (push/pull too): they are few (one per host
        // and network), and a host that learns of a new member of its network offers that member its records.
        _nodeQueue.Queue(TableCodec.EncodeEvent(a), $"att:{a.Node}:{a.NetworkId}");
        if (_joined.Contains(a.NetworkId))
        {
            RecomputePeersLocked(a.NetworkId);
            // A host newly in one of our networks may have missed our records (gossiped before we knew it
            // was a member there, e.g. in a join storm): offer ours again, so it learns them from their
            // owner now instead of at the next push/pull. The queue keeps one entry per record.
            if (!a.Left && (!known || cur.Att.Left))
            {
                RequeueOwnRecordsLocked(a.NetworkId);
                // Gossip is probabilistic: also exchange the whole table with the newcomer once, so the pair is
                // complete now rather than at the next periodic push/pull. One side of each pair initiates
                // (the lower name), and each pair at most once until one of them leaves.
                if (string.CompareOrdinal(NodeName, a.Node) < 0 && _synced.Add(a.Node)) _ = SyncWithAsync(a.Node);
            }
        }
    }

    /// <summary>Applies an attachment or an endpoint record (see <see cref="ApplyAttachment"/> and <see cref="ApplyEndpoint"/>). Under the lock.</summary>
    private void ApplyEvent(TableEvent e, bool fromGossip)
    {
        if (e.Attachment is { } a) ApplyAttachment(a, fromGossip);
        else if (e.Endpoint is { } r) ApplyEndpoint(r, fromGossip);
    }

    private void RequeueOwnRecordsLocked(string net)
    {
        foreach (var ((n, mac), (rec, _)) in _endpoints)
            if (n == net && rec.OwnerNode == NodeName)
                NetworkQueue(net).Queue(TableCodec.EncodeEvent(rec), $"ep:{net}:{mac}");
    }

    private void ApplyEndpoint(EndpointRecord r, bool fromGossip)
    {
        if (r.LamportTime > _clock) _clock = r.LamportTime;
        var key = (r.NetworkId, r.Mac);
        _endpoints.TryGetValue(key, out var cur);
        var existing = cur.Record;
        if (r.OwnerNode == NodeName)
        {
            // A version of our own record we do not have (stale, from before a restart): overrule it.
            if (existing is null || r.IsNewerThan(existing))
            {
                var fix = existing is { OwnerNode: var o } && o == NodeName
                    ? existing with { LamportTime = ++_clock }
                    : r with { Deleted = true, LamportTime = ++_clock };
                PublishLocked(fix);
            }
            return;
        }
        if (!IsLive(r.OwnerNode)) { DeferIfUnknown(r.OwnerNode, r); return; }
        if (existing is not null && !r.IsNewerThan(existing)) return;
        _endpoints[key] = (r, Now);
        if (fromGossip && _joined.Contains(r.NetworkId))
            NetworkQueue(r.NetworkId).Queue(TableCodec.EncodeEvent(r), $"ep:{r.NetworkId}:{r.Mac}");
        if (!_joined.Contains(r.NetworkId)) return;

        bool wasLive = existing is { Deleted: false } && existing.OwnerNode != NodeName;
        if (existing is { Deleted: false, OwnerNode: var prevOwner } && prevOwner == NodeName)
            wasLive = false; // someone took over a MAC we had: for us it is a new remote endpoint
        if (!r.Deleted && !wasLive) Emit(new EndpointChange(EndpointChangeKind.Added, r, null));
        else if (!r.Deleted && wasLive && (r.Vtep.Equals(existing!.Vtep) is false || !Equals(r.Ip, existing.Ip) || r.OwnerNode != existing.OwnerNode
            || !EndpointRecord.SameNames(r, existing)))
            Emit(new EndpointChange(EndpointChangeKind.Updated, r, existing));
        else if (r.Deleted && wasLive) Emit(new EndpointChange(EndpointChangeKind.Removed, existing!, null));
    }

    /// <summary>Most table events held back per unknown owner (the oldest beyond it are dropped; push/pull repairs).</summary>
    internal const int PendingLimit = 4096;

    /// <summary>Holds an event of an owner we have never heard of (not one we know failed or left: that is refused) until it joins.</summary>
    private void DeferIfUnknown(string node, TableEvent item)
    {
        if (_ml.GetMember(node) is not null) return;
        if (!_pending.TryGetValue(node, out var p)) _pending[node] = p = ([], Now);
        if (p.Items.Count >= PendingLimit) p.Items.RemoveAt(0);
        p.Items.Add(item);
    }
}
