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
