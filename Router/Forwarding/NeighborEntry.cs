namespace UserOverlay.Router.Forwarding;

/// <summary>A neighbour (IPv4 → MAC) entry used to answer ARP locally.</summary>
internal sealed class NeighborEntry(uint ip, ulong mac, EntrySource source, long now)
{
    public readonly uint Ip = ip;
    public readonly ulong Mac = mac;
    public readonly EntrySource Source = source;
    public long LastSeen = now;
}
