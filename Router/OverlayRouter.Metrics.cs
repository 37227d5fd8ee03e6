using System.Diagnostics;
using UserOverlay.Crypto;

namespace UserOverlay.Router;

/// <summary>One peer VTEP's traffic, for metrics: valid datagrams received from it and how long ago the last one came.</summary>
/// <param name="Vtep">The peer, "ip:port".</param>
/// <param name="DatagramsReceived">Valid datagrams (VXLAN of one of this host's networks, or authentic ESP) received from it.</param>
/// <param name="LastHeardSeconds">Seconds since the last one; null when none ever came.</param>
public sealed record PeerTraffic(string Vtep, long DatagramsReceived, double? LastHeardSeconds);

// What an operator alerts on, beyond RouterStatus: per-peer traffic, the workers' busy time, the ESP SAs' age.
public sealed partial class OverlayRouter
{
    /// <summary>Every peer's traffic (a snapshot; allocates).</summary>
    public IReadOnlyList<PeerTraffic> PeerTraffic()
    {
        long now = Environment.TickCount64;
        return _state.Peers.ToList().Select(kv => kv.Value).OrderBy(p => p.Endpoint.Address).Select(p =>
        {
            long n = 0;
            for (int w = 0; w < _state.Workers; w++) n += Volatile.Read(ref p.Received[w * Forwarding.PeerState.Stride]);
            long heard = Volatile.Read(ref p.LastHeard);
            return new PeerTraffic(p.Endpoint.ToString(), n, heard > 0 ? Math.Max(0, (now - heard) / 1000.0) : null);
        }).ToList();
    }

    /// <summary>
    /// Seconds each pipeline worker (index = queue) has spent handling rounds rather than waiting in epoll_wait since it
    /// started: the rate of this over wall time is the worker's busy ratio.
    /// </summary>
    public IReadOnlyList<double> WorkerBusySeconds => _workers.Select(w => w.BusyTicks / (double)Stopwatch.Frequency).ToList();

    /// <summary>
    /// Age in seconds of the outbound SAs in use (all of the current key epoch: they were made when it began), or null
    /// without encryption. It grows to the rekey interval and falls back to 0 at each rekey.
    /// </summary>
    public double? EspSaAgeSeconds => _esp is not { } esp ? null
        : Math.Max(0, (DateTimeOffset.UtcNow - EspEpoch.Start(esp.CurrentEpoch, esp.Options.RekeyInterval)).TotalSeconds);
}
