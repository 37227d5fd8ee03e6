using System.Runtime.InteropServices;

namespace UserOverlay.Router;

/// <summary>
/// Counters of one network (or of the router, for traffic that has no network yet), as written by
/// ONE pipeline worker. Each worker owns its own instance, so the data path increments plain
/// fields (no interlocked operations, no false sharing between workers); readers sum the
/// instances of all workers with <see cref="Add"/>. 64-bit reads are atomic on the 64-bit
/// platforms the router supports, so a reader sees each value whole, if slightly stale.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public sealed class TrafficCounters
{
    /// <summary>Frames read from this network's local endpoints.</summary>
    public long TxFrames;
    /// <summary>Bytes (inner Ethernet frames) read from local endpoints.</summary>
    public long TxBytes;
    /// <summary>VXLAN datagrams sent to peers (a flooded frame counts once per peer).</summary>
    public long EncapsulatedDatagrams;
    /// <summary>Frames accepted from the underlay for this network.</summary>
    public long RxFrames;
    /// <summary>Bytes (inner Ethernet frames) accepted from the underlay.</summary>
    public long RxBytes;
    /// <summary>Frames written to local endpoints (from either direction).</summary>
    public long DeliveredFrames;
    /// <summary>ARP requests answered locally.</summary>
    public long ProxyArpReplies;
    /// <summary>Frames flooded (broadcast, multicast or unknown unicast) to every peer or port.</summary>
    public long FloodedFrames;
    /// <summary>ARP and ICMP echo requests for the network's gateway answered by the router, and replies of the <see cref="IGatewayHandler"/>.</summary>
    public long GatewayReplies;
    /// <summary>
    /// TAP queues a worker stopped reading because the device went away under the router (its interface deleted in the
    /// namespace: poll reports an error, reads fail). Their endpoints stay attached until the control plane detaches them.
    /// </summary>
    public long TapQueuesGone;
    /// <summary>Drops, indexed by <see cref="DropReason"/>.</summary>
    public readonly long[] Drops = new long[DropReasons.Count];

    /// <summary>Adds another worker's counters into this one (aggregation for status and metrics).</summary>
    public void Add(TrafficCounters o)
    {
        TxFrames += Volatile.Read(ref o.TxFrames);
        TxBytes += Volatile.Read(ref o.TxBytes);
        EncapsulatedDatagrams += Volatile.Read(ref o.EncapsulatedDatagrams);
        RxFrames += Volatile.Read(ref o.RxFrames);
        RxBytes += Volatile.Read(ref o.RxBytes);
        DeliveredFrames += Volatile.Read(ref o.DeliveredFrames);
        ProxyArpReplies += Volatile.Read(ref o.ProxyArpReplies);
        FloodedFrames += Volatile.Read(ref o.FloodedFrames);
        GatewayReplies += Volatile.Read(ref o.GatewayReplies);
        TapQueuesGone += Volatile.Read(ref o.TapQueuesGone);
        for (int i = 0; i < Drops.Length; i++) Drops[i] += Volatile.Read(ref o.Drops[i]);
    }

    /// <summary>Sum of all drop counters.</summary>
    public long TotalDrops => Drops.Sum();
}
