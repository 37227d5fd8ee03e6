using System.Net;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using UserOverlay.Crypto;

namespace UserOverlay.Bench.Crypto;

// ESP seal/open micro-benchmarks through the API the router calls: EspPeer.Seal (handle, no lookup) and
// EspSecurityDatabase.Open (SPI lookup in the frozen snapshot, replay window, in-place decrypt), for the three GCM
// backends (AesGcm = .NET/OpenSSL, BouncyCastle, Intrinsics = AesGcmIntrinsics). "Frame" is the inner Ethernet frame; the payload sealed is UDP 8 + VXLAN 8 + frame, and the GB/s column
// counts those payload bytes. Run: dotnet run -c Release --project Bench --artifacts-path /tmp/uo-art-aes-bench --
// --filter '*Esp*' (Program.cs runs BenchmarkDotNet in-process). Figures for all three backends: Crypto/README.md.

/// <summary>Adds payload throughput (GB/s) next to BenchmarkDotNet's mean (ns per packet).</summary>
public sealed class EspConfig : ManualConfig
{
    public EspConfig() => AddColumn(new GigabytesPerSecondColumn());

    private sealed class GigabytesPerSecondColumn : IColumn
    {
        public string Id => "EspGBps";
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Payload bytes (UDP+VXLAN+frame) per nanosecond";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            var frame = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "Frame")?.Value;
            if (report?.ResultStatistics is not { } stats || frame is not int f)
                return "-";
            return ((EspBench.PayloadHeaders + f) / stats.Mean).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

internal static class EspBench
{
    public const int PayloadHeaders = 16; // UDP 8 + VXLAN 8
    public const int Headroom = 64;
    public static readonly IPAddress A = IPAddress.Parse("192.0.2.1");
    public static readonly IPAddress B = IPAddress.Parse("192.0.2.2");
    public static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly StaticNetworkKeySource Keys = new([new NetworkKey("bench", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray())]);

    public static EspSecurityDatabase Database(IPAddress local, GcmBackend backend) =>
        new(local, Keys, new EspOptions { Backend = backend, CipherLanes = 1, SequenceStore = new InMemorySequenceStore() }, Now);
}

/// <summary>Seal one packet in place (what the outbound pipeline does per VXLAN datagram).</summary>
[Config(typeof(EspConfig))]
public class EspSealBenchmarks
{
    [Params(64, 1400)]
    public int Frame { get; set; }

    [Params(GcmBackend.AesGcm, GcmBackend.BouncyCastle, GcmBackend.Intrinsics)]
    public GcmBackend Backend { get; set; }

    private EspSecurityDatabase _db = null!;
    private EspPeer _peer = null!;
    private byte[] _buffer = null!;
    private int _payload;

    [GlobalSetup]
    public void Setup()
    {
        _db = EspBench.Database(EspBench.A, Backend);
        _peer = _db.AddPeer("bench", EspBench.B);
        _payload = EspBench.PayloadHeaders + Frame;
        _buffer = GC.AllocateUninitializedArray<byte>(EspBench.Headroom + _payload + Esp.MaxTrailerLength, pinned: true);
        new Random(1).NextBytes(_buffer);
    }

    [GlobalCleanup]
    public void Cleanup() => _db.Dispose();

    [Benchmark]
    public int Seal()
    {
        _peer.Seal(_buffer, EspBench.Headroom, _payload, Esp.NextHeaderUdp, out int n);
        return n;
    }
}

/// <summary>
/// Open one packet (SPI lookup, replay check, authenticate, decrypt in place, strip trailer). Each iteration opens a
/// batch of distinct pre-sealed packets once (a packet can be opened only once: replay window, in-place decryption),
/// so the receiver and the working copies are rebuilt in [IterationSetup], outside the measurement.
/// </summary>
[Config(typeof(EspConfig))]
[InvocationCount(1, 1)]
public class EspOpenBenchmarks
{
    private const int Batch = 16384;

    [Params(64, 1400)]
    public int Frame { get; set; }

    [Params(GcmBackend.AesGcm, GcmBackend.BouncyCastle, GcmBackend.Intrinsics)]
    public GcmBackend Backend { get; set; }

    private byte[][] _pristine = null!;
    private byte[][] _work = null!;
    private EspSecurityDatabase? _receiver;

    [GlobalSetup]
    public void Setup()
    {
        using EspSecurityDatabase sender = EspBench.Database(EspBench.A, GcmBackend.AesGcm);
        EspPeer peer = sender.AddPeer("bench", EspBench.B);
        int payload = EspBench.PayloadHeaders + Frame;
        var rng = new Random(2);
        _pristine = new byte[Batch][];
        _work = new byte[Batch][];
        byte[] buffer = new byte[EspBench.Headroom + payload + Esp.MaxTrailerLength];
        for (int i = 0; i < Batch; i++)
        {
            rng.NextBytes(buffer);
            peer.Seal(buffer, EspBench.Headroom, payload, Esp.NextHeaderUdp, out int n);
            _pristine[i] = buffer.AsSpan(EspBench.Headroom - Esp.HeaderLength, n).ToArray();
            _work[i] = GC.AllocateUninitializedArray<byte>(n, pinned: true);
        }
    }

    [IterationSetup]
    public void Reset()
    {
        _receiver?.Dispose();
        _receiver = EspBench.Database(EspBench.B, Backend);
        _receiver.AddPeer("bench", EspBench.A);
        for (int i = 0; i < Batch; i++)
            _pristine[i].CopyTo(_work[i], 0);
    }

    [GlobalCleanup]
    public void Cleanup() => _receiver?.Dispose();

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Open()
    {
        int ok = 0;
        EspSecurityDatabase db = _receiver!;
        for (int i = 0; i < Batch; i++)
        {
            if (db.Open(_work[i], out _, out int len, out _, out _) == EspOpenStatus.Ok)
                ok += len;
        }
        return ok;
    }
}
