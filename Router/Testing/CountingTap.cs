using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Testing;

/// <summary>
/// A TAP double that never has frames to read and counts (then discards) what is written.
/// Allocation-free, for benchmarks and zero-allocation tests. Thread-safe counters.
/// </summary>
public sealed class CountingTap : ITapDevice
{
    private readonly EventFd _event = new();
    private long _frames, _bytes;

    public CountingTap(string name = "eth0") => Name = name;

    public string Name { get; }
    public SafeHandle ReadinessHandle => _event.Handle;

    /// <summary>Frames written to the device.</summary>
    public long Frames => Interlocked.Read(ref _frames);
    /// <summary>Bytes written to the device.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<Offload.OffloadInfo> offloads, int offset) => 0;

    public bool Write(ReadOnlySpan<byte> frame)
    {
        Interlocked.Increment(ref _frames);
        Interlocked.Add(ref _bytes, frame.Length);
        return true;
    }

    /// <summary>Offload-capable when created so (counts super-frames as one write each).</summary>
    public bool SupportsOffload { get; init; }

    /// <summary>Takes UDP super-frames too when created so.</summary>
    public bool SupportsUdpSegmentation { get; init; }

    /// <summary>UDP super-frames written (a subset of <see cref="OffloadWrites"/>).</summary>
    public long UdpOffloadWrites => Interlocked.Read(ref _udpOffloadWrites);
    private long _udpOffloadWrites;

    /// <summary>Super-frames written.</summary>
    public long OffloadWrites => Interlocked.Read(ref _offloadWrites);
    private long _offloadWrites;

    public bool WriteOffload(ReadOnlySpan<byte> frame, in Offload.OffloadInfo info)
    {
        if (!SupportsOffload || (info.Gso == Offload.GsoKind.UdpL4 && !SupportsUdpSegmentation)) return false;
        Interlocked.Increment(ref _offloadWrites);
        if (info.Gso == Offload.GsoKind.UdpL4) Interlocked.Increment(ref _udpOffloadWrites);
        return Write(frame);
    }

    public void Dispose() => _event.Dispose();
}
