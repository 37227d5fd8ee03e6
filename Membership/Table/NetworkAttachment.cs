namespace UserOverlay.Membership.Table;

/// <summary>A node's membership of a network (NetworkDB's network attachment), versioned by the node's Lamport time.</summary>
internal sealed record NetworkAttachment(string Node, string NetworkId, ulong LamportTime, bool Left);
