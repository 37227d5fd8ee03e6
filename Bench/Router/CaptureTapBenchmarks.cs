using BenchmarkDotNet.Attributes;
using UserOverlay.Router;
using UserOverlay.Router.Capture;
using UserOverlay.Router.Testing;

namespace UserOverlay.Bench.Router;

/// <summary>
/// The capture tap's cost on the switch: outbound unicast to a known remote VTEP (the same work as
/// <see cref="SwitchBenchmarks.OutboundUnicast"/>) with no capture (the tap is one volatile read and a branch),
/// and with a capture of the network running, its reader draining the ring after every batch (a copy per frame
/// into the ring and one out of it). Both rows must allocate 0 B.
/// </summary>
[MemoryDiagnoser]
public class CaptureTapBenchmarks
{
    private const int Batch = Constants.IdealBatchSize;
    private PipelineHarness _h = null!;
    private PacketBuffer[] _bufs = null!;
    private CaptureSession? _session;
    private byte[] _read = null!;

    [Params(64, 1400)]
    public int FrameLength;

    [Params(false, true)]
    public bool Capturing;

    [GlobalSetup]
    public void Setup()
    {
        _h = new PipelineHarness(localPorts: 2, peers: 3);
        _bufs = new PacketBuffer[Batch];
        var unicast = PipelineHarness.Frame(_h.Ports[0].Mac, _h.RemoteMacs[1], FrameLength);
        for (int i = 0; i < Batch; i++)
        {
            _bufs[i] = new PacketBuffer();
            PipelineHarness.Load(_bufs[i], unicast);
        }
        if (Capturing)
        {
            _session = new CaptureSession(null, new CaptureOptions("bench", RingFrames: 2 * Batch), _h.Network, null, _h.State.Workers, _h.Network.MaxFrameLength);
            _h.Network.Captures = [_session];
        }
        _read = new byte[_h.Network.MaxFrameLength];
    }

    [GlobalCleanup]
    public void Cleanup() => _h.Dispose();

    [Benchmark(OperationsPerInvoke = Batch, Description = "Outbound unicast, capture tap")]
    public void OutboundUnicast()
    {
        long now = Environment.TickCount64;
        for (int i = 0; i < Batch; i++) _h.Outbound.ProcessFrame(_h.Ports[0], _bufs[i], Constants.Headroom, FrameLength, now);
        _h.Outbound.Flush();
        if (_session is { } s) while (s.TryRead(_read, out _)) { }
    }
}
