using System.Globalization;
using Prometheus;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The series an operator alerts on, beside <see cref="RouterMetrics"/>' traffic counters:
/// <list type="bullet">
/// <item><c>useroverlay_peer_datagrams_received_total{peer}</c>: valid datagrams (VXLAN of one of this host's networks, or authentic ESP) from each peer VTEP</item>
/// <item><c>useroverlay_peer_last_heard_seconds{peer}</c>: seconds since the last one (absent until one came) — alert on it growing</item>
/// <item><c>useroverlay_esp_sa_age_seconds</c>: age of the outbound SAs in use (back to 0 at each rekey); <c>useroverlay_esp_rekeys_total</c>: outbound SAs replaced by a newer key epoch</item>
/// <item><c>useroverlay_captures_running</c> and <c>useroverlay_capture_dropped_frames_total</c>: live captures, and the frames they lost because their readers fell behind (forwarding lost none)</item>
/// <item><c>useroverlay_worker_busy_seconds_total{worker}</c>: time each pipeline worker spent handling rounds instead of waiting; its rate is the worker's busy ratio (1 = saturated)</item>
/// </list>
/// </summary>
internal sealed class OperatorMetrics
{
    private readonly OverlayRouter _router;
    private readonly Counter _peerDatagrams;
    private readonly Gauge _peerLastHeard;
    private readonly Gauge _saAge;
    private readonly Counter _rekeys;
    private readonly Gauge _captures;
    private readonly Counter _captureDrops;
    private readonly Counter _busy;

    private OperatorMetrics(IMetricFactory f, OverlayRouter router)
    {
        _router = router;
        _peerDatagrams = f.CreateCounter("useroverlay_peer_datagrams_received_total", "Valid datagrams (VXLAN of this host's networks, or authentic ESP) received from each peer VTEP.", ["peer"]);
        _peerLastHeard = f.CreateGauge("useroverlay_peer_last_heard_seconds", "Seconds since a valid datagram last came from each peer VTEP (absent until one came).", ["peer"]);
        _saAge = f.CreateGauge("useroverlay_esp_sa_age_seconds", "Age of the outbound ESP SAs in use, in seconds (0 again at each rekey).");
        _rekeys = f.CreateCounter("useroverlay_esp_rekeys_total", "Outbound ESP SAs replaced by a newer key epoch.");
        _captures = f.CreateGauge("useroverlay_captures_running", "Live captures running (useroverlay capture).");
        _captureDrops = f.CreateCounter("useroverlay_capture_dropped_frames_total", "Frames captures lost because their readers fell behind (never forwarded frames).");
        _busy = f.CreateCounter("useroverlay_worker_busy_seconds_total", "Seconds each pipeline worker spent handling traffic rather than waiting; its rate is the busy ratio.", ["worker"]);
    }

    public static OperatorMetrics Create(IMetricFactory f, OverlayRouter router) => new(f, router);

    /// <summary>Copies the router's figures into the collectors (called before each scrape).</summary>
    public void Collect(RouterStatus status)
    {
        foreach (var p in _router.PeerTraffic())
        {
            _peerDatagrams.WithLabels(p.Vtep).IncTo(p.DatagramsReceived);
            if (p.LastHeardSeconds is double age) _peerLastHeard.WithLabels(p.Vtep).Set(age);
        }
        if (_router.EspSaAgeSeconds is double saAge) _saAge.Set(saAge);
        if (status.Esp is { } esp) _rekeys.IncTo(esp.Rotations);
        _captures.Set(_router.Captures.Count);
        _captureDrops.IncTo(_router.CaptureDrops);
        var busy = _router.WorkerBusySeconds;
        for (int w = 0; w < busy.Count; w++) _busy.WithLabels(w.ToString(CultureInfo.InvariantCulture)).IncTo(busy[w]);
    }
}
