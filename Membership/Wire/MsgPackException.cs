namespace UserOverlay.Membership.Wire;

/// <summary>Thrown by <see cref="MsgPackReader"/> on malformed or truncated input. Caught at message boundaries and counted.</summary>
internal sealed class MsgPackException(string message, bool truncated = false) : Exception(message)
{
    /// <summary>True when the input ended early (a truncated message), false when it was malformed.</summary>
    public bool Truncated { get; } = truncated;
}
