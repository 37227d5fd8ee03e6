using BenchmarkDotNet.Attributes;
using UserOverlay.Router;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Testing;
using UserOverlay.Router.Wire;

namespace UserOverlay.Bench.Router;

/// <summary>
/// The VXLAN codec on its own: writing the header in place (encapsulation is exactly this, the
/// frame is never copied) and validating a received one (decapsulation is this plus an offset).
/// </summary>
[MemoryDiagnoser]
public class VxlanCodecBenchmarks
{
    private const int Batch = 64;
    private readonly byte[][] _datagrams = new byte[Batch][];

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Batch; i++)
        {
            _datagrams[i] = new byte[8 + 1400];
            VxlanHeader.Write(_datagrams[i], 4097 + (uint)i);
        }
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "Encapsulate (VXLAN header in place)")]
    public int Encapsulate()
    {
        int x = 0;
        for (int i = 0; i < Batch; i++)
        {
            VxlanHeader.Write(_datagrams[i], 4097 + (uint)i);
            x += _datagrams[i][6];
        }
        return x;
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "Decapsulate (validate flags, read VNI)")]
    public uint Decapsulate()
    {
        uint sum = 0;
        for (int i = 0; i < Batch; i++)
        {
            VxlanHeader.TryDecode(_datagrams[i], out uint vni);
            sum += vni;
        }
        return sum;
    }
}

/// <summary>
/// The switching decision per frame, through the real pipeline halves over allocation-free
/// doubles (<see cref="CountingTap"/>, <see cref="CountingUnderlay"/>): a batch of
/// <see cref="Constants.IdealBatchSize"/> frames per invocation, so results are per frame.
/// </summary>
[MemoryDiagnoser]
public class SwitchBenchmarks
{
    private const int Batch = Constants.IdealBatchSize;
    private PipelineHarness _h = null!;
    private PacketBuffer[] _bufs = null!;
    private UnderlayDatagram[] _received = null!;
    private byte[] _broadcast = null!;

    [Params(64, 1400)]
    public int FrameLength;

    [GlobalSetup]
    public void Setup()
    {
        _h = new PipelineHarness(localPorts: 2, peers: 3);
        _bufs = new PacketBuffer[Batch];
        _received = new UnderlayDatagram[Batch];
        var unicast = PipelineHarness.Frame(_h.Ports[0].Mac, _h.RemoteMacs[1], FrameLength);
        _broadcast = PipelineHarness.Frame(_h.Ports[0].Mac, MacAddress.Broadcast.Value, FrameLength);
        var inbound = PipelineHarness.Frame(_h.RemoteMacs[0], _h.Ports[1].Mac, FrameLength);
        for (int i = 0; i < Batch; i++)
        {
            _bufs[i] = new PacketBuffer();
            PipelineHarness.Load(_bufs[i], unicast);
            _received[i] = PipelineHarness.Received(new PacketBuffer(), _h.Peers[0], PipelineHarness.Vni, inbound);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _h.Dispose();

    [Benchmark(OperationsPerInvoke = Batch, Description = "Outbound: unicast to a known remote VTEP (+ sendmmsg batch hand-off)")]
    public void OutboundUnicast()
    {
        long now = Environment.TickCount64;
        for (int i = 0; i < Batch; i++) _h.Outbound.ProcessFrame(_h.Ports[0], _bufs[i], Constants.Headroom, FrameLength, now);
        _h.Outbound.Flush();
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "Outbound: broadcast to 3 peers + 1 local port")]
    public void OutboundBroadcast()
    {
        long now = Environment.TickCount64;
        var buf = _bufs[0];
        PipelineHarness.Load(buf, _broadcast);
        for (int i = 0; i < Batch; i++) _h.Outbound.ProcessFrame(_h.Ports[0], buf, Constants.Headroom, FrameLength, now);
        _h.Outbound.Flush();
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "Inbound: validate, learn-refresh, deliver to a local port")]
    public void Inbound()
    {
        long now = Environment.TickCount64;
        for (int i = 0; i < Batch; i++) _h.Inbound.ProcessDatagram(ref _received[i], now);
    }
}

/// <summary>FDB lookups (hit and miss) in tables of different sizes: the per-packet read.</summary>
[MemoryDiagnoser]
public class FdbLookupBenchmarks
{
    private sealed class Entry(ulong v) { public readonly ulong V = v; }
    private ForwardingTable<Entry> _table = null!;
    private ulong[] _hits = null!;
    private ulong[] _misses = null!;

    [Params(16, 1024, 65536)]
    public int Entries;

    [GlobalSetup]
    public void Setup()
    {
        _table = new ForwardingTable<Entry>();
        var rnd = new Random(1);
        _table.Update(b =>
        {
            for (int i = 0; i < Entries; i++)
            {
                ulong mac = 0x0200_0000_0000UL | (ulong)rnd.NextInt64(1L << 40);
                b.Set(mac, new Entry(mac));
            }
        });
        var keys = _table.ToList().Select(kv => kv.Key).ToArray();
        _hits = Enumerable.Range(0, 256).Select(i => keys[(i * 7919) % keys.Length]).ToArray(); // 256 lookups, whatever the table size
        _misses = Enumerable.Range(0, 256).Select(i => 0x0600_0000_0000UL | (uint)i).ToArray();
    }

    [Benchmark(OperationsPerInvoke = 256, Description = "FDB lookup, hit")]
    public int Hit()
    {
        int n = 0;
        foreach (ulong k in _hits) if (_table.TryGet(k, out _)) n++;
        return n;
    }

    [Benchmark(OperationsPerInvoke = 256, Description = "FDB lookup, miss")]
    public int Miss()
    {
        int n = 0;
        foreach (ulong k in _misses) if (_table.TryGet(k, out _)) n++;
        return n;
    }
}
