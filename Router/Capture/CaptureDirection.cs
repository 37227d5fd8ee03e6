namespace UserOverlay.Router.Capture;

/// <summary>Which frames a capture takes, seen from this host's endpoints.</summary>
public enum CaptureDirection
{
    /// <summary>Both directions.</summary>
    Both,
    /// <summary>Towards the endpoints: inner frames received from the underlay (with an endpoint: also what other local
    /// endpoints send to it); on the underlay, datagrams received.</summary>
    In,
    /// <summary>From the endpoints: frames read from their TAPs; on the underlay, datagrams sent.</summary>
    Out,
}
