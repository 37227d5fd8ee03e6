using System.Globalization;
using UserOverlay.Membership;
using UserOverlay.Membership.Table;

namespace UserOverlay.Control.Gossip;

/// <summary>
/// <c>GET /v1/members</c>: this node and every member it knows (alive, suspect, and dead or left
/// ones until they are reaped), as <c>useroverlay members</c> prints them.
/// </summary>
/// <param name="Node">This member's name.</param>
/// <param name="Address">This member's gossip address (advertised, address:port).</param>
/// <param name="Encrypted">Whether gossip is encrypted (a key is configured).</param>
/// <param name="Joined">True once a seed answered (always true without seeds).</param>
/// <param name="Seeds">Seeds from the configuration (without this member's own address).</param>
/// <param name="HealthScore">Lifeguard's local health (0 is healthy; timeouts scale by score + 1).</param>
/// <param name="Members">Every member, this one included, sorted by name.</param>
public sealed record MembersResponse(
    string Node,
    string Address,
    bool Encrypted,
    bool Joined,
    IReadOnlyList<string> Seeds,
    int HealthScore,
    IReadOnlyList<MemberStatus> Members)
{
    internal static MembersResponse From(GossipAgent agent, IReadOnlyDictionary<string, string> networkNames)
    {
        var table = agent.Table;
        var ml = table.Memberlist;
        // Which member is attached to which of our networks (the table knows attachments of every network).
        var attached = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (id, name) in networkNames.OrderBy(kv => kv.Value, StringComparer.Ordinal))
            foreach (var p in table.GetNetworkPeers(id))
                (attached.TryGetValue(p.NodeName, out var l) ? l : attached[p.NodeName] = []).Add(name);
        var ownNets = table.Networks.Select(id => networkNames.TryGetValue(id, out var n) ? n : "vni:" + id).ToList();

        var now = DateTimeOffset.UtcNow;
        var members = ml.AllMembers.Select(m =>
        {
            bool self = m.Name == table.NodeName;
            string? vtep = OverlayNodeMeta.TryParse(m.Meta.Span, out var meta) ? $"{meta!.VtepAddress}:{meta.DataPort}" : null;
            var v = m.Versions;
            return new MemberStatus(
                m.Name, $"{m.Address}:{m.Port}", m.State.ToString().ToLowerInvariant(), m.Incarnation,
                new VersionRange(v.ProtocolMin, v.ProtocolMax, v.ProtocolCurrent),
                new VersionRange(v.DelegateMin, v.DelegateMax, v.DelegateCurrent),
                vtep,
                self ? ownNets : attached.TryGetValue(m.Name, out var nets) ? nets : [],
                self,
                Math.Round((now - m.StateChangedAt).TotalSeconds, 1));
        }).ToList();
        return new MembersResponse(table.NodeName, ml.AdvertiseEndPoint.ToString(), ml.Options.Keyring is not null,
            agent.Joined, agent.Seeds, ml.HealthScore, members);
    }

    /// <summary>Members per state ("alive", "suspect", "dead", "left"), zero included.</summary>
    public IReadOnlyDictionary<string, int> CountByState()
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in Enum.GetValues<MemberState>()) d[s.ToString().ToLower(CultureInfo.InvariantCulture)] = 0;
        foreach (var m in Members) d[m.State] = d.GetValueOrDefault(m.State) + 1;
        return d;
    }
}

/// <summary>One member as this node sees it.</summary>
/// <param name="Name">Node name.</param>
/// <param name="Address">Gossip address:port.</param>
/// <param name="State">alive, suspect, dead or left.</param>
/// <param name="Incarnation">Its incarnation number (raised to refute suspicion, and on restart after a failure).</param>
/// <param name="Protocol">memberlist protocol versions it understands and speaks.</param>
/// <param name="Delegate">Delegate (embedder) protocol versions.</param>
/// <param name="Vtep">Its VTEP address:data port from its node meta, or null (not a UserOverlay node, e.g. a serf agent).</param>
/// <param name="Networks">This host's networks it has endpoints on (for this node: its own).</param>
/// <param name="Local">True for this node.</param>
/// <param name="StateAgeSeconds">Seconds since its state last changed, as seen here.</param>
public sealed record MemberStatus(
    string Name,
    string Address,
    string State,
    uint Incarnation,
    VersionRange Protocol,
    VersionRange Delegate,
    string? Vtep,
    IReadOnlyList<string> Networks,
    bool Local,
    double StateAgeSeconds);

/// <summary>A version range as memberlist advertises it (Vsn).</summary>
public sealed record VersionRange(int Min, int Max, int Current)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Current} [{Min},{Max}]";
}
