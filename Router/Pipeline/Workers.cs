using Microsoft.Extensions.Logging;
using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// The endpoint → underlay worker: one named thread blocked in epoll_wait over every TAP of this
/// queue, draining each ready TAP into a fixed batch of pinned buffers and flushing the VXLAN
/// datagrams with one sendmmsg per round (see the flow in Outbound.cs). Not a thread per endpoint:
/// one worker serves any number of endpoints. The batch buffers are rented once at start.
/// </summary>
internal sealed class OutboundWorker : IDisposable
{
    private readonly ForwardingState _state;
    private readonly Outbound _outbound;
    private readonly EpollSet _epoll = new();
    private readonly PacketBufferPool _pool;
    private readonly PacketBuffer[] _bufs;
    private readonly int[] _sizes;
    private readonly Interop.EpollEvent[] _events = new Interop.EpollEvent[Constants.IdealBatchSize];
    private readonly ILogger _log;
    private readonly Thread _thread;
    private volatile bool _stop;

    public OutboundWorker(ForwardingState state, IUnderlay underlay, int workerId, int batch, PacketBufferPool pool, ILogger log)
    {
        _state = state;
        _pool = pool;
        _log = log;
        _outbound = new Outbound(state, underlay, workerId);
        WorkerId = workerId;
        _bufs = new PacketBuffer[batch];
        for (int i = 0; i < batch; i++) _bufs[i] = pool.Rent();
        _sizes = new int[batch];
        _thread = new Thread(Run) { Name = $"uo-outbound-{workerId}", IsBackground = true };
    }

    public int WorkerId { get; }

    /// <summary>Starts watching a port's TAP.</summary>
    public void AddPort(LocalPort port) => _epoll.Add(port.Tap.ReadinessHandle, (ulong)port.Id);

    /// <summary>Stops watching a port's TAP.</summary>
    public void RemovePort(LocalPort port) => _epoll.Remove(port.Tap.ReadinessHandle);

    public void Start() => _thread.Start();

    private void Run()
    {
        int batch = _bufs.Length;
        while (!_stop)
        {
            int n = _epoll.Wait(_events, -1);
            long now = Environment.TickCount64;
            int used = 0;
            try
            {
                for (int i = 0; i < n; i++)
                {
                    ulong token = _events[i].Data;
                    if (token == EpollSet.WakeToken) { _epoll.ClearWake(); continue; }
                    LocalPort? port = _state.Port((int)token);
                    if (port is null) continue;
                    // Drain this TAP, at most one batch per round so a busy endpoint cannot starve the others
                    // (epoll is level-triggered: what is left is reported again next round).
                    for (int drained = 0; drained < batch;)
                    {
                        if (used == batch) { _outbound.Flush(); used = 0; }
                        int room = Math.Min(batch - used, batch - drained);
                        int got = port.Tap.Read(_bufs.AsSpan(used, room), _sizes.AsSpan(used, room), Constants.Headroom);
                        if (got == 0) break;
                        for (int j = 0; j < got; j++)
                            _outbound.ProcessFrame(port, _bufs[used + j], Constants.Headroom, _sizes[used + j], now);
                        used += got;
                        drained += got;
                    }
                }
                _outbound.Flush();
            }
            catch (Exception e) when (!_stop)
            {
                _state.Global[WorkerId].Drops[(int)DropReason.InternalError]++;
                Log.WorkerError(_log, Thread.CurrentThread.Name, e);
                _outbound.Flush();
            }
        }
    }

    public void Dispose()
    {
        _stop = true;
        _epoll.Wake();
        if (_thread.IsAlive) _thread.Join();
        _epoll.Dispose();
        foreach (var b in _bufs) _pool.Return(b);
    }
}

/// <summary>
/// The underlay → endpoint worker: one named thread blocked in recvmmsg on the VXLAN socket,
/// handling each batch to completion (see the flow in Inbound.cs). Stopped by closing the
/// underlay, which wakes the blocked receive.
/// </summary>
internal sealed class InboundWorker : IDisposable
{
    private readonly ForwardingState _state;
    private readonly IUnderlay _underlay;
    private readonly Inbound _inbound;
    private readonly PacketBufferPool _pool;
    private readonly UnderlayDatagram[] _datagrams;
    private readonly ILogger _log;
    private readonly Thread _thread;
    private volatile bool _stop;

    public InboundWorker(ForwardingState state, IUnderlay underlay, int workerId, int batch, PacketBufferPool pool, ILogger log)
    {
        _state = state;
        _underlay = underlay;
        _pool = pool;
        _log = log;
        _inbound = new Inbound(state, workerId);
        WorkerId = workerId;
        _datagrams = new UnderlayDatagram[batch];
        for (int i = 0; i < batch; i++) _datagrams[i].Buffer = pool.Rent();
        _thread = new Thread(Run) { Name = $"uo-inbound-{workerId}", IsBackground = true };
    }

    public int WorkerId { get; }

    public void Start() => _thread.Start();

    private void Run()
    {
        // The VXLAN header lands in the headroom, the inner frame exactly at Headroom.
        const int offset = Constants.Headroom - Constants.VxlanHeaderLength;
        while (true)
        {
            int n = _underlay.Receive(_datagrams, offset);
            if (n == 0)
            {
                if (_stop) return;
                continue;
            }
            long now = Environment.TickCount64;
            for (int i = 0; i < n; i++)
            {
                try
                {
                    _inbound.ProcessDatagram(ref _datagrams[i], now);
                }
                catch (Exception e)
                {
                    _state.Global[WorkerId].Drops[(int)DropReason.InternalError]++;
                    Log.WorkerError(_log, Thread.CurrentThread.Name, e);
                }
            }
        }
    }

    /// <summary>Asks the worker to stop; the caller then closes the underlay to wake it.</summary>
    public void RequestStop() => _stop = true;

    public void Dispose()
    {
        _stop = true;
        _underlay.Close();
        if (_thread.IsAlive) _thread.Join();
        foreach (var d in _datagrams) _pool.Return(d.Buffer);
    }
}
