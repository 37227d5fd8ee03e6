namespace UserOverlay.Crypto;

/// <summary>Direction of an SA as seen from this host.</summary>
public enum EspDirection
{
    /// <summary>This host seals with it (source = local VTEP).</summary>
    Outbound = 0,

    /// <summary>This host opens with it (destination = local VTEP).</summary>
    Inbound = 1,
}
