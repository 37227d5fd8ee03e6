// The control plane of gossip mode: runs the replicated endpoint table (Membership/) next to a
// router and feeds it through the interface the router owns (IRemoteEndpointSink), so neither
// library references the other, and the agent runs wherever a sink does (the daemon, an embedder,
// a test double).
//
//   table event                                   → sink
//   ───────────────────────────────────────────────────────────────────────────────────────────────
//   remote endpoint Added / Updated               → SetRemoteEndpoint(network, MAC, IPv4, owner's VTEP:data port)
//     (Updated with another IP: the old neighbour entry is removed first)
//   remote endpoint Removed (deleted, owner failed
//     or left)                                    → RemoveRemoteEndpoint(network, MAC, IPv4)
//   network peers changed (complete flood list)   → SetFloodList(network, their VTEPs ∪ static peers)
//   member joined / updated / failed / left       → SetDynamicPeers(VTEPs of every live member with overlay meta)
//
// Network identity on the wire is the VNI in decimal ("4097"): it is what the data path keys on,
// so two hosts agree on a network exactly when VXLAN between them would. A record for a VNI this
// host does not serve is ignored (the table only reports networks this host joined, and it joins
// only the networks it has endpoints on — so broadcast reaches only hosts with endpoints).
//
// Local endpoints: the ones given at start are published before joining; PublishEndpoint and
// WithdrawEndpoint announce later ones at once. Withdrawing a network's last local endpoint leaves
// the network, so others stop flooding it here.
//
// Networks: the ones given at start, and more at run time with JoinNetwork (a network created while
// the daemon runs) and LeaveNetwork (one removed). JoinNetwork makes the VNI one of the agent's, so
// its records are relayed to the sink and endpoints on it can be published; the host takes part in
// the table's network — others add it to the flood list and send it the network's records — from
// the first local endpoint on, exactly as for a network given at start. LeaveNetwork withdraws the
// network's local endpoints, leaves the table's network and forgets the VNI.
//
// Threads: table events arrive on the table's one event task, membership events on the member's
// one event task; the sink is thread-safe (copy-on-write tables), so both call it directly. The
// join loop is one background task. Publish and withdraw may be called from any thread.

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using UserOverlay.Membership;
using UserOverlay.Membership.Table;
using UserOverlay.Router;

namespace UserOverlay.Control.Gossip;

/// <summary>A network as the agent knows it: the router's name for it and its VNI (the table's identity).</summary>
/// <param name="Name">The name the sink knows the network by (e.g. "blue").</param>
/// <param name="Vni">Its VXLAN network identifier.</param>
public sealed record GossipNetwork(string Name, uint Vni);

/// <summary>
/// What a <see cref="GossipAgent"/> needs: the member's options, the seeds, the sink it feeds, and
/// this host's part of the overlay (VTEP, networks, local endpoints, static peers).
/// <see cref="ForRouter"/> fills the host's part from a running router.
/// </summary>
public sealed record GossipAgentOptions
{
    /// <summary>Name, bind address, keyring and timings of the member (events are installed by the agent).</summary>
    public required MembershipOptions Membership { get; init; }

    /// <summary>Seed addresses (<c>host[:port]</c>); entries naming this member itself are skipped.</summary>
    public IReadOnlyList<string> Seeds { get; init; } = [];

    /// <summary>Where remote endpoints, flood lists and accepted peers go (a router, usually).</summary>
    public required IRemoteEndpointSink Sink { get; init; }

    /// <summary>Where other hosts' endpoint names go (the DNS responder's table), or null: they come and go with the endpoints' records.</summary>
    public IEndpointNameSink? NameSink { get; init; }

    /// <summary>This host's VTEP (address and VXLAN port), published in its node meta.</summary>
    public required VtepEndpoint Vtep { get; init; }

    /// <summary>The networks this host serves (name ↔ VNI). Records of other VNIs are ignored.</summary>
    public IReadOnlyList<GossipNetwork> Networks { get; init; } = [];

    /// <summary>The DNS names of a local endpoint published at start (<see cref="LocalEndpoints"/>), or null: none.</summary>
    public Func<LocalEndpointInfo, IReadOnlyList<string>?>? LocalNames { get; init; }

    /// <summary>Local endpoints published at start (more with <see cref="GossipAgent.PublishEndpoint"/>).</summary>
    public IReadOnlyList<LocalEndpointInfo> LocalEndpoints { get; init; } = [];

    /// <summary>Configured peers (e.g. a kernel VXLAN device): kept on every flood list.</summary>
    public IReadOnlyList<VtepEndpoint> StaticPeers { get; init; } = [];

    /// <summary>First wait between join attempts while no seed answers; doubles up to <see cref="JoinRetryMax"/> (each with ±20 % jitter).</summary>
    public TimeSpan JoinRetryMin { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between join attempts.</summary>
    public TimeSpan JoinRetryMax { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Options that feed <paramref name="router"/>: its VTEP, networks, current local endpoints and static peers.</summary>
    public static GossipAgentOptions ForRouter(OverlayRouter router, MembershipOptions membership, IReadOnlyList<string>? seeds = null)
    {
        ArgumentNullException.ThrowIfNull(router);
        var o = router.Options;
        return new GossipAgentOptions
        {
            Membership = membership,
            Seeds = seeds ?? [],
            Sink = router,
            Vtep = o.Underlay,
            Networks = [.. o.Networks.Select(n => new GossipNetwork(n.Name, n.Vni))],
            LocalEndpoints = router.LocalEndpoints,
            StaticPeers = o.Peers,
        };
    }
}

/// <summary>
/// Gossip mode's adapter: an <see cref="EndpointTable"/> whose events drive an
/// <see cref="IRemoteEndpointSink"/>. Start with <see cref="StartAsync"/>; on shutdown call
/// <see cref="LeaveAsync"/> (others drop this host at once) before <see cref="DisposeAsync"/>, and
/// both before the router stops. All public members are thread-safe.
/// </summary>
public sealed class GossipAgent : IEndpointTableObserver, IMembershipEvents, IAsyncDisposable
{
    private readonly GossipAgentOptions _opt;
    private readonly IRemoteEndpointSink _sink;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, string> _nameById = new(StringComparer.Ordinal);   // "4097" → "blue"; JoinNetwork/LeaveNetwork change it
    private readonly ConcurrentDictionary<(uint Vni, ulong Mac), LocalEndpointInfo> _local = new();
    private readonly Lock _localLock = new(); // publish and withdraw of one network do not interleave with its leave
    private readonly VtepEndpoint _self;
    private readonly VtepEndpoint[] _staticPeers;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _peersLock = new();
    private EndpointTable? _table;
    private VtepEndpoint[] _lastDynamicPeers = [];
    private Task _joinLoop = Task.CompletedTask;
    private volatile bool _joined;
    private int _disposed;

    private GossipAgent(GossipAgentOptions options, ILogger log)
    {
        _opt = options;
        _sink = options.Sink;
        _log = log;
        foreach (var n in options.Networks) _nameById[NetworkId(n.Vni)] = n.Name;
        _self = options.Vtep;
        _staticPeers = [.. options.StaticPeers];
    }

    /// <summary>The table's identifier of a network: its VNI in decimal.</summary>
    public static string NetworkId(uint vni) => vni.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The table (members, records).</summary>
    public EndpointTable Table => _table ?? throw new InvalidOperationException("not started");

    /// <summary>Seeds after removing this member's own address.</summary>
    public IReadOnlyList<string> Seeds { get; private set; } = [];

    /// <summary>True once a seed answered (or when there are no seeds).</summary>
    public bool Joined => _joined;

    /// <summary>The local endpoints published now (sorted by network, then MAC).</summary>
    public IReadOnlyList<LocalEndpointInfo> LocalEndpoints =>
        [.. _local.Values.OrderBy(e => e.Vni).ThenBy(e => e.Mac.Value)];

    /// <summary>
    /// Binds the gossip transport, publishes the initial local endpoints, and starts joining the
    /// seeds in the background (retrying until one answers; a seed that starts later is still
    /// joined). Throws <see cref="RouterException"/> with one sentence when the address cannot be bound.
    /// </summary>
    public static async Task<GossipAgent> StartAsync(GossipAgentOptions options, ILoggerFactory loggers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var agent = new GossipAgent(options, loggers.CreateLogger("UserOverlay.Gossip"));
        var mo = options.Membership with { Events = agent };
        try
        {
            agent._table = await EndpointTable.StartAsync(new EndpointTableOptions
            {
                Membership = mo,
                VtepAddress = options.Vtep.IPAddress,
                DataPort = options.Vtep.Port,
                Observer = agent,
            }, loggers, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            string at = $"{mo.BindAddress}:{mo.BindPort}";
            throw e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => new RouterException(RouterErrorCode.PortInUse,
                    $"cannot bind gossip to {at} (udp+tcp): the port is already in use (another useroverlay, serf or Docker node in this namespace?); set gossip.bind to another port", e),
                SocketError.AddressNotAvailable => new RouterException(RouterErrorCode.AddressNotAvailable,
                    $"cannot bind gossip to {at}: {mo.BindAddress} is not an address of any interface in this network namespace (gossip.bind is usually the underlay address)", e),
                _ => new RouterException(RouterErrorCode.SystemError, $"cannot bind gossip to {at}: {e.Message}", e),
            };
        }

        var table = agent._table;
        foreach (var e in options.LocalEndpoints) agent.PublishEndpoint(e, options.LocalNames?.Invoke(e));
        agent.RefreshDynamicPeers();

        agent.Seeds = options.Seeds.Where(s => !agent.IsSelf(s)).ToList();
        GossipLog.Started(agent._log, table.NodeName, table.Memberlist.AdvertiseEndPoint.ToString(), mo.Keyring is not null,
            table.Networks.Count, options.LocalEndpoints.Count);
        if (agent.Seeds.Count == 0)
        {
            agent._joined = true;
            GossipLog.NoSeeds(agent._log);
        }
        else
        {
            agent._joinLoop = Task.Run(() => agent.JoinLoopAsync(agent._stop.Token));
        }
        return agent;
    }

    /// <summary>
    /// Publishes (or updates) a local endpoint at once: the network's members learn it by gossip, and
    /// this host joins the network if it had no endpoint there. Throws <see cref="ArgumentException"/>
    /// when the endpoint's VNI is not one of the agent's networks or is known under another name.
    /// </summary>
    /// <param name="endpoint">The endpoint.</param>
    /// <param name="names">Its DNS names on the network (workload name, aliases), gossiped with it; null: none.</param>
    public void PublishEndpoint(LocalEndpointInfo endpoint, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        string id = NetworkId(endpoint.Vni);
        lock (_localLock)
        {
            if (!_nameById.TryGetValue(id, out string? name) || name != endpoint.Network)
                throw new ArgumentException($"network '{endpoint.Network}' (VNI {endpoint.Vni}) is not one of this agent's networks ({string.Join(", ", _nameById.Select(kv => $"{kv.Value} VNI {kv.Key}"))})", nameof(endpoint));
            _local[(endpoint.Vni, endpoint.Mac.Value)] = endpoint;
            Table.PublishEndpoint(id, endpoint.Mac.Value, VtepEndpoint.ToIPAddress(endpoint.Address), names);
        }
        GossipLog.EndpointPublished(_log, endpoint.Network, endpoint.Mac, VtepEndpoint.FormatAddress(endpoint.Address));
    }

    /// <summary>
    /// Withdraws a local endpoint at once (a tombstone is gossiped; others remove it from their FDB and
    /// neighbours). Withdrawing a network's last local endpoint leaves the network, so others drop this
    /// host from its flood list. Returns false when the endpoint was not published.
    /// </summary>
    public bool WithdrawEndpoint(uint vni, MacAddress mac)
    {
        string id = NetworkId(vni);
        LocalEndpointInfo? removed;
        lock (_localLock)
        {
            if (!_local.TryRemove((vni, mac.Value), out removed)) return false;
            Table.RemoveEndpoint(id, mac.Value);
            if (!_local.Keys.Any(k => k.Vni == vni)) Table.LeaveNetwork(id);
        }
        GossipLog.EndpointWithdrawn(_log, removed.Network, mac);
        return true;
    }

    /// <summary>
    /// Makes <paramref name="network"/> one of the agent's (a network created at run time): remote records of its VNI
    /// reach the sink from now on, and its endpoints can be published — the first one joins the table's network, so
    /// the network's members add this host to their flood lists and send it their records. Idempotent for the same
    /// name and VNI; throws <see cref="ArgumentException"/> when the VNI is already the agent's under another name.
    /// </summary>
    public void JoinNetwork(GossipNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        string id = NetworkId(network.Vni);
        lock (_localLock)
        {
            string name = _nameById.GetOrAdd(id, network.Name);
            if (name != network.Name)
                throw new ArgumentException($"VNI {network.Vni} is already network '{name}' here, so it cannot also be '{network.Name}'", nameof(network));
        }
        GossipLog.NetworkJoined(_log, network.Name, network.Vni);
    }

    /// <summary>
    /// Stops serving the network of <paramref name="vni"/> (a network removed at run time): its local endpoints are
    /// withdrawn (tombstones gossiped), the table's network is left (others drop this host from its flood list), and
    /// its records are ignored from now on. Returns false when the VNI was not one of the agent's.
    /// </summary>
    public bool LeaveNetwork(uint vni)
    {
        string id = NetworkId(vni);
        string? name;
        lock (_localLock)
        {
            if (!_nameById.TryRemove(id, out name)) return false;
            foreach (var key in _local.Keys.Where(k => k.Vni == vni).ToList())
            {
                _local.TryRemove(key, out _);
                Table.RemoveEndpoint(id, key.Mac);
            }
            // The table reports the network's remote records as removed, but on its event task, after the VNI is
            // forgotten here; so the sink is told now.
            foreach (var rec in Table.GetEndpoints(id).Where(r => r.OwnerNode != Table.NodeName))
            {
                _sink.RemoveRemoteEndpoint(name, new MacAddress(rec.Mac), ToIPv4(rec.Ip));
                _opt.NameSink?.RemoveNames(name, new MacAddress(rec.Mac));
            }
            Table.LeaveNetwork(id);
            _sink.SetFloodList(name, _staticPeers);
        }
        GossipLog.NetworkLeft(_log, name, vni);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="address"/> on the network of <paramref name="vni"/> is held by a live endpoint of another
    /// host, as the table knows it (records of that network gossiped to this host, while it takes part in it or before).
    /// False before start. O(records of the network).
    /// </summary>
    public bool IsRemoteAddress(uint vni, uint address)
    {
        if (_table is not { } t) return false;
        foreach (var r in t.GetEndpoints(NetworkId(vni)))
            if (r.OwnerNode != t.NodeName && ToIPv4(r.Ip) == address) return true;
        return false;
    }

    private bool IsSelf(string seed)
    {
        var (host, port) = SeedAddress.Split(seed);
        if (!IPAddress.TryParse(host, out var ip)) return false;
        var me = Table.Memberlist.AdvertiseEndPoint;
        return port == me.Port && (ip.Equals(me.Address) || ip.Equals(_opt.Membership.BindAddress));
    }

    private async Task JoinLoopAsync(CancellationToken ct)
    {
        var wait = _opt.JoinRetryMin;
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (int attempt = 1; !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                int n = await Table.JoinAsync(Seeds, ct).ConfigureAwait(false);
                _joined = true;
                GossipLog.Joined(_log, n, Seeds.Count, attempt, started.Elapsed.TotalSeconds, Table.Memberlist.NumMembers);
                return;
            }
            catch (MembershipJoinException e)
            {
                if (attempt == 1) GossipLog.JoinRetrying(_log, string.Join(", ", Seeds), e.Message, _opt.JoinRetryMax.TotalSeconds);
                else if (attempt % 12 == 0) GossipLog.StillNotJoined(_log, started.Elapsed.TotalSeconds, string.Join(", ", Seeds), e.Message);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                GossipLog.JoinError(_log, e);
            }
            // ±20 % jitter: hosts that booted together do not all hit the seed at the same instant.
            try { await Task.Delay(wait * (0.8 + 0.4 * Random.Shared.NextDouble()), ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, _opt.JoinRetryMax.Ticks));
        }
    }

    // ---- table events → router --------------------------------------------------------------------

    /// <inheritdoc/>
    public void OnEndpointChanged(EndpointChange change)
    {
        var rec = change.Record;
        if (!_nameById.TryGetValue(rec.NetworkId, out string? network)) return;
        var mac = new MacAddress(rec.Mac);
        switch (change.Kind)
        {
            case EndpointChangeKind.Added:
            case EndpointChangeKind.Updated:
                if (!TryVtep(rec, out var vtep)) return;
                if (change.Previous is { Ip: { } oldIp } && !oldIp.Equals(rec.Ip))
                    _sink.RemoveRemoteEndpoint(network, mac, ToIPv4(oldIp)); // the old address must stop being answered
                _sink.SetRemoteEndpoint(network, mac, ToIPv4(rec.Ip), vtep);
                if (_opt.NameSink is { } names)
                {
                    if (rec.Names is { Count: > 0 } n && ToIPv4(rec.Ip) is uint ip) names.SetNames(network, mac, ip, n);
                    else names.RemoveNames(network, mac);
                }
                GossipLog.EndpointSet(_log, change.Kind, network, mac, rec.Ip?.ToString() ?? "-", vtep, rec.OwnerNode);
                break;
            case EndpointChangeKind.Removed:
                _sink.RemoveRemoteEndpoint(network, mac, ToIPv4(rec.Ip));
                _opt.NameSink?.RemoveNames(network, mac);
                GossipLog.EndpointRemoved(_log, network, mac, rec.Ip?.ToString() ?? "-", rec.OwnerNode);
                break;
        }
    }

    /// <inheritdoc/>
    public void OnNetworkPeersChanged(string networkId, IReadOnlyList<NetworkPeer> peers)
    {
        if (!_nameById.TryGetValue(networkId, out string? network)) return;
        var vteps = new List<VtepEndpoint>(peers.Count + _staticPeers.Length);
        foreach (var p in peers)
            if (TryVtep(p.Vtep, p.DataPort, p.NodeName, out var v)) vteps.Add(v);
        vteps.AddRange(_staticPeers); // static peers (e.g. a kernel VXLAN device) keep getting broadcast
        _sink.SetFloodList(network, vteps);
        GossipLog.FloodList(_log, network, string.Join(", ", peers.Select(p => p.NodeName)));
        RefreshDynamicPeers();
    }

    // ---- membership events → accepted VTEPs ---------------------------------------------------------

    /// <inheritdoc/>
    public void OnJoin(MemberInfo member)
    {
        if (_table is null || member.Name == _table.NodeName) return;
        GossipLog.MemberJoined(_log, member.Name, member.EndPoint.ToString(), member.Incarnation);
        RefreshDynamicPeers();
    }

    /// <inheritdoc/>
    public void OnLeave(MemberInfo member)
    {
        if (_table is null || member.Name == _table.NodeName) return;
        if (member.State == MemberState.Left) GossipLog.MemberLeft(_log, member.Name, member.EndPoint.ToString());
        else GossipLog.MemberFailed(_log, member.Name, member.EndPoint.ToString());
        RefreshDynamicPeers();
    }

    /// <inheritdoc/>
    public void OnUpdate(MemberInfo member)
    {
        if (_table is null || member.Name == _table.NodeName) return;
        RefreshDynamicPeers();
    }

    /// <summary>VXLAN is accepted from the VTEP of every live member that publishes overlay meta (and from static peers, which the router keeps).</summary>
    private void RefreshDynamicPeers()
    {
        if (_table is null) return;
        lock (_peersLock) // two event tasks call this; the last computation must win
        {
            var vteps = new List<VtepEndpoint>();
            foreach (var (m, meta) in _table.GetOverlayMembers())
                if (m.Name != _table.NodeName && TryVtep(meta.VtepAddress, meta.DataPort, m.Name, out var v) && v.Address != _self.Address)
                    vteps.Add(v);
            var next = vteps.Distinct().OrderBy(v => v.Address).ThenBy(v => v.Port).ToArray();
            if (next.AsSpan().SequenceEqual(_lastDynamicPeers)) return; // most events (updates, flood-list changes) change nothing here
            _sink.SetDynamicPeers(next);
            _lastDynamicPeers = next;
        }
    }

    // ---- conversions --------------------------------------------------------------------------------

    /// <summary>The record's VTEP with the owner's data port (from its node meta; ours if the owner is unknown by now).</summary>
    private bool TryVtep(EndpointRecord rec, out VtepEndpoint vtep)
    {
        int port = _self.Port;
        if (_table?.Memberlist.GetMember(rec.OwnerNode) is { } m && OverlayNodeMeta.TryParse(m.Meta.Span, out var meta))
            port = meta!.DataPort;
        return TryVtep(rec.Vtep, port, rec.OwnerNode, out vtep);
    }

    private bool TryVtep(IPAddress address, int port, string node, out VtepEndpoint vtep)
    {
        vtep = default;
        if (address.AddressFamily != AddressFamily.InterNetwork || port is < 1 or > 65535)
        {
            GossipLog.UnusableVtep(_log, node, $"{address}:{port}");
            return false;
        }
        vtep = VtepEndpoint.From(address, port);
        return true;
    }

    private static uint? ToIPv4(IPAddress? ip) =>
        ip is { AddressFamily: AddressFamily.InterNetwork } ? VtepEndpoint.From(ip, 0).Address : null; // IPv6: no proxy ND yet

    // ---- gossip keys -------------------------------------------------------------------------------

    /// <summary>
    /// Replaces the running member's gossip keys at once (a cluster's control plane hands out and rotates the gossip key
    /// ring): <paramref name="primary"/> encrypts from the next message on, it and <paramref name="others"/> decrypt.
    /// Messages being sent or received finish with the keys they started with. To lose nothing, follow memberlist's
    /// order across the cluster: give every member the new key among <paramref name="others"/> first, then make it
    /// primary everywhere, and drop the old key only after every member switched. Thread-safe.
    /// </summary>
    /// <exception cref="InvalidOperationException">the agent was started without a keyring (gossip in plain text cannot
    /// become encrypted while it runs: its peers would drop it), or it is not started.</exception>
    /// <exception cref="ArgumentException">a key is not 16, 24 or 32 bytes; the keys are left as they were.</exception>
    public void SetKeys(ReadOnlySpan<byte> primary, IEnumerable<byte[]>? others = null)
    {
        var ring = Table.Memberlist.Options.Keyring ?? throw new InvalidOperationException(
            "gossip was started without encryption keys: start the agent with MembershipOptions.Keyring to rotate keys at run time");
        byte[][] rest = [.. others ?? []];
        ring.SetKeys(primary, rest);
        GossipLog.KeysSet(_log, Fingerprint(primary), ring.Count, string.Join(", ", rest.Select(k => Fingerprint(k))));
    }

    // 16 hex digits of SHA-256("UserOverlay gossip key fingerprint\0" ‖ key): tells keys apart in logs without revealing them.
    private static string Fingerprint(ReadOnlySpan<byte> key)
    {
        Span<byte> h = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData([.. "UserOverlay gossip key fingerprint\0"u8, .. key], h);
        return Convert.ToHexStringLower(h[..8]);
    }

    // ---- status ------------------------------------------------------------------------------------

    /// <summary>The member list for <c>GET /v1/members</c> and <c>useroverlay members</c>.</summary>
    public MembersResponse GetMembers() => MembersResponse.From(this, _nameById);

    // ---- shutdown ----------------------------------------------------------------------------------

    /// <summary>Leaves the cluster gracefully: others record this host as left and drop its endpoints at once. Waits at most <paramref name="timeout"/>.</summary>
    public async Task LeaveAsync(TimeSpan timeout)
    {
        if (_table is null) return;
        _stop.Cancel();
        try
        {
            await _table.LeaveAsync(timeout).ConfigureAwait(false);
            GossipLog.LeftCluster(_log, _table.NodeName);
        }
        catch (TimeoutException)
        {
            GossipLog.LeaveTimedOut(_log, timeout.TotalSeconds);
        }
    }

    /// <summary>Stops the member and the table (without leaving: call <see cref="LeaveAsync"/> first).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        try { await _joinLoop.ConfigureAwait(false); } catch (OperationCanceledException) { }
        if (_table is not null) await _table.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
