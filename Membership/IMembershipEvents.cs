namespace UserOverlay.Membership;

/// <summary>Membership changes (memberlist's EventDelegate).</summary>
public interface IMembershipEvents
{
    /// <summary>A member became alive (first seen, or back from dead/left). Including the local node at start.</summary>
    void OnJoin(MemberInfo member);

    /// <summary>A member was declared dead or left.</summary>
    void OnLeave(MemberInfo member);

    /// <summary>A live member's meta changed.</summary>
    void OnUpdate(MemberInfo member);
}
