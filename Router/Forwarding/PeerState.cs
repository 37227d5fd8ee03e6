namespace UserOverlay.Router.Forwarding;

/// <summary>A peer VTEP from which VXLAN is accepted, keyed by its address.</summary>
internal sealed class PeerState(VtepEndpoint endpoint)
{
    /// <summary>Address and data port (the port we send to; peers may send from any source port).</summary>
    public readonly VtepEndpoint Endpoint = endpoint;
}
