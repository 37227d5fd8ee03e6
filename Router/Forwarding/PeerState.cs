using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Forwarding;

/// <summary>A peer VTEP from which VXLAN is accepted, keyed by its address.</summary>
internal sealed class PeerState(VtepEndpoint endpoint, long lastHeard = 0, long[]? received = null)
{
    /// <summary>Slots between two workers' counters in <see cref="Received"/> (a cache line: no false sharing).</summary>
    public const int Stride = 8;

    /// <summary>
    /// Valid datagrams received from this peer, per worker at index worker × <see cref="Stride"/> (each written by its
    /// worker only, summed by readers). Sized for <see cref="Constants.MaxWorkers"/>; handed on when the peer's entry is replaced.
    /// </summary>
    public readonly long[] Received = received ?? new long[Constants.MaxWorkers * Stride];

    /// <summary>Address and data port (the port we send to; peers may send from any source port).</summary>
    public readonly VtepEndpoint Endpoint = endpoint;

    /// <summary>
    /// Environment.TickCount64 when a valid datagram (VXLAN of one of our networks, or authentic ESP) last came from
    /// this peer; 0: never. Written by the receiving worker at most every <see cref="Constants.StampGranularityMilliseconds"/>
    /// (benign race between workers: any recent stamp will do), read by the housekeeping sweep and status.
    /// </summary>
    public long LastHeard = lastHeard;

    /// <summary>A valid datagram came from this peer, on <paramref name="worker"/>: counts it and stamps the peer as heard.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Accepted(int worker, long now)
    {
        Received[worker * Stride]++;
        Heard(now);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Heard(long now)
    {
        if (now - Volatile.Read(ref LastHeard) >= Constants.StampGranularityMilliseconds) Volatile.Write(ref LastHeard, now);
    }
}
