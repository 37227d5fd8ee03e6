namespace UserOverlay.Membership.Table;

/// <summary>
/// One table event as gossip carries it: a <see cref="NetworkAttachment"/> or an <see cref="EndpointRecord"/>,
/// exactly one of the two (the default value holds neither and is never produced). What a gossip batch decodes
/// to, and what the table holds back for an owner it has not heard of yet. Immutable.
/// </summary>
internal readonly struct TableEvent
{
    private TableEvent(NetworkAttachment? attachment, EndpointRecord? endpoint)
    {
        Attachment = attachment;
        Endpoint = endpoint;
    }

    /// <summary>The attachment, or null if this event is an endpoint record.</summary>
    public NetworkAttachment? Attachment { get; }

    /// <summary>The endpoint record, or null if this event is an attachment.</summary>
    public EndpointRecord? Endpoint { get; }

    /// <summary>Wraps an attachment.</summary>
    public static implicit operator TableEvent(NetworkAttachment attachment) =>
        new(attachment ?? throw new ArgumentNullException(nameof(attachment)), null);

    /// <summary>Wraps an endpoint record.</summary>
    public static implicit operator TableEvent(EndpointRecord endpoint) =>
        new(null, endpoint ?? throw new ArgumentNullException(nameof(endpoint)));
}
