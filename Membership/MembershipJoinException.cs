namespace UserOverlay.Membership;

/// <summary>Joining failed: no seed answered.</summary>
public sealed class MembershipJoinException(string message) : Exception(message);
