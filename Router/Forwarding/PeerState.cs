using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Forwarding;

/// <summary>A peer VTEP from which VXLAN is accepted, keyed by its address.</summary>
internal sealed class PeerState(VtepEndpoint endpoint, long lastHeard = 0)
{
    /// <summary>Address and data port (the port we send to; peers may send from any source port).</summary>
    public readonly VtepEndpoint Endpoint = endpoint;

    /// <summary>
    /// Environment.TickCount64 when a valid datagram (VXLAN of one of our networks, or authentic ESP) last came from
    /// this peer; 0: never. Written by the receiving worker at most every <see cref="Constants.StampGranularityMilliseconds"/>
    /// (benign race between workers: any recent stamp will do), read by the housekeeping sweep and status.
    /// </summary>
    public long LastHeard = lastHeard;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Heard(long now)
    {
        if (now - Volatile.Read(ref LastHeard) >= Constants.StampGranularityMilliseconds) Volatile.Write(ref LastHeard, now);
    }
}
