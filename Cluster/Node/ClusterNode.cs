using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Replication.Raft;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;
using UserOverlay.Cluster.Transport;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Crypto;
using UserOverlay.Membership;
using UserOverlay.Membership.Security;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// A host's place in a cluster: <c>swarm init/join/leave</c>, <c>node</c> and the cluster's <c>network</c> operations,
/// and, once the host is in a cluster, its parts (the daemon hosts it after its network service and before its
/// control API; an embedder over its own <see cref="IClusterHost"/>) —
/// <list type="bullet">
/// <item>every node: its identity (key and certificate, STATE/cluster/identity), the <see cref="ClusterAgent"/> that
/// keeps the host's networks in step with the managers' state and reserves addresses from the cluster's IPAM, the
/// cluster's keys in the router (encrypted networks) and in gossip (started here with the cluster's key when the
/// host's own configuration runs none);</item>
/// <item>a manager also: the store — its embedded Raft member (STATE/cluster/raft), or etcd with the secrets sealed
/// (ClusterNode.Store.cs: STATE/cluster/store, seal.key) and its presence lease — the <see cref="ClusterManager"/> over
/// it, the control port (<see cref="ClusterServer"/>, 2377) serving joins and the node ↔ manager protocol
/// (<see cref="ClusterRoutes"/>), and the key rotation timer.</item>
/// </list>
/// What a node is in is recorded in STATE/cluster/membership.json, written last by init and join (so a failed one
/// leaves nothing: everything it made is undone and the directory removed) and read at start, when the parts start
/// again — without waiting for the managers: a node whose managers are away keeps forwarding with the state it has.
/// </summary>
public sealed partial class ClusterNode(IClusterHost host) : IAsyncDisposable
{
    /// <summary>The gossip port the cluster's gossip binds on each node's data path address (memberlist's, serf's).</summary>
    public const int GossipPort = 7946;

    /// <summary>The control port's default (swarm's).</summary>
    public const int DefaultControlPort = ClusterServerOptions.DefaultPort;

    /// <summary>Swarm's default address pool, used when <c>swarm init</c> names none.</summary>
    public const string DefaultAddressPool = "10.0.0.0/8";

    private readonly ILogger _log = host.Loggers.CreateLogger("useroverlay.cluster");
    private readonly ClusterKeyFile _keys = new(host);
    private ILoggerFactory loggers => host.Loggers;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Parts? _parts;
    private ClusterMembership? _switchingTo; // set while a promotion or demotion replaces the parts
    private volatile bool _clusterGossip; // gossip was started here, with the cluster's key (not by a gossip: section)

    private string Directory => Path.Combine(host.StateDirectory, "cluster");
    private string MembershipFile => Path.Combine(Directory, "membership.json");
    private string IdentityDirectory => Path.Combine(Directory, "identity");
    private string RaftDirectory => Path.Combine(Directory, "raft");

    /// <summary>Whether the host is in a cluster.</summary>
    public bool Active => Volatile.Read(ref _parts) is not null;

    /// <summary>The running parts of a node in a cluster.</summary>
    private sealed class Parts
    {
        public required ClusterMembership Membership;
        public required NodeIdentity Identity;
        public required IClusterApi Api;
        public required ClusterAgent Agent;
        public ClusterCa? Ca;
        public RaftLog? Log;
        public ReplicatedClusterStore? Store;
        public IClusterStore? SharedStore; // etcd (sealed), when the cluster keeps its state there
        public SealedValues? Seal;
        public ManagerPresence? Presence;
        public ClusterManager? Manager;
        public ClusterServer? Server;
        public CancellationTokenSource? Rotation;
        public Task? RotationLoop;
        public CertificateRenewer? Renewer;
        public StrongBox<NodeIdentity>? RaftIdentity;
        public CancellationTokenSource? Renewal;
        public Task? RenewalLoop;
        public long IpsecGeneration = -1, GossipGeneration = -1;
        public int Switching;

        /// <summary>The node's identity now (renewed ones replace the first).</summary>
        public NodeIdentity CurrentIdentity => Renewer?.Current ?? Identity;
    }

    /// <summary>Resumes the membership recorded in the state directory, if any: the node's parts start again, without waiting for the managers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(MembershipFile)) return;
        ClusterMembership membership;
        try
        {
            membership = JsonSerializer.Deserialize(await File.ReadAllTextAsync(MembershipFile, cancellationToken).ConfigureAwait(false), ClusterStateJson.Default.ClusterMembership)
                ?? throw new InvalidDataException("it is empty");
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
        {
            throw new RouterException(RouterErrorCode.SystemError, $"cannot read {MembershipFile} (this host's cluster membership): {e.Message}; fix it, or remove {Directory} to leave the cluster");
        }
        var identity = NodeIdentity.Load(IdentityDirectory);
        Parts parts;
        try
        {
            parts = membership.Role == NodeRole.Manager
                ? await StartManagerAsync(membership, identity, ca: null, bootstrap: null, cancellationToken, resuming: true).ConfigureAwait(false)
                : StartWorker(membership, identity);
        }
        catch (ControlException e) when (membership.Store is not null && e.Code == ControlErrorCodes.Unavailable && e.Field == "store")
        {
            // A manager on etcd restarted while etcd does not answer: the host forwards with what it has (its networks
            // and keys are its own) and the manager's parts start once etcd answers.
            StartConnecting(membership, identity, e.Message);
            return;
        }
        catch
        {
            identity.Dispose();
            throw;
        }
        Volatile.Write(ref _parts, parts);
        LogResumed(membership.Role.ToString().ToLowerInvariant(), membership.ClusterId, parts.Api.Peer);
    }

    /// <summary>
    /// Gives the host's encrypted cluster networks the keys this node last received (kept in its state directory), so
    /// that a host restarted while no manager answers serves them at once; the host calls it before it serves its
    /// stored networks again.
    /// </summary>
    public static void RestoreKeys(string stateDirectory, IEnumerable<NetworkDefinition> networks, StaticNetworkKeySource? keys) =>
        ClusterKeyFile.Restore(stateDirectory, networks, keys);

    /// <summary>Stops the node's parts (the membership stays recorded for the next start).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopConnectingAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _parts, null) is { } parts) await StopPartsAsync(parts).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);

    // ---- swarm init ----------------------------------------------------------------------------------------------

    /// <summary>Makes this host the first manager of a new cluster.</summary>
    public async Task<SwarmStatus> InitAsync(SwarmInitRequest request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RefuseIfActive("swarm init");
            var (advertise, listen, dataPath) = Addresses(request.AdvertiseAddr, request.ListenAddr, request.DataPathAddr);
            if (request.DataPathPort is int port && port != host.DataPathPort)
                throw ControlException.Invalid("data-path-port", $"{port} is not this router's data path port ({host.DataPathPort}, its configuration's underlay port); give {host.DataPathPort} or change the configuration");
            var pools = ParsePools(request.DefaultAddrPool);
            int mask = request.DefaultAddrPoolMaskLength ?? 24;
            if (mask is < 8 or > 30) throw ControlException.Invalid("default-addr-pool-mask-length", $"{mask} is not a prefix length from 8 to 30");
            if (pools.FirstOrDefault(p => p.Length > mask) is { Length: > 0 } small)
                throw ControlException.Invalid("default-addr-pool-mask-length", $"/{mask} subnets do not fit in the pool {small}");
            var rotation = ParseDuration("key-rotation-interval", request.KeyRotationInterval) ?? TimeSpan.FromHours(12);
            var store = ParseStore(request);

            string clusterId = ClusterManager.NewNodeId();
            string nodeId = ClusterManager.NewNodeId();
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var ca = ClusterCa.Create(clusterId);
            NodeIdentity? identity = null;
            Parts? parts = null;
            try
            {
                using var cert = ca.IssueNodeCertificate(PublicKey.CreateFromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo(), out _), nodeId, NodeRole.Manager);
                identity = NodeIdentity.Create(cert.ExportCertificatePem(), key, ca.CertificatePem);
                System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                identity.Save(IdentityDirectory);
                StoreSettings? storeSettings = null;
                if (store is not null)
                {
                    byte[] seal = SealedValues.NewKey();
                    try { storeSettings = SaveStore(store, seal); }
                    finally { CryptographicOperations.ZeroMemory(seal); }
                }
                var membership = new ClusterMembership
                {
                    ClusterId = clusterId,
                    NodeId = nodeId,
                    NodeName = host.Name,
                    Role = NodeRole.Manager,
                    ControlAddress = advertise.ToString(),
                    ListenAddress = listen.ToString(),
                    DataPathAddress = dataPath.ToString(),
                    Managers = [advertise.ToString()],
                    Store = storeSettings,
                };
                var info = new ClusterInfo
                {
                    Id = clusterId,
                    Created = DateTimeOffset.UtcNow,
                    RootCertificatePem = ca.CertificatePem,
                    RootKeyPem = ca.ExportKeyPem(),
                    WorkerToken = JoinToken.Create(ca.CertificatePem).ToString(),
                    ManagerToken = JoinToken.Create(ca.CertificatePem).ToString(),
                    DefaultAddressPools = pools,
                    DefaultSubnetLength = mask,
                    DataPathPort = host.DataPathPort,
                    KeyRotationInterval = rotation,
                };
                var first = new NodeRecord
                {
                    Id = nodeId,
                    Hostname = host.Name,
                    Role = NodeRole.Manager,
                    ControlAddress = advertise.ToString(),
                    DataPathAddress = dataPath.ToString(),
                    Joined = info.Created,
                };
                parts = await StartManagerAsync(membership, identity, ca, new ClusterInitSpec { Info = info, FirstNode = first }, cancellationToken).ConfigureAwait(false);
                await WriteMembershipAsync(membership).ConfigureAwait(false);
                Volatile.Write(ref _parts, parts);
                LogInitialized(clusterId, advertise.ToString());
                return Status();
            }
            catch
            {
                if (parts is not null)
                {
                    if (parts.SharedStore is { } shared) await EraseClusterQuietlyAsync(shared, clusterId).ConfigureAwait(false);
                    await StopPartsAsync(parts).ConfigureAwait(false);
                }
                else
                {
                    identity?.Dispose();
                    ca.Dispose();
                }
                DeleteDirectory();
                throw;
            }
        }
        finally { _gate.Release(); }
    }

    // ---- swarm join ----------------------------------------------------------------------------------------------

    /// <summary>Joins a cluster with a token through one of its managers.</summary>
    public async Task<SwarmStatus> JoinAsync(SwarmJoinRequest request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RefuseIfActive("swarm join");
            if (string.IsNullOrWhiteSpace(request.Token)) throw ControlException.Invalid("token", "is required (swarm join-token worker|manager on a manager prints it)");
            if (!JoinToken.TryParse(request.Token.Trim(), out var token, out string why)) throw ControlException.Invalid("token", why);
            if (string.IsNullOrWhiteSpace(request.RemoteAddr)) throw ControlException.Invalid("manager", "a manager's IP[:PORT] is required");
            var manager = ParseEndPoint("manager", request.RemoteAddr, DefaultControlPort);
            var (advertise, listen, dataPath) = Addresses(request.AdvertiseAddr, request.ListenAddr, request.DataPathAddr);

            NodeIdentity identity;
            try
            {
                identity = await new ClusterClient().JoinAsync(manager.ToString(), token, host.Name, advertise.ToString(), dataPath.ToString(), cancellationToken).ConfigureAwait(false);
            }
            catch (ClusterClientException e)
            {
                throw new ControlException(e.Code switch
                {
                    "bad_token" or "ca_mismatch" or "untrusted_manager" => ControlErrorCodes.PermissionDenied,
                    "conflict" => ControlErrorCodes.Conflict,
                    "bad_argument" or "malformed_request" => ControlErrorCodes.InvalidArgument,
                    "unreachable" or "unavailable" => ControlErrorCodes.Unavailable,
                    _ => ControlErrorCodes.Internal,
                }, e.Message, "token");
            }
            Parts? parts = null;
            try
            {
                System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                identity.Save(IdentityDirectory);
                var membership = new ClusterMembership
                {
                    ClusterId = identity.ClusterId,
                    NodeId = identity.NodeId,
                    NodeName = host.Name,
                    Role = identity.Role,
                    ControlAddress = advertise.ToString(),
                    ListenAddress = listen.ToString(),
                    DataPathAddress = dataPath.ToString(),
                    Managers = [manager.ToString()],
                };
                if (identity.Role == NodeRole.Manager)
                    parts = await StartManagerAsync(membership, identity, ca: null, bootstrap: null, cancellationToken, joinVia: manager.ToString()).ConfigureAwait(false);
                else
                {
                    parts = StartWorker(membership, identity);
                    await parts.Agent.WaitForFirstStateAsync(TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
                }
                if (parts.Agent.State is { } state && state.DataPathPort != host.DataPathPort)
                    throw ControlException.Conflicting("data-path-port", $"the cluster's data path port is {state.DataPathPort}, and this router's is {host.DataPathPort}; give the router the cluster's port (its configuration's underlay port) and join again");
                membership = parts.Membership; // a manager's records the store it adopted
                await WriteMembershipAsync(membership).ConfigureAwait(false);
                Volatile.Write(ref _parts, parts);
                LogJoined(membership.Role.ToString().ToLowerInvariant(), membership.ClusterId, manager.ToString());
                return Status();
            }
            catch
            {
                if (parts is not null) await StopPartsAsync(parts).ConfigureAwait(false);
                else identity.Dispose();
                DeleteDirectory();
                throw;
            }
        }
        finally { _gate.Release(); }
    }

    // ---- swarm leave ---------------------------------------------------------------------------------------------

    /// <summary>Leaves the cluster: its networks stop being served here and the node's cluster state is deleted.</summary>
    public async Task<SwarmStatus> LeaveAsync(bool force, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var parts = Volatile.Read(ref _parts) ?? throw new ControlException(ControlErrorCodes.InvalidArgument, "swarm: this node is not part of a swarm", "swarm");
            var m = host.Networks;
            var clusterNetworks = m.ListNetworks().Where(n => n.Scope == NetworkManager.SwarmScope).ToList();
            var attached = clusterNetworks.SelectMany(n => m.GetEndpoints(n.Id).Select(e => $"{e.Name} on {n.Name}")).ToList();
            if (attached.Count > 0 && !force)
                throw ControlException.Conflicting("swarm", $"workloads are attached to the cluster's networks ({string.Join(", ", attached.Take(10))}{(attached.Count > 10 ? ", …" : "")}); disconnect them, or leave with --force (they are detached)");
            bool last = false;
            if (parts.Membership.Role == NodeRole.Manager && parts.Manager is { } manager && (!force || parts.SharedStore is not null))
            {
                IReadOnlyList<NodeRecord> nodes;
                try { nodes = await manager.ListNodesAsync(cancellationToken).ConfigureAwait(false); }
                catch (StoreException) when (force) { nodes = []; } // etcd away: --force leaves anyway, the keys stay there
                last = nodes.Count > 0 && nodes.Count(n => n.Role == NodeRole.Manager) <= 1;
                if (last && !force)
                    throw ControlException.Conflicting("swarm", $"this is the cluster's last manager{(nodes.Count > 1 ? $" and {nodes.Count - 1} other node(s) depend on it" : "")}: leaving ends the cluster; use --force to do that");
            }
            // On etcd the cluster's state outlives the managers' directories: the last one ends the cluster there too.
            if (last && parts.SharedStore is { } shared) await EraseClusterQuietlyAsync(shared, parts.Membership.ClusterId).ConfigureAwait(false);
            // Give addresses back while a manager still answers (best effort: `node rm` on a manager releases the rest).
            foreach (var n in clusterNetworks)
                foreach (var ep in m.GetEndpoints(n.Id))
                    try { m.Detach(n.Id, ep.Id); } catch (ControlException) { }
            for (int i = 0; i < 20 && parts.Agent.PendingReleases > 0; i++) await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            // A manager leaves the Raft group, so the others' quorum no longer counts it (best effort: alone, it cannot).
            if (parts.Log is { } raft && raft.Members.Count > 1)
            {
                try { await raft.RemoveMemberAsync(parts.Membership.NodeId, cancellationToken).ConfigureAwait(false); }
                catch (Exception e) when (e is InvalidOperationException or StoreException) { LogRaftRemoveFailed(parts.Membership.NodeName, e.Message); }
            }
            Volatile.Write(ref _parts, null);
            await StopPartsAsync(parts).ConfigureAwait(false);
            foreach (var n in clusterNetworks)
            {
                m.ForgetNetwork(n.Id);
                if (n.Encrypted) host.NetworkKeys?.Remove(n.Name); // the cluster's keys leave with the node
            }
            DeleteDirectory();
            LogLeft(parts.Membership.ClusterId);
            return Status();
        }
        finally { _gate.Release(); }
    }

    // ---- status, tokens, nodes, networks ---------------------------------------------------------------------------

    /// <summary>What <c>swarm status</c> shows.</summary>
    public SwarmStatus Status()
    {
        var p = Volatile.Read(ref _parts);
        if (p is null && Volatile.Read(ref _connecting) is { } c)
            return new SwarmStatus("connecting", c.NodeId, c.NodeName, c.ClusterId, RoleName(c.Role), c.ControlAddress, c.DataPathAddress, c.Managers,
                Connected: false, LastError: _connectError, Store: string.Join(",", c.Store?.Endpoints ?? []) + c.Store?.Prefix);
        if (p is null)
            return Volatile.Read(ref _switchingTo) is { } m
                ? new SwarmStatus("switching", m.NodeId, m.NodeName, m.ClusterId, RoleName(m.Role), m.ControlAddress, m.DataPathAddress, m.Managers)
                : new SwarmStatus("inactive");
        var state = p.Agent.State;
        var managers = state?.Nodes.Where(n => n.Role == NodeRole.Manager).Select(n => n.ControlAddress).ToList() ?? [.. p.Membership.Managers];
        return new SwarmStatus("active", p.Membership.NodeId, p.Membership.NodeName, p.Membership.ClusterId, RoleName(p.Membership.Role),
            p.Membership.ControlAddress, p.Membership.DataPathAddress, managers, p.Agent.Connected, p.Agent.LastError, state?.Revision, state?.Nodes.Count,
            p.Log?.Leader, state?.Ipsec.Newest.Generation, p.Server?.Counters.Snapshot(), p.Manager?.Store.Location);
    }

    /// <summary>A join token and its command (managers only); with <paramref name="rotate"/> a new one first.</summary>
    public async Task<JoinTokenResult> JoinTokenAsync(NodeRole role, bool rotate, CancellationToken cancellationToken)
    {
        var p = RequireManager(rotate ? "swarm join-token --rotate" : "swarm join-token");
        var view = await p.Api.GetJoinTokenAsync(role, rotate, cancellationToken).ConfigureAwait(false);
        var managerAddress = p.Membership.ControlAddress;
        return new JoinTokenResult(RoleName(role), view.Token, $"useroverlay swarm join --token {view.Token} {managerAddress}");
    }

    /// <summary>The cluster's nodes (managers only: a worker's view may lag).</summary>
    public IReadOnlyList<NodeView> ListNodes()
    {
        var p = RequireManager("node ls");
        var state = p.Agent.State ?? throw new ControlException(ControlErrorCodes.Unavailable, "node: this manager has not read the cluster's state yet; retry in a moment", "node");
        var alive = host.Gossip?.GetMembers().Members.Where(m => m.State == "alive").Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        return [.. state.Nodes.Select(n => new NodeView(n.Id, n.Hostname, RoleName(n.Role), n.ControlAddress, n.DataPathAddress, n.Joined,
            n.Id == p.Membership.NodeId, alive is null ? null : alive.Contains(n.Hostname)))];
    }

    /// <summary>Removes a node (managers only).</summary>
    public async Task<NodeView> RemoveNodeAsync(string node, bool force, CancellationToken cancellationToken)
    {
        var p = RequireManager("node rm");
        var removed = await p.Api.RemoveNodeAsync(node, force, cancellationToken).ConfigureAwait(false);
        if (removed.Role == NodeRole.Manager && p.Log is { } raft && raft.Members.Any(m => m.Id == removed.Id))
        {
            try { await raft.RemoveMemberAsync(removed.Id, cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is InvalidOperationException or StoreException) { LogRaftRemoveFailed(removed.Hostname, e.Message); }
        }
        await p.Agent.SyncNowAsync(cancellationToken).ConfigureAwait(false);
        return View(removed, p);
    }

    /// <summary>Changes a node's role (managers only).</summary>
    public async Task<NodeView> SetRoleAsync(string node, NodeRole role, CancellationToken cancellationToken)
    {
        var p = RequireManager(role == NodeRole.Manager ? "node promote" : "node demote");
        var changed = await p.Api.SetRoleAsync(new RoleChange(node, role), cancellationToken).ConfigureAwait(false);
        await p.Agent.SyncNowAsync(cancellationToken).ConfigureAwait(false);
        return View(changed, p);
    }

    /// <summary>Creates a network for the whole cluster (managers only); returns once this host serves it too.</summary>
    public async Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken)
    {
        var p = RequireManager("network create");
        var def = await p.Api.CreateNetworkAsync(request, cancellationToken).ConfigureAwait(false);
        await p.Agent.SyncNowAsync(cancellationToken).ConfigureAwait(false);
        return def;
    }

    /// <summary>Removes a network of the cluster (managers only); returns once this host no longer serves it.</summary>
    public async Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken)
    {
        var p = RequireManager("network rm");
        var def = await p.Api.RemoveNetworkAsync(nameOrId, cancellationToken).ConfigureAwait(false);
        await p.Agent.SyncNowAsync(cancellationToken).ConfigureAwait(false);
        return def;
    }

    /// <summary>The hosts with endpoints on a cluster network (inspect's Peers), or null for a host's own network.</summary>
    public IReadOnlyList<PeerInspect>? PeersOf(NetworkDefinition network)
    {
        if (network.Scope != NetworkManager.SwarmScope || Volatile.Read(ref _parts)?.Agent.State is not { } state) return null;
        var nodes = state.Nodes.ToDictionary(n => n.Id, StringComparer.Ordinal);
        return state.Peers.TryGetValue(network.Id, out var ids)
            ? [.. ids.Select(id => nodes.TryGetValue(id, out var n) ? new PeerInspect(n.Hostname, n.DataPathAddress) : null).OfType<PeerInspect>().OrderBy(p => p.Name, StringComparer.Ordinal)]
            : [];
    }

    private NodeView View(NodeRecord n, Parts p) =>
        new(n.Id, n.Hostname, RoleName(n.Role), n.ControlAddress, n.DataPathAddress, n.Joined, n.Id == p.Membership.NodeId, null);

    private Parts RequireManager(string what)
    {
        var p = Volatile.Read(ref _parts) ?? throw new ControlException(ControlErrorCodes.InvalidArgument,
            $"swarm: this node is not part of a swarm, so {what} has nothing to act on (swarm init, or swarm join)", "swarm");
        if (p.Membership.Role != NodeRole.Manager)
        {
            var managers = p.Agent.State?.Nodes.Where(n => n.Role == NodeRole.Manager).Select(n => $"{n.Hostname} at {n.ControlAddress}").ToList();
            string named = managers is { Count: > 0 } ? string.Join(", ", managers) : string.Join(", ", p.Membership.Managers);
            throw new ControlException(ControlErrorCodes.PermissionDenied, $"{what} is for managers, and this node is a worker; run it on a manager ({named})", "swarm");
        }
        return p;
    }

    private void RefuseIfActive(string what)
    {
        if ((Volatile.Read(ref _parts)?.Membership ?? Volatile.Read(ref _connecting)) is { } m)
            throw ControlException.Conflicting("swarm", $"this node is already part of a swarm (cluster {m.ClusterId}, as a {RoleName(m.Role)}); {what} needs swarm leave first");
    }

    // ---- the parts -------------------------------------------------------------------------------------------------

    /// <summary>
    /// A manager's parts: its Raft member (STATE/cluster/raft; the first manager bootstraps it, a joining one asks the
    /// manager it joined through to add it, a restarted one rejoins), the store and <see cref="ClusterManager"/> over it,
    /// the control port, its own agent (in process) and the key rotation timer.
    /// </summary>
    private async Task<Parts> StartManagerAsync(ClusterMembership membership, NodeIdentity identity, ClusterCa? ca, ClusterInitSpec? bootstrap,
        CancellationToken cancellationToken, string? joinVia = null, bool resuming = false)
    {
        // A joining manager serves the store the cluster keeps: etcd's settings and seal key come from the manager it joins through.
        if (joinVia is not null && membership.Store is null && await AdoptStoreThroughAsync(joinVia, identity, cancellationToken).ConfigureAwait(false) is { } adopted)
            membership = membership with { Store = adopted };
        var current = new StrongBox<NodeIdentity>(identity);
        RaftLog? raft = null;
        ReplicatedClusterStore? replicated = null;
        IClusterStore? store = null;
        SealedValues? seal = null;
        ManagerPresence? presence = null;
        ClusterServer? server = null;
        ClusterAgent? agent = null;
        bool initialized = false;
        try
        {
            if (membership.Store is { } settings)
                (store, seal) = await OpenStoreAsync(settings, cancellationToken).ConfigureAwait(false);
            else
            {
                System.IO.Directory.CreateDirectory(RaftDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                raft = OpenRaft(membership, identity, current);
                store = replicated = new ReplicatedClusterStore(bootstrap is null ? raft : new BootstrappingLog(raft));
                await replicated.StartAsync(cancellationToken).ConfigureAwait(false);
                if (joinVia is not null) await AddRaftMemberThroughAsync(joinVia, identity, membership, cancellationToken).ConfigureAwait(false);
            }
            var manager = new ClusterManager(store, new ClusterManagerOptions { MaxMtu = host.MaxMtu });
            if (bootstrap is not null)
            {
                await manager.InitializeAsync(bootstrap, cancellationToken).ConfigureAwait(false);
                initialized = true;
            }
            // A joining (or restarted) member has the cluster once it caught up with the log.
            ClusterInfo? info = null;
            for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30); info is null; await Task.Delay(100, cancellationToken).ConfigureAwait(false))
            {
                info = await manager.GetInfoAsync(cancellationToken).ConfigureAwait(false);
                if (info is null && raft is null)
                    throw new ControlException(ControlErrorCodes.NotFound, $"store: {store.Location} holds no cluster (it was ended, or the prefix is another one)", "store");
                if (info is null && DateTime.UtcNow > deadline)
                    throw new ControlException(ControlErrorCodes.Unavailable,
                        $"this manager's Raft member ({raft!.Location}) has not caught up with the cluster within 30 s (leader: {raft.Leader ?? "none"}); check that the managers reach each other on their Raft ports ({RaftPort(membership.ControlAddress)}/tcp and the next)", "manager");
            }
            if (info.Id != membership.ClusterId)
                throw new ControlException(ControlErrorCodes.Conflict, $"store: {store.Location} holds cluster {info.Id}, not this node's {membership.ClusterId}", "store");
            ca ??= ClusterCa.Load(info.RootCertificatePem, info.RootKeyPem);
            Func<string, string> newToken = root => JoinToken.Create(root).ToString();
            var storeSettings = membership.Store;
            server = new ClusterServer(new ClusterServerOptions
            {
                EndPoint = IPEndPoint.Parse(membership.ListenAddress),
                Identity = identity,
                Ca = ca,
                Authority = new ClusterManagerAuthority(manager),
                NodeRoutes = g => ClusterRoutes.MapNodeRoutes(g, c => CallerApi(c, manager, newToken)),
                ManagerRoutes = g =>
                {
                    ClusterRoutes.MapManagerRoutes(g, c => CallerApi(c, manager, newToken));
                    if (raft is not null) MapRaftRoutes(g, raft);
                    MapStoreRoutes(g, storeSettings);
                },
                Loggers = loggers,
            });
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
            if (raft is null)
            {
                presence = new ManagerPresence(store, membership.NodeId, membership.ControlAddress, log: _log);
                await presence.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            var api = new ManagerApi(manager, membership.NodeId, NodeRole.Manager, newToken);
            agent = NewAgent(api, membership);
            var parts = new Parts
            {
                Membership = membership,
                Identity = identity,
                Api = api,
                Agent = agent,
                Ca = ca,
                Log = raft,
                Store = replicated,
                SharedStore = raft is null ? store : null,
                Seal = seal,
                Presence = presence,
                Manager = manager,
                Server = server,
                RaftIdentity = current,
            };
            Wire(parts);
            agent.Start();
            // Init and join answer once the node serves the cluster; a restart does not wait (the host keeps what it has).
            if (!resuming) await agent.WaitForFirstStateAsync(TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
            parts.Rotation = new CancellationTokenSource();
            parts.RotationLoop = Task.Run(() => RotateKeysAsync(manager, info.KeyRotationInterval, parts.Rotation.Token));
            StartRenewal(parts);
            return parts;
        }
        catch
        {
            if (agent is not null) await agent.DisposeAsync().ConfigureAwait(false);
            if (server is not null) await server.DisposeAsync().ConfigureAwait(false);
            if (presence is not null) await presence.DisposeAsync().ConfigureAwait(false);
            // A failed init leaves nothing in etcd either (the embedded store's directory goes with the node's).
            if (initialized && raft is null && store is not null) await EraseClusterQuietlyAsync(store, bootstrap!.Info.Id).ConfigureAwait(false);
            if (store is not null) await store.DisposeAsync().ConfigureAwait(false);
            else if (raft is not null) await raft.DisposeAsync().ConfigureAwait(false);
            seal?.Dispose();
            throw;
        }
    }

    private async Task EraseClusterQuietlyAsync(IClusterStore store, string clusterId)
    {
        try { await EraseClusterAsync(store, clusterId).ConfigureAwait(false); }
        catch (Exception e) when (e is StoreException or OperationCanceledException or ControlException) { LogEraseFailed(store.Location, e.Message); }
    }

    /// <summary>The Raft port of a manager whose control port is at <paramref name="controlAddress"/>: the next one (2378 by default; forwarding uses the one after).</summary>
    private static int RaftPort(string controlAddress) => IPEndPoint.Parse(controlAddress).Port + 1;

    /// <summary>
    /// The manager's Raft member: on the control port's address, ports +1 (Raft) and +2 (forwarding to the leader),
    /// mutual TLS with the node certificates — only managers of this cluster are accepted either way.
    /// </summary>
    private RaftLog OpenRaft(ClusterMembership membership, NodeIdentity identity, StrongBox<NodeIdentity> current)
    {
        var listen = IPEndPoint.Parse(membership.ListenAddress);
        var advertise = IPEndPoint.Parse(membership.ControlAddress);
        RemoteCertificateValidationCallback ManagersOnly(string usage) => (_, certificate, _, _) =>
            certificate is X509Certificate2 c
            && NodeCertificates.ValidateChain(c, identity.Root, DateTimeOffset.UtcNow, usage) is null
            && NodeCertificates.TryReadSubject(c, out var subject, out _)
            && subject.Role == NodeRole.Manager && subject.ClusterId == identity.ClusterId;
        return new RaftLog(new RaftLogOptions
        {
            MemberId = membership.NodeId,
            ListenEndPoint = new IPEndPoint(listen.Address, listen.Port + 1),
            AdvertisedEndPoint = new IPEndPoint(advertise.Address, advertise.Port + 1),
            ForwardListenEndPoint = new IPEndPoint(listen.Address, listen.Port + 2),
            ForwardAdvertisedEndPoint = new IPEndPoint(advertise.Address, advertise.Port + 2),
            DataDirectory = RaftDirectory,
            // Both ends present the identity current when a connection is made, so renewals reach Raft too.
            ServerTls = new SslServerAuthenticationOptions
            {
                ServerCertificateSelectionCallback = (_, _) => current.Value!.Certificate,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = ManagersOnly(NodeCertificates.ClientAuthOid),
            },
            ClientTls = new SslClientAuthenticationOptions
            {
                TargetHost = NodeCertificates.CaDnsName,
                LocalCertificateSelectionCallback = (_, _, _, _, _) => current.Value!.Certificate,
                RemoteCertificateValidationCallback = ManagersOnly(NodeCertificates.ServerAuthOid),
            },
        }, loggers);
    }

    /// <summary>The leader adds a joining manager to Raft: <c>POST /v1/cluster/raft/members</c> {id, address}, only for the caller itself.</summary>
    private static void MapRaftRoutes(Microsoft.AspNetCore.Routing.RouteGroupBuilder managers, RaftLog raft)
    {
        managers.MapPost("/v1/cluster/raft/members", (Microsoft.AspNetCore.Http.RequestDelegate)(async c =>
        {
            var caller = c.GetClusterCaller();
            var body = await JsonSerializer.DeserializeAsync(c.Request.Body, ClusterStateJson.Default.RaftMemberRequest, c.RequestAborted).ConfigureAwait(false);
            if (body is null || body.Id != caller.NodeId || !IPEndPoint.TryParse(body.Address ?? "", out var address) || address.Port == 0)
            {
                await ClusterRoutes.WriteError(c, ControlErrorCodes.InvalidArgument, "body: a manager adds itself: {\"id\": its node id, \"address\": its Raft IP:PORT}").ConfigureAwait(false);
                return;
            }
            try
            {
                await raft.AddMemberAsync(body.Id, address, c.RequestAborted).ConfigureAwait(false);
                c.Response.StatusCode = 204;
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                await ClusterRoutes.WriteError(c, ControlErrorCodes.Conflict, $"raft: {e.Message}").ConfigureAwait(false);
            }
            catch (StoreException e)
            {
                await ClusterRoutes.WriteError(c, ControlErrorCodes.Unavailable, $"raft: {e.Message}").ConfigureAwait(false);
            }
        }));
    }

    // A joining manager's Raft member runs (not bootstrapped); the manager it joined through has the leader add it.
    private static async Task AddRaftMemberThroughAsync(string manager, NodeIdentity identity, ClusterMembership membership, CancellationToken cancellationToken)
    {
        using var http = new ClusterClient().CreateHttpClient(identity, manager);
        http.Timeout = TimeSpan.FromSeconds(30);
        var advertise = IPEndPoint.Parse(membership.ControlAddress);
        var body = new RaftMemberRequest(membership.NodeId, new IPEndPoint(advertise.Address, advertise.Port + 1).ToString());
        HttpResponseMessage response;
        try { response = await http.PostAsJsonAsync("/v1/cluster/raft/members", body, ClusterStateJson.Default.RaftMemberRequest, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            throw new ControlException(ControlErrorCodes.Unavailable, $"manager: the manager at {manager} did not add this node to the managers' Raft group: {e.Message}", "manager");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
                throw new ControlException(ControlErrorCodes.Unavailable,
                    $"manager: the manager at {manager} did not add this node to the managers' Raft group ({(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)})", "manager");
        }
    }

    private Parts StartWorker(ClusterMembership membership, NodeIdentity identity)
    {
        var client = new ClusterClient();
        Parts? parts = null;
        // Every connection presents the identity current when it is made, so renewals need no new clients.
        var api = new HttpClusterApi(membership.Managers, address => new HttpClient(client.CreateHandler(() => parts?.CurrentIdentity ?? identity), disposeHandler: true)
        {
            BaseAddress = ClusterClient.ManagerUri(address),
            Timeout = Timeout.InfiniteTimeSpan, // every call has its own deadline (a state request waits up to ~25 s)
        });
        var agent = NewAgent(api, membership);
        parts = new Parts { Membership = membership, Identity = identity, Api = api, Agent = agent };
        Wire(parts);
        StartRenewal(parts);
        agent.Start();
        return parts;
    }

    private static IClusterApi CallerApi(Microsoft.AspNetCore.Http.HttpContext c, ClusterManager manager, Func<string, string> newToken)
    {
        var caller = c.GetClusterCaller();
        return new ManagerApi(manager, caller.NodeId, caller.Role, newToken);
    }

    private ClusterAgent NewAgent(IClusterApi api, ClusterMembership membership) =>
        new(api, host.Networks, new ClusterAgentOptions { NodeId = membership.NodeId }, loggers.CreateLogger("useroverlay.cluster"));

    // Keys before networks (an encrypted network needs its key when it is adopted); gossip once the keys are known;
    // the managers' list for a worker's client.
    private void Wire(Parts parts)
    {
        parts.Agent.StateReceived += state => ApplyKeys(parts, state);
        parts.Agent.StateApplied += state =>
        {
            var managers = state.Nodes.Where(n => n.Role == NodeRole.Manager).Select(n => n.ControlAddress).Order(StringComparer.Ordinal).ToList();
            if (parts.Api is HttpClusterApi http) http.SetManagers(managers);
            // The managers as last seen are recorded, so a node restarted after its first manager died finds the others.
            if (managers.Count > 0 && !managers.SequenceEqual(parts.Membership.Managers.Order(StringComparer.Ordinal)) && ReferenceEquals(Volatile.Read(ref _parts), parts))
            {
                parts.Membership = parts.Membership with { Managers = managers };
                try { _ = WriteMembershipAsync(parts.Membership); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { LogMembershipWriteFailed(MembershipFile, e.Message); }
            }
            _ = EnsureGossipAsync(parts, state);
            // `node promote|demote` of this node: it becomes what its record says (once; a failure is retried with the next state).
            if (state.Nodes.FirstOrDefault(n => n.Id == parts.Membership.NodeId) is { } self && self.Role != parts.Membership.Role
                && Interlocked.CompareExchange(ref parts.Switching, 1, 0) == 0)
                _ = Task.Run(() => SwitchRoleAsync(parts, self.Role, state));
        };
    }

    /// <summary>Renews the node's certificate at its renewal time, through the managers it knows; a manager's control port presents the new one.</summary>
    private void StartRenewal(Parts parts)
    {
        parts.Renewer = new CertificateRenewer(new ClusterClient(), parts.Identity, () => ManagersOf(parts), IdentityDirectory, logger: _log)
        {
            Renewed = next =>
            {
                parts.Server?.UpdateIdentity(next);
                if (parts.RaftIdentity is { } raft) raft.Value = next;
                return Task.CompletedTask;
            },
        };
        parts.Renewal = new CancellationTokenSource();
        parts.RenewalLoop = Task.Run(() => parts.Renewer.RunAsync(parts.Renewal.Token));
    }

    private static IReadOnlyList<string> ManagersOf(Parts parts) =>
        parts.Agent.State?.Nodes.Where(n => n.Role == NodeRole.Manager).Select(n => n.ControlAddress).ToList() is { Count: > 0 } known ? known : parts.Membership.Managers;

    /// <summary>
    /// This node was promoted or demoted: a certificate of the new role (renewed through a manager, which takes the role
    /// from the node's record), then the parts of that role — a new manager runs a Raft member and has the leader add it;
    /// a former manager leaves the Raft group and forgets its copy of the store. Gossip and the networks stay as they are.
    /// </summary>
    private async Task SwitchRoleAsync(Parts parts, NodeRole role, ClusterState state)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(Volatile.Read(ref _parts), parts)) return;
            var others = state.Nodes.Where(n => n.Role == NodeRole.Manager && n.Id != parts.Membership.NodeId).Select(n => n.ControlAddress).ToList();
            var renewer = new CertificateRenewer(new ClusterClient(), parts.CurrentIdentity, () => [.. others, .. ManagersOf(parts)], IdentityDirectory, logger: _log);
            var identity = await renewer.RenewNowAsync().ConfigureAwait(false);
            if (identity.Role != role)
            {
                LogRoleSwitchFailed(RoleName(role), $"the renewed certificate is a {RoleName(identity.Role)}'s");
                return;
            }
            if (parts.Membership.Role == NodeRole.Manager && parts.Log is { } raft)
            {
                try { await raft.RemoveMemberAsync(parts.Membership.NodeId).ConfigureAwait(false); }
                catch (Exception e) when (e is InvalidOperationException or StoreException) { LogRaftRemoveFailed(parts.Membership.NodeName, e.Message); }
            }
            var membership = parts.Membership with { Role = role, Managers = others.Count > 0 ? others : parts.Membership.Managers, Store = null };
            Volatile.Write(ref _switchingTo, membership);
            Volatile.Write(ref _parts, null);
            await StopPartsAsync(parts, keepGossip: true).ConfigureAwait(false);
            Parts next;
            if (role == NodeRole.Worker)
            {
                try { System.IO.Directory.Delete(RaftDirectory, recursive: true); } catch (DirectoryNotFoundException) { }
                // A worker keeps no store settings, nor the seal key.
                try { System.IO.Directory.Delete(StoreDirectory, recursive: true); } catch (DirectoryNotFoundException) { }
                File.Delete(SealKeyFile);
                next = StartWorker(membership, identity);
            }
            else
            {
                if (System.IO.Directory.Exists(RaftDirectory)) System.IO.Directory.Delete(RaftDirectory, recursive: true);
                next = await StartManagerAsync(membership, identity, ca: null, bootstrap: null, CancellationToken.None, joinVia: others.FirstOrDefault() ?? ManagersOf(parts)[0]).ConfigureAwait(false);
            }
            membership = next.Membership;
            await WriteMembershipAsync(membership).ConfigureAwait(false);
            Volatile.Write(ref _parts, next);
            Volatile.Write(ref _switchingTo, null);
            LogRoleSwitched(RoleName(role));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogRoleSwitchFailed(RoleName(role), e.Message);
            Volatile.Write(ref _switchingTo, null);
            Interlocked.Exchange(ref parts.Switching, 0);
        }
        finally { _gate.Release(); }
    }

    private void ApplyKeys(Parts parts, ClusterState state)
    {
        // Every encrypted network of the cluster gets the cluster's ring under its name: all of them when the ring
        // changed (saved first, for a restart without managers), a new network's when it appears.
        if (state.Ipsec.Newest.Generation != parts.IpsecGeneration)
        {
            _keys.Save(state.Ipsec, state.Networks);
            parts.IpsecGeneration = state.Ipsec.Newest.Generation;
        }
        else _keys.Apply(state.Ipsec, state.Networks.Select(n => n with { Scope = NetworkManager.SwarmScope }), onlyMissing: true);
        if (state.Gossip.Newest.Generation != parts.GossipGeneration && host.Gossip is { } g && _clusterGossip)
        {
            g.SetKeys(state.Gossip.SendKey.Material, state.Gossip.Keys.Where(k => k != state.Gossip.SendKey).Select(k => k.Material));
            parts.GossipGeneration = state.Gossip.Newest.Generation;
        }
    }

    private async Task EnsureGossipAsync(Parts parts, ClusterState state)
    {
        if (host.GossipConfigured || host.Gossip is not null) return;
        try
        {
            var self = state.Nodes.FirstOrDefault(n => n.Id == parts.Membership.NodeId);
            var seeds = state.Nodes.Where(n => n.Id != parts.Membership.NodeId)
                .Select(n => $"{n.DataPathAddress}:{GossipPort}").ToList();
            var membership = MembershipOptions.DefaultLan() with
            {
                Name = parts.Membership.NodeName,
                BindAddress = IPAddress.Parse(parts.Membership.DataPathAddress),
                BindPort = GossipPort,
                Keyring = new Keyring(state.Gossip.SendKey.Material, state.Gossip.Keys.Where(k => k != state.Gossip.SendKey).Select(k => k.Material)),
            };
            var nets = host.Networks.ListNetworks().Select(n => new GossipNetwork(n.Name, n.Vni)).ToList();
            await host.StartGossipAsync(membership, seeds, nets, CancellationToken.None).ConfigureAwait(false);
            _clusterGossip = true;
            parts.GossipGeneration = state.Gossip.Newest.Generation;
            LogGossipStarted(parts.Membership.DataPathAddress, seeds.Count);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogGossipFailed(e.Message);
        }
    }

    private async Task RotateKeysAsync(ClusterManager manager, TimeSpan interval, CancellationToken stop)
    {
        // Every manager checks a few times per interval; the store makes concurrent rotations one (ifOlderThan).
        var period = TimeSpan.FromTicks(Math.Clamp(interval.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(5).Ticks));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                foreach (var subsystem in new[] { KeyRing.Ipsec, KeyRing.Gossip })
                {
                    try { await manager.RotateKeysAsync(subsystem, interval, stop).ConfigureAwait(false); }
                    catch (Exception e) when (e is ControlException or StoreException) { LogRotationFailed(subsystem, e.Message); }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task StopPartsAsync(Parts parts, bool keepGossip = false)
    {
        foreach (var (cts, loop) in new[] { (parts.Rotation, parts.RotationLoop), (parts.Renewal, parts.RenewalLoop) })
        {
            if (cts is null) continue;
            await cts.CancelAsync().ConfigureAwait(false);
            if (loop is not null) await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cts.Dispose();
        }
        await parts.Agent.DisposeAsync().ConfigureAwait(false);
        if (_clusterGossip && !keepGossip)
        {
            await host.StopGossipAsync().ConfigureAwait(false);
            _clusterGossip = false;
        }
        if (parts.Server is { } server)
        {
            // Workers' state requests wait up to ~25 s for a change: give requests in flight a moment, then cut them.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try { await server.StopAsync(grace.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            await server.DisposeAsync().ConfigureAwait(false);
        }
        if (parts.Presence is { } presence) await presence.DisposeAsync().ConfigureAwait(false);
        if (parts.Store is { } store) await store.DisposeAsync().ConfigureAwait(false);
        if (parts.SharedStore is { } shared) await shared.DisposeAsync().ConfigureAwait(false);
        if (parts.Log is { } log) await log.DisposeAsync().ConfigureAwait(false);
        parts.Seal?.Dispose();
        (parts.Api as IDisposable)?.Dispose();
        parts.Ca?.Dispose();
        // Renewed identities are not disposed: connections made with them may still be closing.
    }

    // ---- helpers ---------------------------------------------------------------------------------------------------

    private (IPEndPoint Advertise, IPEndPoint Listen, IPAddress DataPath) Addresses(string? advertiseText, string? listenText, string? dataPathText)
    {
        var underlay = host.UnderlayAddress;
        var advertise = advertiseText is null ? new IPEndPoint(underlay, DefaultControlPort) : ParseEndPoint("advertise-addr", advertiseText, DefaultControlPort);
        var listen = listenText is null ? advertise : ParseEndPoint("listen-addr", listenText, advertise.Port);
        var dataPath = underlay;
        if (dataPathText is not null)
        {
            if (!IPAddress.TryParse(dataPathText, out var given)) throw ControlException.Invalid("data-path-addr", $"'{ControlException.Printable(dataPathText)}' is not an IP address");
            if (!given.Equals(underlay))
                throw ControlException.Invalid("data-path-addr", $"{given} is not this router's underlay address ({underlay}); the data path runs where the router listens — give {underlay} or change its configuration");
            dataPath = given;
        }
        return (advertise, listen, dataPath);
    }

    private static IPEndPoint ParseEndPoint(string field, string text, int defaultPort)
    {
        text = text.Trim();
        if (IPAddress.TryParse(text, out var bare)) return new IPEndPoint(bare, defaultPort);
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port != 0) return ep;
        throw ControlException.Invalid(field, $"'{ControlException.Printable(text)}' is not IP or IP:PORT (a host name is not taken: give the address)");
    }

    private static List<Ipv4Prefix> ParsePools(IReadOnlyList<string>? pools)
    {
        var result = new List<Ipv4Prefix>();
        foreach (string text in pools is { Count: > 0 } ? pools : [DefaultAddressPool])
        {
            if (!Ipv4Prefix.TryParse(text, out var p, out string why)) throw ControlException.Invalid("default-addr-pool", $"'{ControlException.Printable(text)}': {why}");
            if (result.FirstOrDefault(q => NetworkValidator.Overlaps(p, q)) is { Length: > 0 } other)
                throw ControlException.Invalid("default-addr-pool", $"{p} overlaps {other}");
            result.Add(p);
        }
        return result;
    }

    private static TimeSpan? ParseDuration(string field, string? text)
    {
        if (text is null) return null;
        if (Control.Durations.TryParse(text, out var d) && d >= TimeSpan.FromSeconds(1)) return d;
        throw ControlException.Invalid(field, $"'{ControlException.Printable(text)}' is not a duration of at least 1s (e.g. 12h, 30m, 90s)");
    }

    private static string RoleName(NodeRole role) => role == NodeRole.Manager ? "manager" : "worker";

    private readonly Lock _membershipFileLock = new();

    // Atomic (a temporary file renamed over it), one writer at a time.
    private Task WriteMembershipAsync(ClusterMembership membership)
    {
        lock (_membershipFileLock)
        {
            string temp = MembershipFile + ".tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(membership, ClusterStateJson.Default.ClusterMembership));
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(temp, MembershipFile, overwrite: true);
        }
        return Task.CompletedTask;
    }

    private void DeleteDirectory()
    {
        try { if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { LogCleanupFailed(Directory, e.Message); }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: initialized cluster {ClusterId}; this node is its first manager, control port {Address}")]
    private partial void LogInitialized(string clusterId, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: joined cluster {ClusterId} as a {Role} through {Manager}")]
    private partial void LogJoined(string role, string clusterId, string manager);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: back in cluster {ClusterId} as a {Role}, talking to {Peer}")]
    private partial void LogResumed(string role, string clusterId, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: left cluster {ClusterId}")]
    private partial void LogLeft(string clusterId);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: gossip started on {Address} with the cluster's key ({Seeds} other node(s) as seeds)")]
    private partial void LogGossipStarted(string address, int seeds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot start gossip: {Reason}")]
    private partial void LogGossipFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: rotating the {Subsystem} keys failed: {Reason}")]
    private partial void LogRotationFailed(string subsystem, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: the removed manager {Node} is still in the Raft group: {Reason}")]
    private partial void LogRaftRemoveFailed(string node, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: this node is now a {Role}")]
    private partial void LogRoleSwitched(string role);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: this node could not become a {Role}: {Reason}; it retries with the next change of the cluster's state")]
    private partial void LogRoleSwitchFailed(string role, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot record the managers in {File}: {Reason}")]
    private partial void LogMembershipWriteFailed(string file, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot remove the failed cluster's keys from {Store}: {Reason}")]
    private partial void LogEraseFailed(string store, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot remove {Directory}: {Reason}")]
    private partial void LogCleanupFailed(string directory, string reason);
}

/// <summary>What STATE/cluster/membership.json records: the cluster this host is in, and as what.</summary>
internal sealed record ClusterMembership
{
    /// <summary>The cluster's id.</summary>
    public required string ClusterId { get; init; }
    /// <summary>This node's id.</summary>
    public required string NodeId { get; init; }
    /// <summary>Its name in the cluster (the router's name).</summary>
    public required string NodeName { get; init; }
    /// <summary>Its role when it joined (its certificate's).</summary>
    public required NodeRole Role { get; init; }
    /// <summary>IP:PORT others reach its control port at.</summary>
    public required string ControlAddress { get; init; }
    /// <summary>IP:PORT its control port binds (managers).</summary>
    public required string ListenAddress { get; init; }
    /// <summary>Its data path address.</summary>
    public required string DataPathAddress { get; init; }
    /// <summary>The managers it knew last (a worker dials them).</summary>
    public required IReadOnlyList<string> Managers { get; init; }
    /// <summary>A manager's store when it is not the embedded Raft one (etcd).</summary>
    public StoreSettings? Store { get; init; }
}

/// <summary>A manager asking to be added to the managers' Raft group.</summary>
/// <param name="Id">Its node id.</param>
/// <param name="Address">Its Raft IP:PORT.</param>
internal sealed record RaftMemberRequest(string? Id, string? Address);

/// <summary>
/// Runs a Raft member as the first of a new group (<see cref="RaftLog.BootstrapAsync"/>) where the store starts its log:
/// what <c>swarm init</c> gives the store.
/// </summary>
internal sealed class BootstrappingLog(RaftLog raft) : IReplicatedLog
{
    public string Location => raft.Location;
    public bool IsLeader => raft.IsLeader;
    public string? Leader => raft.Leader;
    public event Action<bool>? LeadershipChanged
    {
        add => raft.LeadershipChanged += value;
        remove => raft.LeadershipChanged -= value;
    }
    public ValueTask StartAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default) => raft.BootstrapAsync(machine, cancellationToken);
    public ValueTask ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default) => raft.ProposeAsync(command, cancellationToken);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // the service disposes the RaftLog itself
}

/// <summary>JSON of the cluster service's own file and requests.</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ClusterMembership))]
[System.Text.Json.Serialization.JsonSerializable(typeof(RaftMemberRequest))]
[System.Text.Json.Serialization.JsonSerializable(typeof(StoreHandover))]
internal sealed partial class ClusterStateJson : System.Text.Json.Serialization.JsonSerializerContext;
