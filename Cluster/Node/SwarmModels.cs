namespace UserOverlay.Cluster.Node;

/// <summary>Body of <c>POST /v1/swarm/init</c> (<c>useroverlay swarm init</c>'s flags).</summary>
/// <param name="AdvertiseAddr">IP[:PORT] the other nodes reach this manager at; default the router's underlay address and 2377.</param>
/// <param name="ListenAddr">IP[:PORT] the control port binds; default the advertised address.</param>
/// <param name="DataPathAddr">The address VXLAN and gossip use; default the router's underlay address (it must be that).</param>
/// <param name="DataPathPort">The VXLAN port; default (and it must be) the router's underlay port.</param>
/// <param name="DefaultAddrPool">Pools (CIDR) subnets of networks created without --subnet are taken from; default 10.0.0.0/8 as swarm's.</param>
/// <param name="DefaultAddrPoolMaskLength">Prefix length of those subnets; default 24.</param>
/// <param name="KeyRotationInterval">How often the managers rotate network and gossip keys ("12h", "90s"); default 12h.</param>
/// <param name="Store">Where the managers keep the cluster's state: "raft" (the default: embedded Raft among the managers) or
/// <c>etcd://HOST:PORT[,HOST:PORT…]</c> (an etcd v3 cluster).</param>
/// <param name="StorePrefix">The etcd key prefix the cluster's keys live under (default /useroverlay).</param>
/// <param name="StoreCa">PEM file (on the daemon's host) of the CA of etcd's server certificates: TLS to etcd.</param>
/// <param name="StoreCert">PEM file of a client certificate for etcd (with <paramref name="StoreKey"/>).</param>
/// <param name="StoreKey">PEM file of its private key.</param>
public sealed record SwarmInitRequest(string? AdvertiseAddr = null, string? ListenAddr = null, string? DataPathAddr = null, int? DataPathPort = null,
    IReadOnlyList<string>? DefaultAddrPool = null, int? DefaultAddrPoolMaskLength = null, string? KeyRotationInterval = null,
    string? Store = null, string? StorePrefix = null, string? StoreCa = null, string? StoreCert = null, string? StoreKey = null);

/// <summary>Body of <c>POST /v1/swarm/join</c>.</summary>
/// <param name="Token">The join token (<c>swarm join-token</c> on a manager).</param>
/// <param name="RemoteAddr">A manager's IP[:PORT] (2377 by default).</param>
/// <param name="AdvertiseAddr">IP[:PORT] others reach this node's control port at (a manager's matters); default the router's underlay address and 2377.</param>
/// <param name="ListenAddr">IP[:PORT] this node's control port binds (managers); default the advertised address.</param>
/// <param name="DataPathAddr">The address VXLAN and gossip use; default the router's underlay address.</param>
public sealed record SwarmJoinRequest(string? Token, string? RemoteAddr, string? AdvertiseAddr = null, string? ListenAddr = null, string? DataPathAddr = null);

/// <summary>Body of <c>POST /v1/swarm/leave</c>.</summary>
/// <param name="Force">Leave although endpoints are attached to cluster networks (they are detached) or this is the last manager (the cluster ends).</param>
public sealed record SwarmLeaveRequest(bool Force = false);

/// <summary>What <c>swarm init</c> and <c>swarm join</c> answer, and <c>GET /v1/swarm</c>.</summary>
/// <param name="State">"inactive" (not in a cluster), "active", "switching" (a promotion or demotion of this node is under way), or
/// "connecting" (a manager on etcd restarted while etcd does not answer: the host forwards with what it has, and the manager starts once etcd answers).</param>
/// <param name="NodeId">This node's id.</param>
/// <param name="NodeName">Its name in the cluster (the router's name).</param>
/// <param name="ClusterId">The cluster's id.</param>
/// <param name="Role">"manager" or "worker".</param>
/// <param name="ControlAddress">IP:PORT of this node's control port (managers) or the one it advertised.</param>
/// <param name="DataPathAddress">Its data path address.</param>
/// <param name="Managers">The managers' control addresses, as this node knows them.</param>
/// <param name="Connected">Whether the last request to the managers succeeded.</param>
/// <param name="LastError">Why the last one failed.</param>
/// <param name="Revision">The revision of the managers' state this node applied last.</param>
/// <param name="Nodes">How many nodes the cluster has.</param>
/// <param name="Leader">The consensus leader, as this manager knows it.</param>
/// <param name="KeyGeneration">The generation of the newest network-encryption key this node holds (it grows by one per rotation).</param>
/// <param name="Refusals">A manager's control port: requests refused and other events, by reason (no_certificate, bad_token, …).</param>
/// <param name="Store">A manager's store: "raft:…" (embedded) or "etcd:ENDPOINTS/PREFIX/".</param>
public sealed record SwarmStatus(string State, string? NodeId = null, string? NodeName = null, string? ClusterId = null, string? Role = null,
    string? ControlAddress = null, string? DataPathAddress = null, IReadOnlyList<string>? Managers = null, bool? Connected = null,
    string? LastError = null, long? Revision = null, int? Nodes = null, string? Leader = null, long? KeyGeneration = null,
    IReadOnlyDictionary<string, long>? Refusals = null, string? Store = null);

/// <summary>A join token and the command that uses it (<c>GET|POST /v1/swarm/join-token/{role}</c>).</summary>
/// <param name="Role">"worker" or "manager".</param>
/// <param name="Token">The token.</param>
/// <param name="JoinCommand">The command to run on a new node.</param>
public sealed record JoinTokenResult(string Role, string Token, string JoinCommand);

/// <summary>A node as <c>node ls</c> shows it.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Hostname">Its name.</param>
/// <param name="Role">"manager" or "worker".</param>
/// <param name="ControlAddress">Its control port's address.</param>
/// <param name="DataPathAddress">Its data path address.</param>
/// <param name="Joined">When it joined.</param>
/// <param name="Self">Whether it is the node answering.</param>
/// <param name="Reachable">Whether gossip sees it alive now (null: unknown here).</param>
public sealed record NodeView(string Id, string Hostname, string Role, string ControlAddress, string DataPathAddress, DateTimeOffset Joined, bool Self, bool? Reachable);

/// <summary>Body of <c>POST /v1/nodes/{node}/role</c>.</summary>
/// <param name="Role">"manager" or "worker".</param>
public sealed record NodeRoleRequest(string? Role);
