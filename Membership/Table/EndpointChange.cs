namespace UserOverlay.Membership.Table;

/// <summary>A change of one remote endpoint record, in a network this node has joined.</summary>
/// <param name="Kind">Added, updated or removed.</param>
/// <param name="Record">The record now (for Removed: the record as it was).</param>
/// <param name="Previous">The record before (for Updated), else null.</param>
public readonly record struct EndpointChange(EndpointChangeKind Kind, EndpointRecord Record, EndpointRecord? Previous);
