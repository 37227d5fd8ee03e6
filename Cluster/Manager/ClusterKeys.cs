using System.Globalization;

namespace UserOverlay.Cluster.Manager;

/// <summary>
/// Where the cluster's objects live in the store (<see cref="Store.IClusterStore"/>): one flat key space, one prefix
/// per kind, so a worker's view is a handful of prefix watches and etcd (the next backend) holds the same layout under
/// its own prefix.
/// <list type="table">
/// <item><term><c>cluster/info</c></term><description><see cref="ClusterInfo"/></description></item>
/// <item><term><c>nodes/ID</c></term><description><see cref="NodeRecord"/></description></item>
/// <item><term><c>node-names/HOSTNAME</c></term><description>the node id, so host names are unique</description></item>
/// <item><term><c>networks/ID</c></term><description>a network (<c>NetworkDefinition</c>, scope swarm)</description></item>
/// <item><term><c>network-names/NAME</c>, <c>network-vnis/VNI</c></term><description>the id, so a create is one
/// compare-and-swap on name and VNI</description></item>
/// <item><term><c>network-epoch</c></term><description>bumped by every create and remove: creates compare it, so two
/// managers cannot create overlapping subnets at once</description></item>
/// <item><term><c>ipam/NETWORK/ADDRESS</c></term><description><see cref="AddressAllocation"/>; the address as 8 hex
/// digits, so a prefix read is in address order</description></item>
/// <item><term><c>keys/SUBSYSTEM</c></term><description><see cref="KeyRing"/></description></item>
/// <item><term><c>presence/ID</c></term><description>a manager serving now (its control address), attached to its
/// lease (<see cref="ManagerPresence"/>): gone when the manager stops renewing it</description></item>
/// </list>
/// </summary>
public static class ClusterKeys
{
    /// <summary>The cluster's own record.</summary>
    public const string Info = "cluster/info";

    /// <summary>Prefix of node records.</summary>
    public const string Nodes = "nodes/";

    /// <summary>Prefix of the host-name index of nodes.</summary>
    public const string NodeNames = "node-names/";

    /// <summary>Prefix of networks.</summary>
    public const string Networks = "networks/";

    /// <summary>Prefix of the name index.</summary>
    public const string NetworkNames = "network-names/";

    /// <summary>Prefix of the VNI index.</summary>
    public const string NetworkVnis = "network-vnis/";

    /// <summary>The networks' epoch key.</summary>
    public const string NetworkEpoch = "network-epoch";

    /// <summary>Prefix of address allocations.</summary>
    public const string Ipam = "ipam/";

    /// <summary>Prefix of key rings.</summary>
    public const string Keys = "keys/";

    /// <summary>Prefix of the managers' presence keys.</summary>
    public const string Presence = "presence/";

    /// <summary>A manager's presence key.</summary>
    public static string PresenceOf(string nodeId) => Presence + nodeId;

    /// <summary>A node's key.</summary>
    public static string Node(string id) => Nodes + id;

    /// <summary>A host name's index key (its value is the node id).</summary>
    public static string NodeName(string hostname) => NodeNames + hostname;

    /// <summary>A network's key.</summary>
    public static string Network(string id) => Networks + id;

    /// <summary>A network name's index key.</summary>
    public static string NetworkName(string name) => NetworkNames + name;

    /// <summary>A VNI's index key.</summary>
    public static string NetworkVni(uint vni) => NetworkVnis + vni.ToString(CultureInfo.InvariantCulture);

    /// <summary>The prefix of one network's allocations.</summary>
    public static string NetworkIpam(string networkId) => Ipam + networkId + "/";

    /// <summary>An allocation's key.</summary>
    public static string Allocation(string networkId, uint address) => NetworkIpam(networkId) + address.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>A key ring's key.</summary>
    public static string KeyRing(string subsystem) => Keys + subsystem;
}
