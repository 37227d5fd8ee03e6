namespace UserOverlay.Router;

/// <summary>
/// Why the data path dropped a frame or datagram. Every drop increments exactly one counter.
/// WARNING: only append — the names are metric label values that dashboards key on.
/// </summary>
public enum DropReason
{
    /// <summary>Shorter than a VXLAN header plus an Ethernet header, or an Ethernet frame shorter than its header.</summary>
    Truncated,
    /// <summary>VXLAN flags without the I bit (RFC 7348 §5: the VNI is not valid).</summary>
    BadVxlanFlags,
    /// <summary>A VNI this host has no network for.</summary>
    UnknownVni,
    /// <summary>VXLAN from an address that is not a peer VTEP.</summary>
    UnknownSource,
    /// <summary>An inner frame longer than the network's MTU allows, or a datagram larger than a buffer.</summary>
    Oversized,
    /// <summary>A multicast or all-zero source MAC.</summary>
    BadSourceMac,
    /// <summary>A frame from the underlay whose source MAC is one of this host's local endpoints.</summary>
    SpoofedSource,
    /// <summary>A unicast frame from the underlay for a MAC this host knows lives elsewhere.</summary>
    NotLocal,
    /// <summary>A frame with nowhere to go (no other port, no peer).</summary>
    NoDestination,
    /// <summary>A frame addressed back to the port it came from.</summary>
    Hairpin,
    /// <summary>The network's FDB or neighbour table is full; the source was not learned (the frame is still forwarded).</summary>
    LearningTableFull,
    /// <summary>The underlay refused a datagram (sendmmsg error).</summary>
    SendFailed,
    /// <summary>Writing to an endpoint's TAP failed.</summary>
    EndpointWriteFailed,
    /// <summary>An unexpected error while handling a frame (a bug: reported in the log); the router carries on.</summary>
    InternalError,
}

/// <summary>Stable snake_case names of <see cref="DropReason"/> values for metrics and JSON.</summary>
public static class DropReasons
{
    /// <summary>Number of reasons.</summary>
    public static readonly int Count = Enum.GetValues<DropReason>().Length;

    private static readonly string[] Names = Enum.GetValues<DropReason>().Select(ToSnakeCase).ToArray();

    /// <summary>"unknown_vni" for <see cref="DropReason.UnknownVni"/>.</summary>
    public static string Name(DropReason reason) => Names[(int)reason];

    private static string ToSnakeCase(DropReason r)
    {
        string s = r.ToString();
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsUpper(s[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(s[i]));
        }
        return sb.ToString();
    }
}
