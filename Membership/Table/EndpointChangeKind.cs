namespace UserOverlay.Membership.Table;

/// <summary>What happened to a remote endpoint record.</summary>
// WARNING: only append — numeric values may be logged and exported.
public enum EndpointChangeKind
{
    /// <summary>A new remote endpoint (or one in a network we just joined): add FDB and proxy-ARP entries.</summary>
    Added = 0,
    /// <summary>Its IP or VTEP changed (or it moved to another owner): replace the entries.</summary>
    Updated = 1,
    /// <summary>Deleted by its owner, its owner failed or left, or we left the network: remove the entries.</summary>
    Removed = 2,
}
