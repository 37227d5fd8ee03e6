using Microsoft.Extensions.Logging;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// A pipeline worker for one queue: one named thread blocked in epoll_wait over the queue's VXLAN
/// socket and every TAP, running each ready source to completion in both directions (Nebula's
/// shape): a batch from the socket goes through <see cref="Inbound"/> to the TAPs, a drain of each
/// ready TAP goes through <see cref="Outbound"/> and leaves in one sendmmsg per round.
/// <para>
/// Why one thread for both directions rather than a thread per direction: the TAP write of an
/// inbound frame runs the endpoint's stack synchronously, so its answer (an echo reply, a TCP ACK)
/// is already queued on the TAP when the write returns; this thread picks it up on its next
/// epoll_wait without sleeping, where a separate outbound thread would have to be woken — and
/// waking an idle thread costs more than the whole forwarding work on a virtual machine. More
/// cores are used by more queues (multi-queue TAP, SO_REUSEPORT sockets), one worker each.
/// </para>
/// Buffers: a fixed batch for TAP reads and one for socket receives, rented once at start.
/// </summary>
internal sealed class QueueWorker : IDisposable
{
    private const ulong UnderlayToken = EpollSet.WakeToken - 1;
    private const ulong EspToken = EpollSet.WakeToken - 2;
    /// <summary>Receive batches handled per wake before the TAPs get their turn.</summary>
    private const int MaxReceiveRounds = 4;

    private readonly ForwardingState _state;
    private readonly IUnderlay _underlay;
    private readonly IUnderlay? _espUnderlay;
    private readonly Outbound _outbound;
    private readonly Inbound _inbound;
    private readonly EpollSet _epoll = new();
    private readonly PacketBufferPool _pool;
    private readonly PacketBufferPool _largePool;
    private readonly PacketBuffer[] _tapBufs;
    private readonly int[] _sizes;
    private readonly Offload.OffloadInfo[] _offloads;
    private readonly Offload.Coalescer _coalescer;
    private readonly UnderlayDatagram[] _datagrams;
    private readonly bool _rxLarge;
    private readonly Interop.EpollEvent[] _events = new Interop.EpollEvent[Constants.IdealBatchSize];
    private readonly ILogger _log;
    private readonly Thread _thread;
    private long _lastErrorLog;
    private volatile bool _stop;
    private long _epoch; // rounds finished (see Epoch)

    private readonly int _cpu;
    private readonly bool _useIoUring;
    private readonly TapWriteQueue _tapWrites = new();
    private IoRing? _ring;

    /// <summary>Ring submissions: a TAP drain's reads or a round's writes, never both at once.</summary>
    private const uint RingEntries = TapWriteQueue.Capacity;

    // cpu: the CPU to pin the thread to (queue i of several runs on CPU i, see QueuePolicy); -1: not pinned.
    // useIoUring: batch TAP reads and writes through an io_uring (falls back to a system call per frame where refused).
    public QueueWorker(ForwardingState state, IUnderlay underlay, IUnderlay? espUnderlay, int workerId, int batch,
        PacketBufferPool pool, PacketBufferPool largePool, ILogger log, int cpu = -1, bool useIoUring = false)
    {
        _cpu = cpu;
        _useIoUring = useIoUring;
        _largePool = largePool;
        _state = state;
        _underlay = underlay;
        _espUnderlay = espUnderlay;
        _pool = pool;
        _log = log;
        WorkerId = workerId;
        _outbound = new Outbound(state, underlay, workerId, espUnderlay, writes: _tapWrites);
        _coalescer = new Offload.Coalescer(largePool.Rent, workerId, _tapWrites);
        _inbound = new Inbound(state, workerId, _coalescer, _tapWrites);
        // TAP reads may return 64 KB TCP super-frames (TSO), so their buffers are large; socket receives are not.
        _tapBufs = new PacketBuffer[batch];
        for (int i = 0; i < batch; i++) _tapBufs[i] = largePool.Rent();
        _sizes = new int[batch];
        _offloads = new Offload.OffloadInfo[batch];
        _datagrams = new UnderlayDatagram[batch];
        // With UDP GRO a receive may hold up to 64 KB of coalesced datagrams.
        _rxLarge = underlay.SupportsSegmentation;
        for (int i = 0; i < batch; i++) _datagrams[i].Buffer = _rxLarge ? largePool.Rent() : pool.Rent();
        _epoll.Add(underlay.ReadinessHandle, UnderlayToken);
        if (espUnderlay is { Receives: true }) _epoll.Add(espUnderlay.ReadinessHandle, EspToken);
        _thread = new Thread(Run) { Name = $"uo-queue-{workerId}", IsBackground = true };
    }

    public int WorkerId { get; }

    /// <summary>Starts watching this worker's queue of a port's TAP.</summary>
    public void AddPort(LocalPort port) => _epoll.Add(port.Tap.Queue(WorkerId).ReadinessHandle, (ulong)port.Id);

    /// <summary>Stops watching this worker's queue of a port's TAP.</summary>
    public void RemovePort(LocalPort port) => _epoll.Remove(port.Tap.Queue(WorkerId).ReadinessHandle);

    public void Start() => _thread.Start();

    /// <summary>
    /// Rounds this worker has finished. A round runs from one epoll_wait to the end of the flush after it; at its end the
    /// worker holds no port, frame or TAP of the round (the coalescer and the TAP write queue are flushed, the send batch
    /// is sent), and it increments this with a full fence before it waits again. The quiesce handshake
    /// (<see cref="OverlayRouter"/>, on detaching a port) reads it and waits for it to move: see there for the ordering.
    /// </summary>
    public long Epoch => Interlocked.Read(ref _epoch);

    /// <summary>
    /// Stopwatch ticks this worker spent handling rounds (from epoll_wait's return to the end of the round's flush), not
    /// waiting: its rate over wall time is the worker's busy ratio (1: saturated). Written by the worker, read by metrics.
    /// </summary>
    public long BusyTicks => Volatile.Read(ref _busyTicks);

    private long _busyTicks;

    /// <summary>True while the thread runs its loop (started and not stopped).</summary>
    public bool Running => _thread.IsAlive && !_stop;

    /// <summary>Wakes the worker from epoll_wait, so that it finishes a round even when no traffic comes.</summary>
    public void Wake() => _epoll.Wake();

    /// <summary>Whether this worker's TAP reads and writes go through an io_uring (known once its thread runs).</summary>
    public bool UsesIoUring => _ring is not null;

    /// <summary>Why io_uring is not used, when it was asked for and refused.</summary>
    public string? IoUringRefusal { get; private set; }

    private readonly ManualResetEventSlim _started = new();

    /// <summary>Waits until the thread has set itself up (pinning, ring).</summary>
    public void WaitStarted() => _started.Wait();

    /// <summary>The worker thread's kernel thread id (/proc/self/task/ID), once it runs; 0 before. For tests.</summary>
    public int ThreadId { get; private set; }

    private void Run()
    {
        ThreadId = Interop.Libc.gettid();
        if (_cpu >= 0) CpuAffinity.PinCurrentThread(_cpu); // not allowed there (cpuset): runs unpinned, still correct
        if (_useIoUring)
        {
            // Created here: the ring belongs to the thread that submits to it (IORING_SETUP_SINGLE_ISSUER).
            _ring = IoRing.TryCreate(RingEntries, out string? why);
            if (_ring is not null) _tapWrites.Attach(_ring);
            else IoUringRefusal = why;
        }
        _started.Set();
        try { Loop(); }
        finally
        {
            _tapWrites.Dispose();
            _ring?.Dispose();
        }
    }

    private void Loop()
    {
        while (!_stop)
        {
            int n = _epoll.Wait(_events, -1);
            long busyFrom = System.Diagnostics.Stopwatch.GetTimestamp();
            long now = Environment.TickCount64;
            _round++;
            try
            {
                for (int i = 0; i < n; i++)
                {
                    ulong token = _events[i].Data;
                    if (token == EpollSet.WakeToken) _epoll.ClearWake();
                    else if (token == UnderlayToken) ReceiveRound(_underlay, esp: false, now);
                    else if (token == EspToken) ReceiveRound(_espUnderlay!, esp: true, now);
                    else if (_state.Port((int)token) is { } port)
                    {
                        DrainTap(port, now);
                        uint hangup = _events[i].Events & (Interop.EPOLLERR | Interop.EPOLLHUP);
                        if (hangup != 0 || port.Tap.Queue(WorkerId).IsGone)
                            QueueGone(port, hangup == 0 ? "reads fail" : (hangup & Interop.EPOLLERR) != 0 ? "poll reports an error" : "poll reports a hang-up");
                    }
                }
                _outbound.Flush();
                _used = 0;
            }
            catch (Exception e) when (!_stop)
            {
                _state.Global[WorkerId].Drops[(int)DropReason.InternalError]++;
                if (Environment.TickCount64 - _lastErrorLog > 1000) // a bug must not flood the log
                {
                    _lastErrorLog = Environment.TickCount64;
                    Log.WorkerError(_log, Thread.CurrentThread.Name, e);
                }
                _inbound.FlushCoalesced(); // what the round queued or coalesced is still in place: no port stays held
                _outbound.Flush();
                _used = 0;
            }
            // The round is over and holds nothing: a full fence (Interlocked), so the next round's reads of the tables
            // come after this store — the worker's half of the quiesce handshake.
            Volatile.Write(ref _busyTicks, _busyTicks + (System.Diagnostics.Stopwatch.GetTimestamp() - busyFrom));
            Interlocked.Increment(ref _epoch);
        }
    }

    /// <summary>
    /// Receives and handles up to <see cref="MaxReceiveRounds"/> batches from the VXLAN socket or the ESP
    /// socket. A receive the kernel coalesced (UDP GRO) holds several datagrams of one size back to back:
    /// each is handled on its own.
    /// </summary>
    private void ReceiveRound(IUnderlay underlay, bool esp, long now)
    {
        // VXLAN lands with its header in the headroom and the inner frame exactly at Headroom; ESP needs no headroom.
        int offset = esp ? 0 : Constants.Headroom - Constants.VxlanHeaderLength;
        for (int round = 0; round < MaxReceiveRounds; round++)
        {
            int got = underlay.Receive(_datagrams, offset);
            for (int i = 0; i < got; i++)
            {
                ref UnderlayDatagram d = ref _datagrams[i];
                if (d.SegmentSize <= 0 || d.SegmentSize >= d.Length) { Handle(ref d, esp, now); continue; }
                UnderlayDatagram one = d;
                one.SegmentSize = 0;
                for (int at = 0; at < d.Length; at += d.SegmentSize)
                {
                    one.Offset = d.Offset + at;
                    one.Length = Math.Min(d.SegmentSize, d.Length - at);
                    Handle(ref one, esp, now);
                }
            }
            _inbound.FlushCoalesced();
            if (got < _datagrams.Length) return; // drained; if not, level-triggered epoll reports it again
        }
    }

    private void Handle(ref UnderlayDatagram d, bool esp, long now)
    {
        if (_state.UnderlayCaptures is { } captures)
            Capture.CaptureTap.Datagram(captures, Capture.CaptureDirection.In, d.Buffer.Span.Slice(d.Offset, d.Length), _state.UnderlayAddress,
                esp ? _state.EspPort : _state.DataPort, d.Peer, udp: !esp || _state.EspPort != 0, WorkerId);
        if (esp) _inbound.ProcessEsp(ref d, now);
        else _inbound.ProcessDatagram(ref d, now);
    }

    private int _used; // TAP buffers holding frames not yet flushed
    private long _round; // epoll rounds so far: tells a TAP queue read in consecutive rounds (busy) from a quiet one

    private void DrainTap(LocalPort port, long now)
    {
        int batch = _tapBufs.Length;
        var context = new TapReadContext(_round, _ring);
        // At most one batch per TAP per wake so a busy endpoint cannot starve the others
        // (epoll is level-triggered: what is left is reported again next round).
        for (int drained = 0; drained < batch;)
        {
            if (_used == batch) { _outbound.Flush(); _used = 0; }
            int room = Math.Min(batch - _used, batch - drained);
            // One path for every device: the kernel TAP shapes its reads by the round and uses the ring; a device
            // without such a policy reads once (short: it stopped at EAGAIN, and asking again would cost an empty read).
            int got = port.Tap.Queue(WorkerId).Read(in context, _tapBufs.AsSpan(_used, room), _sizes.AsSpan(_used, room), _offloads.AsSpan(_used, room),
                Constants.Headroom, out bool more);
            if (got == 0) break;
            for (int j = 0; j < got; j++)
                _outbound.ProcessTapFrame(port, _tapBufs[_used + j], Constants.Headroom, _sizes[_used + j], _offloads[_used + j], now);
            _used += got;
            drained += got;
            if (!more) break; // drained
        }
    }

    /// <summary>
    /// The port's TAP queue went away under the router (its interface was deleted): level-triggered epoll would report it
    /// on every wait, and every read would fail, so this worker stops watching it — a queue gone costs nothing after this.
    /// Counted per network; logged once per port (the first of its queues to go). The port stays in the tables: releasing
    /// it is the control plane's (<see cref="OverlayRouter.DetachEndpoint"/>, whose epoll removal then finds it removed).
    /// </summary>
    private void QueueGone(LocalPort port, string reason)
    {
        _epoll.Remove(port.Tap.Queue(WorkerId).ReadinessHandle);
        port.Network.Counters[WorkerId].TapQueuesGone++;
        if (Interlocked.Increment(ref port.GoneQueues) == 1)
            Log.TapGone(_log, port.Options.Interface, port.Options.Netns, port.Network.Options.Name, reason);
    }

    public void Dispose()
    {
        _stop = true;
        _epoll.Wake();
        if (_thread.IsAlive) _thread.Join();
        _epoll.Dispose();
        _started.Dispose();
        foreach (var b in _tapBufs) _largePool.Return(b);
        foreach (var b in _coalescer.Buffers) _largePool.Return(b);
        foreach (var d in _datagrams) (_rxLarge ? _largePool : _pool).Return(d.Buffer);
    }
}
