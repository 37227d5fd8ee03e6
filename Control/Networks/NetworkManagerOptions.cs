using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>Settings of a <see cref="NetworkManager"/> (and of <see cref="NetworkValidator"/>).</summary>
public sealed record NetworkManagerOptions
{
    /// <summary>
    /// The largest inner MTU the data path carries: a network's MTU must be from <see cref="NetworkValidator.MinMtu"/>
    /// to this (and at most 65535). Default <see cref="Constants.MaxMtu"/>; a daemon passes what its underlay allows.
    /// </summary>
    public int MaxMtu { get; init; } = Constants.MaxMtu;

    /// <summary>
    /// Where a network created without a subnet gets one: the first /<see cref="DefaultSubnetLength"/> of these pools
    /// that overlaps no network (Docker's default-addr-pool). Empty, the default: a subnet is required.
    /// </summary>
    public IReadOnlyList<Ipv4Prefix> DefaultAddressPools { get; init; } = [];

    /// <summary>Prefix length of the subnets taken from <see cref="DefaultAddressPools"/>. Default 24, as Docker's.</summary>
    public int DefaultSubnetLength { get; init; } = 24;

    /// <summary>
    /// Whether an address of a network is held by an endpoint of another host (the daemon asks gossip, which carries
    /// every host's endpoint records), or null: no other host is known. A network of this host's own scope has its own
    /// address pool on every host that serves it, and an endpoint's MAC is derived from its address, so an address another
    /// host's endpoint holds must not be taken here too (the two endpoints would share a MAC: one FDB entry, one record
    /// in the table, one set of DNS names). The sequential allocation skips such an address, and an attach that asks for
    /// one (<c>--ip</c>) is refused with <see cref="ControlErrorCodes.Conflict"/>. Not asked for the cluster's networks
    /// (their addresses come from the cluster) nor for the configuration file's endpoints. Called under the manager's lock.
    /// </summary>
    public Func<NetworkDefinition, uint, bool>? HeldElsewhere { get; init; }

    /// <summary>The clock for creation times.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
