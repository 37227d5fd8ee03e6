using System.Net;

namespace UserOverlay.Membership;

/// <summary>A member's state as memberlist keeps it (pushNodeState.State on the wire).</summary>
// WARNING: only append — numeric values are on the wire.
public enum MemberState
{
    /// <summary>Answering probes.</summary>
    Alive = 0,
    /// <summary>Missed a probe round; will be declared dead unless it refutes within the suspicion timeout.</summary>
    Suspect = 1,
    /// <summary>Declared failed.</summary>
    Dead = 2,
    /// <summary>Left gracefully (a dead message it sent about itself).</summary>
    Left = 3,
}

/// <summary>The protocol and delegate version ranges a member advertises (memberlist's Vsn).</summary>
/// <param name="ProtocolMin">Lowest memberlist protocol it understands.</param>
/// <param name="ProtocolMax">Highest memberlist protocol it understands.</param>
/// <param name="ProtocolCurrent">The memberlist protocol it speaks.</param>
/// <param name="DelegateMin">Lowest delegate (embedder) protocol it understands.</param>
/// <param name="DelegateMax">Highest delegate protocol it understands.</param>
/// <param name="DelegateCurrent">The delegate protocol it speaks.</param>
public readonly record struct ProtocolVersions(byte ProtocolMin, byte ProtocolMax, byte ProtocolCurrent, byte DelegateMin, byte DelegateMax, byte DelegateCurrent)
{
    internal byte[] ToVsn() => [ProtocolMin, ProtocolMax, ProtocolCurrent, DelegateMin, DelegateMax, DelegateCurrent];

    internal static ProtocolVersions FromVsn(ReadOnlySpan<byte> v) =>
        v.Length >= 6 ? new(v[0], v[1], v[2], v[3], v[4], v[5])
        : v.Length >= 3 ? new(v[0], v[1], v[2], 0, 0, 0)
        : default;

    /// <inheritdoc/>
    public override string ToString() => $"protocol {ProtocolCurrent} [{ProtocolMin},{ProtocolMax}], delegate {DelegateCurrent} [{DelegateMin},{DelegateMax}]";
}

/// <summary>
/// An immutable snapshot of one member, as returned by <see cref="Memberlist.Members"/> and passed
/// to <see cref="IMembershipEvents"/>. Safe to keep and share across threads.
/// </summary>
/// <param name="Name">Unique node name.</param>
/// <param name="Address">Gossip address (advertised).</param>
/// <param name="Port">Gossip port (UDP and TCP).</param>
/// <param name="State">State as this member sees it.</param>
/// <param name="Incarnation">Incarnation number (raised by the member to refute suspicion).</param>
/// <param name="Meta">Node meta (at most 512 bytes); the embedder's format. Never null.</param>
/// <param name="Versions">Advertised protocol/delegate versions.</param>
/// <param name="StateChangedAt">When this member last changed state, as seen locally (UTC).</param>
public sealed record MemberInfo(
    string Name,
    IPAddress Address,
    int Port,
    MemberState State,
    uint Incarnation,
    ReadOnlyMemory<byte> Meta,
    ProtocolVersions Versions,
    DateTimeOffset StateChangedAt)
{
    /// <summary>Address and port as an endpoint.</summary>
    public IPEndPoint EndPoint => new(Address, Port);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {Address}:{Port} {State} inc={Incarnation}";
}
