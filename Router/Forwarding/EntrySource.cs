namespace UserOverlay.Router.Forwarding;

/// <summary>Where an FDB or neighbour entry came from.</summary>
public enum EntrySource
{
    /// <summary>A local endpoint of this host (from configuration or learned from its TAP).</summary>
    Local,
    /// <summary>Configured statically.</summary>
    Static,
    /// <summary>Learned from the data path; ages out.</summary>
    Learned,
    /// <summary>Learned from the cluster's gossip.</summary>
    Gossip,
}
