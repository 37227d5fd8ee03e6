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

    /// <summary>The clock for creation times.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
