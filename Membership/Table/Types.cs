using System.Net;
using System.Net.NetworkInformation;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

/// <summary>
/// What a peer needs to send us overlay traffic, carried in our memberlist node meta: the VTEP
/// address and the VXLAN data port. Encoding: <c>'U' 'O' 0x01</c> then a msgpack map
/// <c>{"dp": port, "vtep": raw IP}</c> (28 bytes for IPv4; meta allows 512).
/// </summary>
/// <param name="VtepAddress">Underlay address VXLAN datagrams for this node go to.</param>
/// <param name="DataPort">UDP port of the VXLAN data path (4789 by default).</param>
public sealed record OverlayNodeMeta(IPAddress VtepAddress, int DataPort)
{
    private static ReadOnlySpan<byte> Magic => "UO\u0001"u8;

    /// <summary>Encodes into <paramref name="destination"/>; returns the length.</summary>
    public int WriteTo(Span<byte> destination)
    {
        var w = new MsgPackWriter(64);
        w.WriteRawBytes(Magic);
        w.WriteMapHeader(2);
        w.WriteKey("dp"); w.WriteUInt((ulong)DataPort);
        w.WriteKey("vtep"); w.WriteRaw(Memberlist.AddressBytes(VtepAddress));
        w.WrittenSpan.CopyTo(destination);
        return w.Length;
    }

    /// <summary>Encodes to a new array.</summary>
    public byte[] ToBytes()
    {
        Span<byte> b = stackalloc byte[64];
        return b[..WriteTo(b)].ToArray();
    }

    /// <summary>Decodes meta written by <see cref="WriteTo"/>; false for anything else (e.g. a serf node's tags).</summary>
    public static bool TryParse(ReadOnlySpan<byte> meta, out OverlayNodeMeta? value)
    {
        value = null;
        if (!meta.StartsWith(Magic)) return false;
        try
        {
            var r = new MsgPackReader(meta[Magic.Length..]);
            int n = r.ReadMapHeader();
            int port = 0;
            byte[]? vtep = null;
            for (int i = 0; i < n; i++)
            {
                switch (r.ReadString())
                {
                    case "dp": port = r.ReadUInt16(); break;
                    case "vtep": vtep = r.ReadBytes(); break;
                    default: r.Skip(); break;
                }
            }
            if (vtep is not { Length: 4 or 16 }) return false;
            value = new OverlayNodeMeta(new IPAddress(vtep), port);
            return true;
        }
        catch (MsgPackException)
        {
            return false;
        }
    }
}

/// <summary>
/// One endpoint of an overlay network as replicated between hosts: which MAC (and IP) lives behind
/// which VTEP, owned (published) by which node. Versioned by the owner's Lamport clock; a deleted
/// record is a tombstone kept for <see cref="EndpointTableOptions.TombstoneTtl"/>. Immutable.
/// </summary>
/// <param name="NetworkId">Overlay network identifier (the embedder's, e.g. Docker's network ID or a VNI in decimal).</param>
/// <param name="Mac">48-bit MAC address as an integer (the FDB key).</param>
/// <param name="Ip">The endpoint's IP (for proxy ARP/ND), or null.</param>
/// <param name="Vtep">Where to send its frames: the owner's VTEP address.</param>
/// <param name="OwnerNode">Memberlist name of the host that owns the endpoint.</param>
/// <param name="LamportTime">Version (owner's Lamport time when published or deleted).</param>
/// <param name="Deleted">True for a tombstone.</param>
public sealed record EndpointRecord(string NetworkId, ulong Mac, IPAddress? Ip, IPAddress Vtep, string OwnerNode, ulong LamportTime, bool Deleted = false)
{
    /// <summary>The MAC as a <see cref="PhysicalAddress"/>.</summary>
    public PhysicalAddress MacAddress
    {
        get
        {
            var b = new byte[6];
            for (int i = 0; i < 6; i++) b[i] = (byte)(Mac >> (8 * (5 - i)));
            return new PhysicalAddress(b);
        }
    }

    /// <summary>Converts a 6-byte MAC to the integer form.</summary>
    public static ulong MacToUInt64(PhysicalAddress mac)
    {
        var b = mac.GetAddressBytes();
        if (b.Length != 6) throw new ArgumentException("MAC must be 6 bytes", nameof(mac));
        ulong v = 0;
        foreach (var x in b) v = v << 8 | x;
        return v;
    }

    /// <summary>Parses "aa:bb:cc:dd:ee:ff" (or with dashes) to the integer form.</summary>
    public static ulong ParseMac(string mac) => MacToUInt64(PhysicalAddress.Parse(mac.Replace(':', '-').ToUpperInvariant()));

    /// <summary>Whether this version beats <paramref name="other"/>: higher Lamport time, ties broken by owner name.</summary>
    public bool IsNewerThan(EndpointRecord other) =>
        LamportTime != other.LamportTime ? LamportTime > other.LamportTime : string.CompareOrdinal(OwnerNode, other.OwnerNode) > 0;

    /// <inheritdoc/>
    public override string ToString() => $"{NetworkId}/{MacAddress} {Ip} via {Vtep} ({OwnerNode} @{LamportTime}{(Deleted ? " deleted" : "")})";
}

/// <summary>What happened to a remote endpoint record.</summary>
// WARNING: only append — numeric values may be logged and exported.
public enum EndpointChangeKind
{
    /// <summary>A new remote endpoint (or one in a network we just joined): add FDB and proxy-ARP entries.</summary>
    Added = 0,
    /// <summary>Its IP or VTEP changed (or it moved to another owner): replace the entries.</summary>
    Updated = 1,
    /// <summary>Deleted by its owner, its owner failed or left, or we left the network: remove the entries.</summary>
    Removed = 2,
}

/// <summary>A change of one remote endpoint record, in a network this node has joined.</summary>
/// <param name="Kind">Added, updated or removed.</param>
/// <param name="Record">The record now (for Removed: the record as it was).</param>
/// <param name="Previous">The record before (for Updated), else null.</param>
public readonly record struct EndpointChange(EndpointChangeKind Kind, EndpointRecord Record, EndpointRecord? Previous);

/// <summary>A host that participates in a network: where to replicate broadcast and unknown traffic (the flood list).</summary>
/// <param name="NodeName">Its memberlist name.</param>
/// <param name="GossipAddress">Its gossip address.</param>
/// <param name="Vtep">Its VTEP address (from its node meta).</param>
/// <param name="DataPort">Its VXLAN data port (from its node meta).</param>
public sealed record NetworkPeer(string NodeName, IPAddress GossipAddress, IPAddress Vtep, int DataPort);

/// <summary>
/// Receives the replicated table's changes, to turn into FDB entries, proxy-ARP entries and a
/// per-network flood list. Called on one dedicated event task, in order, never concurrently and
/// never under the table's lock; a slow observer delays later events only (not gossip).
/// </summary>
public interface IEndpointTableObserver
{
    /// <summary>A remote endpoint in a network this node has joined was added, updated or removed.</summary>
    void OnEndpointChanged(EndpointChange change);

    /// <summary>The set of other live hosts in <paramref name="networkId"/> changed; <paramref name="peers"/> is the complete new set (sorted by name).</summary>
    void OnNetworkPeersChanged(string networkId, IReadOnlyList<NetworkPeer> peers);
}
