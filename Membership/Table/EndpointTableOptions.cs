using System.Net;

namespace UserOverlay.Membership.Table;

/// <summary>Options of an <see cref="EndpointTable"/>.</summary>
public sealed record EndpointTableOptions
{
    /// <summary>The member's options (name, bind, keyring, timings). The table installs its own delegates (meta, user messages, state, broadcasts, events) and forwards events to <see cref="MembershipOptions.Events"/> if set.</summary>
    public required MembershipOptions Membership { get; init; }

    /// <summary>This host's VTEP address, published in node meta and in every record it owns.</summary>
    public required IPAddress VtepAddress { get; init; }

    /// <summary>This host's VXLAN data port, published in node meta. Default 4789.</summary>
    public int DataPort { get; init; } = 4789;

    /// <summary>How long deleted records and network leaves are kept (so late gossip cannot resurrect them). NetworkDB: 30 min.</summary>
    public TimeSpan TombstoneTtl { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often tombstones are reaped. Default 5 s.</summary>
    public TimeSpan ReapInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long records and attachments of a not-yet-known owner are held for its join (its gossip can outrun its alive message). Default 30 s.</summary>
    public TimeSpan PendingTtl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Receives endpoint and flood-list changes. Optional (the table can also be polled).</summary>
    public IEndpointTableObserver? Observer { get; init; }
}
