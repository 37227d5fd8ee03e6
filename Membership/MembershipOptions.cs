using System.Net;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Transport;

namespace UserOverlay.Membership;

/// <summary>
/// Configuration of a <see cref="Memberlist"/>, field for field memberlist's Config where it matters.
/// Start from a preset (<see cref="DefaultLan"/>, <see cref="DefaultWan"/>, <see cref="DefaultLocal"/>)
/// and change fields with <c>with { … }</c>. An options instance is read once by
/// <see cref="Memberlist.CreateAsync"/>; changing it later has no effect.
/// </summary>
public sealed record MembershipOptions
{
    /// <summary>Unique node name in the cluster. Default: the host name.</summary>
    public string Name { get; init; } = Environment.MachineName;

    /// <summary>Address the UDP+TCP transport binds. Default 0.0.0.0.</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Any;

    /// <summary>Port for both UDP and TCP. Default 7946; 0 picks a free port (the same for both).</summary>
    public int BindPort { get; init; } = Wire.ProtocolConstants.DefaultPort;

    /// <summary>Address others should use to reach us. Default: the bind address, or the first non-loopback IPv4 when binding 0.0.0.0.</summary>
    public IPAddress? AdvertiseAddress { get; init; }

    /// <summary>Port others should use. Default: the bound port.</summary>
    public int? AdvertisePort { get; init; }

    /// <summary>Transport to use instead of UDP+TCP sockets (e.g. <c>InMemoryNetwork.CreateTransport</c>). The member owns and disposes it.</summary>
    public IMembershipTransport? Transport { get; init; }

    /// <summary>Gossip encryption keys (AES-GCM). Null: no encryption. With keys, unencrypted input is dropped unless <see cref="GossipVerifyIncoming"/> is false.</summary>
    public Keyring? Keyring { get; init; }

    /// <summary>Drop incoming gossip that is not encrypted with an installed key (when a keyring is set). Default true. False only while rolling encryption out.</summary>
    public bool GossipVerifyIncoming { get; init; } = true;

    /// <summary>Encrypt outgoing gossip (when a keyring is set). Default true. False only while rolling encryption out.</summary>
    public bool GossipVerifyOutgoing { get; init; } = true;

    /// <summary>memberlist protocol version spoken: 2 (what serf and Docker speak). We understand 1–5.</summary>
    public byte ProtocolVersion { get; init; } = Wire.ProtocolConstants.ProtocolVersionCurrent;

    /// <summary>Delegate protocol range advertised in Vsn (the embedder's own protocol). Docker's NetworkDB leaves these 0; serf uses 2–5.</summary>
    public byte DelegateProtocolMin { get; init; }

    /// <summary>See <see cref="DelegateProtocolMin"/>.</summary>
    public byte DelegateProtocolMax { get; init; }

    /// <summary>See <see cref="DelegateProtocolMin"/>.</summary>
    public byte DelegateProtocolVersion { get; init; }

    /// <summary>Timeout of a TCP exchange (push/pull, reliable user message, dial). LAN 10 s.</summary>
    public TimeSpan TcpTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>k: members asked to probe a target indirectly after a missed direct ack. LAN 3.</summary>
    public int IndirectChecks { get; init; } = 3;

    /// <summary>Retransmits of each broadcast: <c>RetransmitMult · ceil(log10(n + 1))</c> for n members. LAN 4.</summary>
    public int RetransmitMult { get; init; } = 4;

    /// <summary>
    /// Suspicion timeout (min): <c>SuspicionMult · max(1, log10(n)) · ProbeInterval</c>. LAN 6 (3 s up to
    /// 10 members, 5.1 s at 50; memberlist: 4 with a 1 s interval, 4 s). It is the time a suspected member
    /// has to refute: a member stopped or cut off for less than about <c>ProbeInterval + min</c> is not declared dead.
    /// </summary>
    public int SuspicionMult { get; init; } = 6;

    /// <summary>
    /// Suspicion timeout (max, before any confirmation): <c>SuspicionMaxTimeoutMult · min</c>. Confirmations from
    /// k = SuspicionMult − 2 others (none when n − 2 &lt; k) bring it down to min. LAN 3 (memberlist: 6), so that a
    /// confirmation that comes late costs at most about one min more.
    /// </summary>
    public int SuspicionMaxTimeoutMult { get; init; } = 3;

    /// <summary>
    /// Suspicion timeout when our own TCP fallback probe was refused (the member's host answered that nothing
    /// listens on its gossip port: its process is gone, as after a crash or SIGKILL). A stopped, overloaded or
    /// cut-off member never refuses (its kernel completes the handshake, or nothing answers), so this
    /// evidence does not raise false deaths; the suspicion still lasts this long, so it is visible and a
    /// member restarting on the same address can answer. Zero: no special case (memberlist's behaviour).
    /// Default 500 ms.
    /// </summary>
    public TimeSpan RefusedProbeSuspicionTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>TCP full-state sync with one random member every <c>PushPullInterval · (n ≤ 32 ? 1 : ceil(log2 n − 5) + 1)</c>. Zero disables. LAN 30 s.</summary>
    public TimeSpan PushPullInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// One member is probed every <c>ProbeInterval · (health + 1)</c>; a probe without any ack (direct,
    /// indirect or TCP) by the end of its interval starts a suspicion. LAN 500 ms (memberlist: 1 s): two
    /// pings of about 100 bytes and their acks per second per member.
    /// </summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Wait for a direct ack before indirect probes (not scaled by health: waiting longer does not help UDP). LAN 250 ms (memberlist: 500 ms, half its interval).</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Skip the TCP fallback probe. Default false.</summary>
    public bool DisableTcpPings { get; init; }

    /// <summary>Upper bound of the health multiplier: timeouts scale by at most this factor. LAN 8.</summary>
    public int AwarenessMaxMultiplier { get; init; } = 8;

    /// <summary>Broadcasts go to <see cref="GossipNodes"/> random members every GossipInterval. LAN 200 ms.</summary>
    public TimeSpan GossipInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Members gossiped to per interval. LAN 3.</summary>
    public int GossipNodes { get; init; } = 3;

    /// <summary>Dead members keep receiving gossip (so they can refute) and are reaped after this. LAN 30 s.</summary>
    public TimeSpan GossipToTheDeadTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Every ReconnectInterval, one push/pull with a random failed (dead, not left) member, as serf's
    /// reconnect does: memberlist alone never talks to dead members again, so without it two sides of
    /// a healed partition (or a thawed member) could stay dead to each other. Two rounds heal a pair
    /// (each side refutes the other's accusation in the first). Zero disables. Default 30 s (serf's).
    /// </summary>
    public TimeSpan ReconnectInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Failed members are remembered for reconnects this long after they failed, also after reaping. Default 24 h (serf's).</summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromHours(24);

    /// <summary>LZW-compress gossip: UDP only when smaller, TCP always (as memberlist). Default true.</summary>
    public bool EnableCompression { get; init; } = true;

    /// <summary>A dead (not left) member's name may be taken by a new address after this. Zero: never (only left members). Default 0.</summary>
    public TimeSpan DeadNodeReclaimTime { get; init; }

    /// <summary>Depth of each handoff queue (alive; suspect/dead/user) before messages are dropped. Default 1024.</summary>
    public int HandoffQueueDepth { get; init; } = 1024;

    /// <summary>Largest UDP datagram we build (gossip is packed up to this). Default 1400.</summary>
    public int UdpBufferSize { get; init; } = 1400;

    /// <summary>Seed joins: attempts per <see cref="Memberlist.JoinAsync(IEnumerable{string}, CancellationToken)"/> call before giving up. Default 1 (no retry).</summary>
    public int JoinMaxAttempts { get; init; } = 1;

    /// <summary>Wait between join attempts. Default 1 s.</summary>
    public TimeSpan JoinRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Node meta and user messages. Optional.</summary>
    public IMembershipDelegate? Delegate { get; init; }

    /// <summary>Join/leave/update events. Optional.</summary>
    public IMembershipEvents? Events { get; init; }

    /// <summary>Push/pull state. Optional.</summary>
    public IStateDelegate? State { get; init; }

    /// <summary>The embedder's broadcasts. Optional.</summary>
    public IBroadcastSource? Broadcasts { get; init; }

    /// <summary>Ack payloads and RTTs. Optional.</summary>
    public IPingDelegate? Ping { get; init; }

    /// <summary>
    /// A LAN: memberlist's DefaultLANConfig with faster failure detection — probe every 500 ms (250 ms
    /// direct timeout), SuspicionMult 6, SuspicionMaxTimeoutMult 3, a refused TCP probe ends the suspicion
    /// after 500 ms. A crashed member's process is declared dead in about 1–2.5 s, a vanished host
    /// (power off, cable) in about 3.5–4.5 s up to 10 members, and a member stopped or cut off for up to
    /// about 3 s is not declared dead (memberlist's: about 5–7 s to detect, about 5 s tolerated).
    /// </summary>
    public static MembershipOptions DefaultLan() => new();

    /// <summary>memberlist's DefaultWANConfig: longer timeouts for high latency.</summary>
    public static MembershipOptions DefaultWan() => DefaultLan() with
    {
        SuspicionMaxTimeoutMult = 6,
        TcpTimeout = TimeSpan.FromSeconds(30),
        SuspicionMult = 6,
        PushPullInterval = TimeSpan.FromSeconds(60),
        ProbeTimeout = TimeSpan.FromSeconds(3),
        ProbeInterval = TimeSpan.FromSeconds(5),
        GossipNodes = 4,
        GossipInterval = TimeSpan.FromMilliseconds(500),
        GossipToTheDeadTime = TimeSpan.FromSeconds(60),
    };

    /// <summary>memberlist's DefaultLocalConfig: loopback and tests.</summary>
    public static MembershipOptions DefaultLocal() => DefaultLan() with
    {
        SuspicionMaxTimeoutMult = 6,
        TcpTimeout = TimeSpan.FromSeconds(1),
        IndirectChecks = 1,
        RetransmitMult = 2,
        SuspicionMult = 3,
        PushPullInterval = TimeSpan.FromSeconds(15),
        ProbeTimeout = TimeSpan.FromMilliseconds(200),
        ProbeInterval = TimeSpan.FromSeconds(1),
        GossipInterval = TimeSpan.FromMilliseconds(100),
        GossipToTheDeadTime = TimeSpan.FromSeconds(15),
    };

    internal void Validate()
    {
        if (string.IsNullOrEmpty(Name)) throw new ArgumentException("Name is required");
        if (ProtocolVersion is < Wire.ProtocolConstants.ProtocolVersionMin or > Wire.ProtocolConstants.ProtocolVersionMax)
            throw new ArgumentException($"ProtocolVersion must be in [{Wire.ProtocolConstants.ProtocolVersionMin}, {Wire.ProtocolConstants.ProtocolVersionMax}]");
        if (ProtocolVersion < 2) throw new ArgumentException("protocol versions below 2 are not spoken (they are still understood)");
        if (DelegateProtocolVersion < DelegateProtocolMin || DelegateProtocolVersion > DelegateProtocolMax)
            throw new ArgumentException("DelegateProtocolVersion must lie in [DelegateProtocolMin, DelegateProtocolMax]");
        if (ProbeInterval <= TimeSpan.Zero || ProbeTimeout <= TimeSpan.Zero) throw new ArgumentException("ProbeInterval and ProbeTimeout must be positive");
        if (RefusedProbeSuspicionTimeout < TimeSpan.Zero) throw new ArgumentException("RefusedProbeSuspicionTimeout must not be negative (zero disables it)");
        if (IndirectChecks < 0 || GossipNodes < 0 || SuspicionMult < 1 || SuspicionMaxTimeoutMult < 1 || RetransmitMult < 1 || AwarenessMaxMultiplier < 1)
            throw new ArgumentException("multipliers and counts must be positive");
        if (UdpBufferSize < 256) throw new ArgumentException("UdpBufferSize must be at least 256");
    }
}
