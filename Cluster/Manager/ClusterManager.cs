using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Ipam;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Manager;

/// <summary>Settings of a <see cref="ClusterManager"/>.</summary>
public sealed record ClusterManagerOptions
{
    /// <summary>The clock (creation times, key ages).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>How many keys a ring keeps (swarm keeps 3).</summary>
    public int KeyRingSize { get; init; } = 3;

    /// <summary>How many times an operation retries a compare-and-swap another manager won.</summary>
    public int MaxConflictRetries { get; init; } = 64;

    /// <summary>The largest MTU the data path carries (for network validation).</summary>
    public int MaxMtu { get; init; } = Constants.MaxMtu;
}

/// <summary>What <c>swarm init</c> decided, for <see cref="ClusterManager.InitializeAsync"/>.</summary>
public sealed record ClusterInitSpec
{
    /// <summary>The cluster record (CA, tokens, pools, ports); the caller made the CA and the tokens.</summary>
    public required ClusterInfo Info { get; init; }

    /// <summary>The first manager.</summary>
    public required NodeRecord FirstNode { get; init; }
}

/// <summary>What a joining node says about itself (its certificate request carries the key).</summary>
/// <param name="Hostname">Its host name (unique in the cluster).</param>
/// <param name="ControlAddress">Where its control API is reached ("IP:PORT").</param>
/// <param name="DataPathAddress">Its VTEP address.</param>
public sealed record NodeAdmission(string Hostname, string ControlAddress, string DataPathAddress);

/// <summary>What an endpoint asks of the cluster's IPAM.</summary>
public sealed record AllocationRequest
{
    /// <summary>The network, by name or id (or a unique id prefix).</summary>
    public required string Network { get; init; }

    /// <summary>The node attaching it.</summary>
    public required string NodeId { get; init; }

    /// <summary>The endpoint's id on that node.</summary>
    public required string EndpointId { get; init; }

    /// <summary>The endpoint's (workload's) name.</summary>
    public required string Name { get; init; }

    /// <summary>A fixed address (<c>--ip</c>), or null for the next free one.</summary>
    public string? Address { get; init; }

    /// <summary>A fixed MAC (<c>--mac</c>), or null to derive it from the address.</summary>
    public string? Mac { get; init; }

    /// <summary>False for endpoints declared in configuration: only those may join a network that is not attachable.</summary>
    public bool AdHoc { get; init; } = true;
}

/// <summary>
/// The managers' operations on the cluster's state: init, admitting nodes, node roles and removal, cluster-wide
/// networks with VNI and subnet allocation, the cluster's IPAM and the key rings — each a transaction on the
/// replicated store (<see cref="IClusterStore"/>), so any manager may serve any request and two managers racing on
/// the same name, VNI, subnet or address cannot both win: the loser re-reads and retries, or gets the conflict.
/// <para>
/// Errors are <see cref="ControlException"/>s with the network model's codes (the control API maps them as it does
/// for one host); the store's <see cref="StoreException"/> propagates when it refuses (no quorum). Thread-safety: all
/// members may be called concurrently; nothing is cached (the store is the state).
/// </para>
/// </summary>
public sealed class ClusterManager(IClusterStore store, ClusterManagerOptions? options = null)
{
    private readonly ClusterManagerOptions _options = options ?? new ClusterManagerOptions();

    /// <summary>The store.</summary>
    public IClusterStore Store => store;

    /// <summary>
    /// Makes the cluster: its record, the first manager and fresh key rings, in one transaction; refused
    /// (<see cref="ControlErrorCodes.Conflict"/>) when the store already holds a cluster.
    /// </summary>
    public async Task InitializeAsync(ClusterInitSpec spec, CancellationToken cancellationToken = default)
    {
        if (spec.FirstNode.Role != NodeRole.Manager)
            throw ControlException.Invalid("role", "the first node of a cluster is a manager");
        var now = _options.Time.GetUtcNow();
        var result = await store.TxnAsync(new TxnRequest(
            [Compare.Missing(ClusterKeys.Info)],
            [
                Op.Put(ClusterKeys.Info, Encode(spec.Info, ClusterJson.Default.ClusterInfo)),
                Op.Put(ClusterKeys.Node(spec.FirstNode.Id), Encode(spec.FirstNode, ClusterJson.Default.NodeRecord)),
                Op.Put(ClusterKeys.NodeName(spec.FirstNode.Hostname), Encoding.UTF8.GetBytes(spec.FirstNode.Id)),
                Op.Put(ClusterKeys.KeyRing(KeyRing.Gossip), Encode(NewRing(KeyRing.Gossip, now), ClusterJson.Default.KeyRing)),
                Op.Put(ClusterKeys.KeyRing(KeyRing.Ipsec), Encode(NewRing(KeyRing.Ipsec, now), ClusterJson.Default.KeyRing)),
            ]), cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
            throw ControlException.Conflicting("cluster", $"this store ({store.Location}) already holds a cluster; leave it first (swarm leave --force)");
    }

    /// <summary>The cluster's record, or null when the store holds none (not initialised).</summary>
    public async Task<ClusterInfo?> GetInfoAsync(CancellationToken cancellationToken = default)
    {
        var r = await store.GetAsync(ClusterKeys.Info, cancellationToken).ConfigureAwait(false);
        return r.Kvs.Count == 0 ? null : Decode(r.Kvs[0], ClusterJson.Default.ClusterInfo);
    }

    /// <summary>
    /// Admits a node that presented <paramref name="token"/>: compares it in constant time with both current tokens
    /// (which one matches sets the role), then records the node under a new id. A token that matches neither is
    /// refused with <see cref="ControlErrorCodes.PermissionDenied"/> and nothing is recorded; a host name already in
    /// the cluster is refused with <see cref="ControlErrorCodes.Conflict"/> (remove the old node first).
    /// </summary>
    public async Task<NodeRecord> AdmitAsync(string token, NodeAdmission admission, CancellationToken cancellationToken = default)
    {
        var info = await RequireInfoAsync(cancellationToken).ConfigureAwait(false);
        NodeRole role;
        if (FixedTimeEquals(token, info.Info.ManagerToken)) role = NodeRole.Manager;
        else if (FixedTimeEquals(token, info.Info.WorkerToken)) role = NodeRole.Worker;
        else throw new ControlException(ControlErrorCodes.PermissionDenied,
            "the join token is not valid for this cluster (it may have been rotated: ask a manager for `swarm join-token worker|manager`)", "token");
        if (string.IsNullOrWhiteSpace(admission.Hostname) || admission.Hostname.Any(char.IsControl) || admission.Hostname.Length > 253)
            throw ControlException.Invalid("hostname", $"'{ControlException.Printable(admission.Hostname ?? "")}' is not a valid host name");
        for (int attempt = 0; ; attempt++)
        {
            var taken = await store.GetAsync(ClusterKeys.NodeName(admission.Hostname), cancellationToken).ConfigureAwait(false);
            if (taken.Kvs.Count > 0)
            {
                string otherId = Encoding.UTF8.GetString(taken.Kvs[0].Value);
                throw ControlException.Conflicting("hostname",
                    $"a node named '{admission.Hostname}' is already in the cluster (id {ObjectIds.Short(otherId)}); remove it first (node rm)");
            }
            var node = new NodeRecord
            {
                Id = NewNodeId(),
                Hostname = admission.Hostname,
                Role = role,
                ControlAddress = admission.ControlAddress,
                DataPathAddress = admission.DataPathAddress,
                Joined = _options.Time.GetUtcNow(),
            };
            // The token is compared again at apply time (the cluster record unchanged): a rotation between the read
            // and the write refuses the join.
            var r = await store.TxnAsync(new TxnRequest(
                [
                    Compare.ModifiedAt(ClusterKeys.Info, info.Revision),
                    Compare.Missing(ClusterKeys.Node(node.Id)),
                    Compare.Missing(ClusterKeys.NodeName(node.Hostname)),
                ],
                [
                    Op.Put(ClusterKeys.Node(node.Id), Encode(node, ClusterJson.Default.NodeRecord)),
                    Op.Put(ClusterKeys.NodeName(node.Hostname), Encoding.UTF8.GetBytes(node.Id)),
                ]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return node;
            Retry(attempt, "node");
            info = await RequireInfoAsync(cancellationToken).ConfigureAwait(false);
            if (!FixedTimeEquals(token, info.Info.TokenFor(role)))
                throw new ControlException(ControlErrorCodes.PermissionDenied, "the join token was rotated while the node joined; ask a manager for the new one", "token");
        }
    }

    /// <summary>Replaces the join token of <paramref name="role"/> with <paramref name="newToken"/>; nodes already joined are unaffected.</summary>
    public Task<ClusterInfo> RotateTokenAsync(NodeRole role, string newToken, CancellationToken cancellationToken = default) =>
        UpdateInfoAsync(i => role == NodeRole.Manager ? i with { ManagerToken = newToken } : i with { WorkerToken = newToken }, cancellationToken);

    /// <summary>The nodes, by host name.</summary>
    public async Task<IReadOnlyList<NodeRecord>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        var r = await store.RangeAsync(ClusterKeys.Nodes, cancellationToken: cancellationToken).ConfigureAwait(false);
        return [.. r.Kvs.Select(kv => Decode(kv, ClusterJson.Default.NodeRecord)).OrderBy(n => n.Hostname, StringComparer.Ordinal)];
    }

    /// <summary>A node by id, unique id prefix or host name; <see cref="ControlErrorCodes.NotFound"/> otherwise.</summary>
    public async Task<NodeRecord> GetNodeAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        var nodes = await ListNodesAsync(cancellationToken).ConfigureAwait(false);
        return Resolve(nodes, idOrName, n => n.Id, n => n.Hostname, "node");
    }

    /// <summary>
    /// Changes a node's role (promote, demote). Demoting the last manager is refused: the cluster would have nobody to
    /// keep its state.
    /// </summary>
    public async Task<NodeRecord> SetRoleAsync(string idOrName, NodeRole role, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var nodes = await store.RangeAsync(ClusterKeys.Nodes, cancellationToken: cancellationToken).ConfigureAwait(false);
            var all = nodes.Kvs.Select(kv => Decode(kv, ClusterJson.Default.NodeRecord)).ToList();
            var node = Resolve(all, idOrName, n => n.Id, n => n.Hostname, "node");
            if (node.Role == role) return node;
            if (role == NodeRole.Worker && all.Count(n => n.Role == NodeRole.Manager) == 1)
                throw ControlException.Conflicting("node", $"'{node.Hostname}' is the last manager; promote another node first");
            var changed = node with { Role = role };
            var r = await store.TxnAsync(new TxnRequest(NodesUnchanged(nodes),
                [Op.Put(ClusterKeys.Node(node.Id), Encode(changed, ClusterJson.Default.NodeRecord))]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return changed;
            Retry(attempt, "node");
        }
    }

    /// <summary>
    /// Removes a node and releases every address its endpoints held, in one transaction. A manager must be demoted
    /// first (as swarm asks), unless <paramref name="force"/>; the last manager never.
    /// </summary>
    public async Task<NodeRecord> RemoveNodeAsync(string idOrName, bool force = false, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var nodes = await store.RangeAsync(ClusterKeys.Nodes, cancellationToken: cancellationToken).ConfigureAwait(false);
            var all = nodes.Kvs.Select(kv => Decode(kv, ClusterJson.Default.NodeRecord)).ToList();
            var node = Resolve(all, idOrName, n => n.Id, n => n.Hostname, "node");
            if (node.Role == NodeRole.Manager)
            {
                if (all.Count(n => n.Role == NodeRole.Manager) == 1)
                    throw ControlException.Conflicting("node", $"'{node.Hostname}' is the last manager; the cluster cannot remove it (swarm leave --force on it ends the cluster)");
                if (!force)
                    throw ControlException.Conflicting("node", $"'{node.Hostname}' is a manager; demote it first (node demote {node.Hostname}) or use --force");
            }
            // Fence: rewriting the node's record changes its revision, and every allocation compares the revision it
            // read, so once the fence is applied no new address can be handed to this node; those it holds are then
            // all visible and released (in chunks: a node may hold more than one transaction carries), the record last.
            string key = ClusterKeys.Node(node.Id);
            var kv = nodes.Kvs.First(k => k.Key == key);
            var compares = new List<Compare> { Compare.ModifiedAt(key, kv.ModRevision) };
            if (node.Role == NodeRole.Manager) compares.AddRange(NodesUnchanged(nodes));
            var fence = await store.TxnAsync(new TxnRequest(compares, [Op.Put(key, kv.Value)]), cancellationToken).ConfigureAwait(false);
            if (!fence.Succeeded) { Retry(attempt, "node"); continue; }
            await ReleaseWhereAsync(a => a.NodeId == node.Id, cancellationToken).ConfigureAwait(false);
            var r = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(key, fence.Revision)],
                [Op.Delete(key), Op.Delete(ClusterKeys.NodeName(node.Hostname))]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return node;
            Retry(attempt, "node");
        }
    }

    // Deletes every allocation matching the predicate, a transaction per chunk; an allocation released meanwhile is skipped.
    private async Task ReleaseWhereAsync(Func<AddressAllocation, bool> match, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            var ipam = await store.RangeAsync(ClusterKeys.Ipam, cancellationToken: cancellationToken).ConfigureAwait(false);
            var held = ipam.Kvs.Where(kv => match(Decode(kv, ClusterJson.Default.AddressAllocation))).ToList();
            if (held.Count == 0) return;
            foreach (var chunk in held.Chunk(StoreLimits.MaxTxnOps))
                await store.TxnAsync(new TxnRequest([.. chunk.Select(kv => Compare.ModifiedAt(kv.Key, kv.ModRevision))], [.. chunk.Select(kv => Op.Delete(kv.Key))]),
                    cancellationToken).ConfigureAwait(false);
            Retry(attempt, "ip");
        }
    }

    /// <summary>
    /// Creates a network for the whole cluster (scope swarm): validated as on one host (<see cref="NetworkValidator"/>)
    /// against the cluster's networks, the VNI the lowest free from 4096 unless pinned, the subnet from the default
    /// address pools unless given; written with its name and VNI indexes in one transaction that also checks no other
    /// network was created or removed meanwhile (then it re-validates and retries).
    /// </summary>
    public async Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        if (request.Options.ContainsKey(NetworkValidator.KeyFileOption))
            throw ControlException.Invalid("opt", $"{NetworkValidator.KeyFileOption} is for a single host; a cluster's managers generate and rotate the keys of encrypted networks");
        var (info, _) = await RequireInfoAsync(cancellationToken).ConfigureAwait(false);
        var validation = new NetworkManagerOptions
        {
            MaxMtu = _options.MaxMtu,
            DefaultAddressPools = info.DefaultAddressPools,
            DefaultSubnetLength = info.DefaultSubnetLength,
            Time = _options.Time,
        };
        for (int attempt = 0; ; attempt++)
        {
            var (networks, epoch) = await ReadNetworksAsync(cancellationToken).ConfigureAwait(false);
            var def = NetworkValidator.Validate(request, networks, validation) with { Scope = "swarm" };
            var r = await store.TxnAsync(new TxnRequest(
                [
                    Compare.ModifiedAt(ClusterKeys.NetworkEpoch, epoch),
                    Compare.Missing(ClusterKeys.NetworkName(def.Name)),
                    Compare.Missing(ClusterKeys.NetworkVni(def.Vni)),
                ],
                [
                    Op.Put(ClusterKeys.Network(def.Id), Encode(def, ClusterJson.Default.NetworkDefinition)),
                    Op.Put(ClusterKeys.NetworkName(def.Name), Encoding.UTF8.GetBytes(def.Id)),
                    Op.Put(ClusterKeys.NetworkVni(def.Vni), Encoding.UTF8.GetBytes(def.Id)),
                    Op.Put(ClusterKeys.NetworkEpoch, Encoding.UTF8.GetBytes(def.Id)),
                ]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return def;
            Retry(attempt, "network");
        }
    }

    /// <summary>The cluster's networks, oldest first.</summary>
    public async Task<IReadOnlyList<NetworkDefinition>> ListNetworksAsync(CancellationToken cancellationToken = default) =>
        (await ReadNetworksAsync(cancellationToken).ConfigureAwait(false)).Networks;

    /// <summary>A network by id, unique id prefix or name.</summary>
    public async Task<NetworkDefinition> GetNetworkAsync(string nameOrId, CancellationToken cancellationToken = default)
    {
        var (networks, _) = await ReadNetworksAsync(cancellationToken).ConfigureAwait(false);
        return Resolve(networks, nameOrId, n => n.Id, n => n.Name, "network");
    }

    /// <summary>The addresses handed out on a network, in address order.</summary>
    public async Task<IReadOnlyList<AddressAllocation>> ListAllocationsAsync(string networkId, CancellationToken cancellationToken = default)
    {
        var r = await store.RangeAsync(ClusterKeys.NetworkIpam(networkId), cancellationToken: cancellationToken).ConfigureAwait(false);
        return [.. r.Kvs.Select(kv => Decode(kv, ClusterJson.Default.AddressAllocation))];
    }

    /// <summary>
    /// Removes a network; refused (<see cref="ControlErrorCodes.InUse"/>) while any node holds an address on it, naming
    /// the endpoints and their nodes.
    /// </summary>
    public async Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var (networks, epoch) = await ReadNetworksAsync(cancellationToken).ConfigureAwait(false);
            var def = Resolve(networks, nameOrId, n => n.Id, n => n.Name, "network");
            string key = ClusterKeys.Network(def.Id);
            var current = await store.GetAsync(key, cancellationToken).ConfigureAwait(false);
            if (current.Kvs.Count == 0) { Retry(attempt, "network"); continue; }
            // Fence (as for a node): after the network's record is rewritten no allocation made against the old
            // revision can commit, so the addresses read next are all there will be.
            var fence = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(key, current.Kvs[0].ModRevision)], [Op.Put(key, current.Kvs[0].Value)]),
                cancellationToken).ConfigureAwait(false);
            if (!fence.Succeeded) { Retry(attempt, "network"); continue; }
            var held = await store.RangeAsync(ClusterKeys.NetworkIpam(def.Id), limit: 20, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (held.Kvs.Count > 0)
            {
                var nodes = (await ListNodesAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(n => n.Id, n => n.Hostname);
                string names = string.Join(", ", held.Kvs.Select(kv => Decode(kv, ClusterJson.Default.AddressAllocation))
                    .Select(a => $"{a.Name} on {nodes.GetValueOrDefault(a.NodeId, ObjectIds.Short(a.NodeId))}"));
                throw new ControlException(ControlErrorCodes.InUse,
                    $"network '{def.Name}' has endpoints attached: {names}{(held.More ? ", …" : "")}; disconnect them first", "network");
            }
            var r = await store.TxnAsync(new TxnRequest(
                [Compare.ModifiedAt(ClusterKeys.NetworkEpoch, epoch), Compare.ModifiedAt(key, fence.Revision)],
                [
                    Op.Delete(key),
                    Op.Delete(ClusterKeys.NetworkName(def.Name)),
                    Op.Delete(ClusterKeys.NetworkVni(def.Vni)),
                    Op.Put(ClusterKeys.NetworkEpoch, Encoding.UTF8.GetBytes(def.Id)),
                ]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return def;
            Retry(attempt, "network");
        }
    }

    /// <summary>
    /// Hands out an address on a network for an endpoint of a node: <see cref="AllocationRequest.Address"/> if given
    /// (inside the subnet, not reserved, free), else the next free one of the range after the highest handed out,
    /// wrapping. Each attempt is one compare-and-swap on the address's key (and on the network being unchanged), so no
    /// address is ever handed out twice, whichever managers the nodes ask; a lost race retries with another address.
    /// Ad-hoc endpoints (run, connect, the runtime plugins) are refused on networks that are not attachable.
    /// </summary>
    public async Task<AddressAllocation> AllocateAsync(AllocationRequest request, CancellationToken cancellationToken = default)
    {
        var node = await store.GetAsync(ClusterKeys.Node(request.NodeId), cancellationToken).ConfigureAwait(false);
        if (node.Kvs.Count == 0)
            throw new ControlException(ControlErrorCodes.NotFound, $"node {ObjectIds.Short(request.NodeId)} is not in the cluster (removed?)", "node");
        long nodeRevision = node.Kvs[0].ModRevision;
        for (int attempt = 0; ; attempt++)
        {
            var (networks, _) = await ReadNetworksAsync(cancellationToken).ConfigureAwait(false);
            var def = Resolve(networks, request.Network, n => n.Id, n => n.Name, "network");
            if (request.AdHoc && !def.Attachable)
                throw new ControlException(ControlErrorCodes.PermissionDenied,
                    $"network '{def.Name}' is not attachable: workloads may join it only as endpoints declared in a node's configuration (create it with --attachable)", "network");
            var netKey = await store.GetAsync(ClusterKeys.Network(def.Id), cancellationToken).ConfigureAwait(false);
            if (netKey.Kvs.Count == 0) { Retry(attempt, "network"); continue; }
            var held = await store.RangeAsync(ClusterKeys.NetworkIpam(def.Id), cancellationToken: cancellationToken).ConfigureAwait(false);
            var allocations = held.Kvs.Select(kv => Decode(kv, ClusterJson.Default.AddressAllocation)).ToList();
            if (allocations.FirstOrDefault(a => a.NodeId == request.NodeId && a.EndpointId == request.EndpointId) is { } existing)
                return existing; // a retried request after a lost answer
            var pool = new AddressPool(def.Subnet, def.IpRange, NetworkValidator.ReservedAddresses(def));
            foreach (var a in allocations) pool.AllocateSpecific(a.Address);
            uint address;
            if (request.Address is { } fixedText)
            {
                if (!Ipv4Prefix.TryParseAddress(fixedText, out address))
                    throw ControlException.Invalid("ip", $"'{ControlException.Printable(fixedText)}' is not an IPv4 address");
                if (allocations.FirstOrDefault(a => a.Address == address) is { } owner)
                    throw ControlException.Conflicting("ip", $"{fixedText} is already in use on network '{def.Name}' by {owner.Name}");
                pool.AllocateSpecific(address); // throws for outside/reserved
            }
            else
            {
                if (allocations.Count > 0) pool.ResumeAfter(allocations.Max(a => a.Address));
                // After a lost race, many nodes are likely after the same next address: spread out.
                if (attempt > 0) pool.ResumeAfter(RandomAddress(pool));
                address = pool.AllocateNext();
            }
            var mac = request.Mac is null ? EndpointMac.FromAddress(address) : EndpointMac.ParseUnicast(request.Mac);
            var allocation = new AddressAllocation
            {
                NetworkId = def.Id,
                Address = address,
                NodeId = request.NodeId,
                EndpointId = request.EndpointId,
                Name = request.Name,
                Mac = mac,
                Created = _options.Time.GetUtcNow(),
            };
            string key = ClusterKeys.Allocation(def.Id, address);
            var r = await store.TxnAsync(new TxnRequest(
                [Compare.Missing(key), Compare.ModifiedAt(ClusterKeys.Network(def.Id), netKey.Kvs[0].ModRevision), Compare.ModifiedAt(ClusterKeys.Node(request.NodeId), nodeRevision)],
                [Op.Put(key, Encode(allocation, ClusterJson.Default.AddressAllocation))]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return allocation;
            var nodeNow = await store.GetAsync(ClusterKeys.Node(request.NodeId), cancellationToken).ConfigureAwait(false);
            if (nodeNow.Kvs.Count == 0)
                throw new ControlException(ControlErrorCodes.NotFound, $"node {ObjectIds.Short(request.NodeId)} was removed from the cluster", "node");
            nodeRevision = nodeNow.Kvs[0].ModRevision;
            if (request.Address is not null)
            {
                var now = await store.GetAsync(key, cancellationToken).ConfigureAwait(false);
                if (now.Kvs.Count > 0)
                    throw ControlException.Conflicting("ip", $"{request.Address} is already in use on network '{def.Name}' by {Decode(now.Kvs[0], ClusterJson.Default.AddressAllocation).Name}");
            }
            Retry(attempt, "ip");
        }
    }

    /// <summary>Releases the address an endpoint of a node holds on a network; false when it holds none.</summary>
    public async Task<bool> ReleaseAsync(string networkId, string nodeId, string endpointId, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var held = await store.RangeAsync(ClusterKeys.NetworkIpam(networkId), cancellationToken: cancellationToken).ConfigureAwait(false);
            var kv = held.Kvs.FirstOrDefault(k =>
            {
                var a = Decode(k, ClusterJson.Default.AddressAllocation);
                return a.NodeId == nodeId && a.EndpointId == endpointId;
            });
            if (kv is null) return false;
            var r = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(kv.Key, kv.ModRevision)], [Op.Delete(kv.Key)]), cancellationToken).ConfigureAwait(false);
            if (r.Succeeded) return true;
            Retry(attempt, "ip");
        }
    }

    /// <summary>A subsystem's key ring (<see cref="KeyRing.Gossip"/>, <see cref="KeyRing.Ipsec"/>).</summary>
    public async Task<KeyRing> GetKeyRingAsync(string subsystem, CancellationToken cancellationToken = default)
    {
        var r = await store.GetAsync(ClusterKeys.KeyRing(subsystem), cancellationToken).ConfigureAwait(false);
        return r.Kvs.Count == 0
            ? throw new ControlException(ControlErrorCodes.NotFound, $"the cluster has no {subsystem} keys", "keys")
            : Decode(r.Kvs[0], ClusterJson.Default.KeyRing);
    }

    /// <summary>
    /// Adds a fresh key to a ring and drops the oldest beyond <see cref="ClusterManagerOptions.KeyRingSize"/>, unless
    /// the newest key is younger than <paramref name="ifOlderThan"/> (so several managers' timers rotate once).
    /// </summary>
    public async Task<KeyRing> RotateKeysAsync(string subsystem, TimeSpan ifOlderThan = default, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var r = await store.GetAsync(ClusterKeys.KeyRing(subsystem), cancellationToken).ConfigureAwait(false);
            if (r.Kvs.Count == 0) throw new ControlException(ControlErrorCodes.NotFound, $"the cluster has no {subsystem} keys", "keys");
            var ring = Decode(r.Kvs[0], ClusterJson.Default.KeyRing);
            var now = _options.Time.GetUtcNow();
            if (now - ring.Newest.Created < ifOlderThan) return ring;
            var keys = ring.Keys.Append(new ClusterKey(ring.Newest.Generation + 1, RandomNumberGenerator.GetBytes(32), now))
                .TakeLast(_options.KeyRingSize).ToList();
            var next = ring with { Keys = keys };
            var t = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(r.Kvs[0].Key, r.Kvs[0].ModRevision)],
                [Op.Put(r.Kvs[0].Key, Encode(next, ClusterJson.Default.KeyRing))]), cancellationToken).ConfigureAwait(false);
            if (t.Succeeded) return next;
            Retry(attempt, "keys");
        }
    }

    /// <summary>Encodes a cluster object as its stored JSON.</summary>
    public static byte[] Encode<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.SerializeToUtf8Bytes(value, type);

    /// <summary>Decodes a stored object; <see cref="ControlErrorCodes.CorruptState"/> naming the key when it cannot be read.</summary>
    public static T Decode<T>(KeyValue kv, JsonTypeInfo<T> type)
    {
        try { return JsonSerializer.Deserialize(kv.Value, type) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new ControlException(ControlErrorCodes.CorruptState, $"the cluster's store holds an unreadable {kv.Key}: {e.Message}", inner: e); }
    }

    private async Task<(ClusterInfo Info, long Revision)> RequireInfoAsync(CancellationToken cancellationToken)
    {
        var r = await store.GetAsync(ClusterKeys.Info, cancellationToken).ConfigureAwait(false);
        return r.Kvs.Count == 0
            ? throw new ControlException(ControlErrorCodes.NotFound, "this node is not in a cluster (swarm init or swarm join first)", "cluster")
            : (Decode(r.Kvs[0], ClusterJson.Default.ClusterInfo), r.Kvs[0].ModRevision);
    }

    private async Task<ClusterInfo> UpdateInfoAsync(Func<ClusterInfo, ClusterInfo> change, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            var r = await store.GetAsync(ClusterKeys.Info, cancellationToken).ConfigureAwait(false);
            if (r.Kvs.Count == 0) throw new ControlException(ControlErrorCodes.NotFound, "this node is not in a cluster", "cluster");
            var next = change(Decode(r.Kvs[0], ClusterJson.Default.ClusterInfo));
            var t = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(ClusterKeys.Info, r.Kvs[0].ModRevision)],
                [Op.Put(ClusterKeys.Info, Encode(next, ClusterJson.Default.ClusterInfo))]), cancellationToken).ConfigureAwait(false);
            if (t.Succeeded) return next;
            Retry(attempt, "cluster");
        }
    }

    private async Task<(IReadOnlyList<NetworkDefinition> Networks, long Epoch)> ReadNetworksAsync(CancellationToken cancellationToken)
    {
        // One transaction reads both, so the list and the epoch are of one revision.
        var r = await store.TxnAsync(new TxnRequest([], [Op.GetPrefix(ClusterKeys.Networks), Op.Get(ClusterKeys.NetworkEpoch)]), cancellationToken).ConfigureAwait(false);
        var networks = r.Responses[0].Kvs.Select(kv => Decode(kv, ClusterJson.Default.NetworkDefinition))
            .OrderBy(n => n.Created).ThenBy(n => n.Id, StringComparer.Ordinal).ToList();
        long epoch = r.Responses[1].Kvs.Count == 0 ? 0 : r.Responses[1].Kvs[0].ModRevision;
        return (networks, epoch);
    }

    // Every node read is unchanged (for the last-manager rule: two demotions racing cannot both pass; a node added
    // meanwhile only adds managers).
    private static List<Compare> NodesUnchanged(RangeResult nodes) =>
        [.. nodes.Kvs.Select(kv => Compare.ModifiedAt(kv.Key, kv.ModRevision))];

    private void Retry(int attempt, string field)
    {
        if (attempt + 1 >= _options.MaxConflictRetries)
            throw ControlException.Conflicting(field, $"gave up after {attempt + 1} attempts: other managers kept changing the same objects; try again");
    }

    private static uint RandomAddress(AddressPool pool)
    {
        uint first = pool.Range.Network, size = pool.Range.Length >= 32 ? 1 : 1u << (32 - pool.Range.Length);
        return first + (uint)Random.Shared.NextInt64(size);
    }

    private static T Resolve<T>(IReadOnlyList<T> items, string idOrName, Func<T, string> id, Func<T, string> name, string what)
    {
        if (items.FirstOrDefault(i => id(i) == idOrName || name(i) == idOrName) is { } exact) return exact;
        var byPrefix = idOrName.Length > 0 && idOrName.All(char.IsAsciiLetterOrDigit) ? items.Where(i => id(i).StartsWith(idOrName, StringComparison.Ordinal)).ToList() : [];
        return byPrefix.Count switch
        {
            1 => byPrefix[0],
            0 => throw new ControlException(ControlErrorCodes.NotFound, $"no {what} '{ControlException.Printable(idOrName)}' in the cluster", what),
            _ => throw new ControlException(ControlErrorCodes.Ambiguous, $"'{idOrName}' matches {byPrefix.Count} {what}s; give more of the id", what),
        };
    }

    private static KeyRing NewRing(string subsystem, DateTimeOffset now) =>
        new() { Subsystem = subsystem, Keys = [new ClusterKey(1, RandomNumberGenerator.GetBytes(32), now)] };

    /// <summary>A new id for a node or a cluster: 25 base-36 characters from a CSPRNG, as swarm's.</summary>
    public static string NewNodeId()
    {
        // 25 base-36 characters, as swarm's node ids.
        Span<byte> b = stackalloc byte[16];
        RandomNumberGenerator.Fill(b);
        var n = new System.Numerics.BigInteger(b, isUnsigned: true);
        var sb = new StringBuilder();
        const string Digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        while (n > 0) { sb.Insert(0, Digits[(int)(n % 36)]); n /= 36; }
        return sb.ToString().PadLeft(25, '0');
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}
