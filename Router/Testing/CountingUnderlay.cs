using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An underlay double that counts (then discards) what is sent and never receives.
/// Allocation-free, for benchmarks and zero-allocation tests.
/// </summary>
public sealed class CountingUnderlay : IUnderlay
{
    private readonly EventFd _event = new();

    public CountingUnderlay(VtepEndpoint local) => LocalEndpoint = local;

    public VtepEndpoint LocalEndpoint { get; }

    public SafeHandle ReadinessHandle => _event.Handle;

    /// <summary>Datagrams sent.</summary>
    public long Datagrams;
    /// <summary>Bytes sent.</summary>
    public long Bytes;
    /// <summary>Number of Send calls (batches).</summary>
    public long Batches;

    public int Receive(Span<UnderlayDatagram> datagrams, int offset) => 0;

    /// <summary>True: GSO sends count as their wire datagrams.</summary>
    public bool SupportsSegmentation => true;

    /// <summary>GSO sends (datagrams with a SegmentSize).</summary>
    public long SegmentedSends;

    public int Send(ReadOnlySpan<UnderlayDatagram> datagrams)
    {
        Batches++;
        foreach (ref readonly var d in datagrams)
        {
            Bytes += d.Length;
            if (d.SegmentSize > 0) { Datagrams += (d.Length + d.SegmentSize - 1) / d.SegmentSize; SegmentedSends++; }
            else Datagrams++;
        }
        return 0;
    }

    public void Dispose() => _event.Dispose();
}
