using System.Net;
using UserOverlay.Membership;
using UserOverlay.Membership.Security;

namespace UserOverlay.Cli.Config;

/// <summary>memberlist's timing presets (<see cref="MembershipOptions.DefaultLan"/> and friends).</summary>
public enum GossipProfile
{
    /// <summary>A LAN: failure detection in a few seconds (memberlist's DefaultLANConfig).</summary>
    Lan,
    /// <summary>High latency between hosts: longer timeouts (DefaultWANConfig).</summary>
    Wan,
    /// <summary>Loopback and tests: short timeouts (DefaultLocalConfig).</summary>
    Local,
}

/// <summary>The <c>gossip:</c> section: how this host joins the cluster that replicates the endpoint table.</summary>
public sealed record GossipConfig
{
    /// <summary>Default gossip port (UDP and TCP), as Docker and serf use it.</summary>
    public const int DefaultPort = 7946;

    /// <summary>Address and port the gossip transport binds (UDP and TCP).</summary>
    public required IPEndPoint Bind { get; init; }

    /// <summary>Seeds, normalised to <c>host:port</c>. Empty: wait for others to join (the first host).</summary>
    public IReadOnlyList<string> Join { get; init; } = [];

    /// <summary>Gossip encryption keys, primary first (empty: no encryption).</summary>
    public IReadOnlyList<byte[]> Keys { get; init; } = [];

    /// <summary>Node name; null: derived from the router's name and the bind address (see <see cref="EffectiveName"/>).</summary>
    public string? Name { get; init; }

    /// <summary>Timing preset.</summary>
    public GossipProfile Profile { get; init; } = GossipProfile.Lan;

    /// <summary>Override of <see cref="MembershipOptions.ProbeInterval"/>.</summary>
    public TimeSpan? ProbeInterval { get; init; }

    /// <summary>Override of <see cref="MembershipOptions.SuspicionMult"/>.</summary>
    public int? SuspicionMult { get; init; }

    /// <summary>Override of <see cref="MembershipOptions.PushPullInterval"/>.</summary>
    public TimeSpan? PushPullInterval { get; init; }

    /// <summary>Override of <see cref="MembershipOptions.ReconnectInterval"/>.</summary>
    public TimeSpan? ReconnectInterval { get; init; }

    /// <summary>
    /// The node name: <see cref="Name"/>, or <c>ROUTER-BINDADDRESS</c> (e.g. <c>host1-192.0.2.1</c>) —
    /// unique in the cluster without configuration, since no two members share a gossip address;
    /// with an unspecified bind address, <c>ROUTER-HOSTNAME</c>.
    /// </summary>
    public string EffectiveName(string routerName) =>
        Name ?? (Bind.Address.Equals(IPAddress.Any) || Bind.Address.Equals(IPAddress.IPv6Any)
            ? $"{routerName}-{Environment.MachineName}"
            : $"{routerName}-{Bind.Address}");

    /// <summary>The member's options: the profile, then the overrides, then name, bind address and keys.</summary>
    public MembershipOptions ToMembershipOptions(string routerName)
    {
        var o = Profile switch
        {
            GossipProfile.Wan => MembershipOptions.DefaultWan(),
            GossipProfile.Local => MembershipOptions.DefaultLocal(),
            _ => MembershipOptions.DefaultLan(),
        };
        if (ProbeInterval is { } p)
            o = o with { ProbeInterval = p, ProbeTimeout = o.ProbeTimeout < p / 2 ? o.ProbeTimeout : p / 2 }; // an ack must be able to arrive within the interval
        if (SuspicionMult is int s) o = o with { SuspicionMult = s };
        if (PushPullInterval is { } pp) o = o with { PushPullInterval = pp };
        if (ReconnectInterval is { } rc) o = o with { ReconnectInterval = rc };
        return o with
        {
            Name = EffectiveName(routerName),
            BindAddress = Bind.Address,
            BindPort = Bind.Port,
            Keyring = Keys.Count == 0 ? null : new Keyring(Keys[0], Keys.Skip(1)),
        };
    }
}
