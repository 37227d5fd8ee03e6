using System.Net;

namespace UserOverlay.Membership;

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
