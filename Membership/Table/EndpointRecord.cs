using System.Net;
using System.Net.NetworkInformation;

namespace UserOverlay.Membership.Table;

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
/// <param name="Names">The endpoint's DNS names on its network (workload name, aliases), or null: they come and go with the record.</param>
public sealed record EndpointRecord(string NetworkId, ulong Mac, IPAddress? Ip, IPAddress Vtep, string OwnerNode, ulong LamportTime, bool Deleted = false,
    IReadOnlyList<string>? Names = null)
{
    /// <summary>Whether two records carry the same names (in the same order; null and empty alike).</summary>
    public static bool SameNames(EndpointRecord a, EndpointRecord b) => (a.Names ?? []).SequenceEqual(b.Names ?? [], StringComparer.Ordinal);

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
