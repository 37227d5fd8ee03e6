namespace UserOverlay.Membership.Transport;

/// <summary>Thrown when a stream exchange must be abandoned; carries the drop reason and memberlist's error text (sent back as errResp).</summary>
internal sealed class StreamProtocolException(DropReason reason, string message) : Exception(message)
{
    public DropReason Reason { get; } = reason;
}
