namespace UserOverlay.Router;

/// <summary>An FDB entry: <paramref name="Destination"/> is "local:NETNS/IFACE" or a VTEP "ip:port"; <paramref name="Source"/> is local, static, learned or gossip.</summary>
public sealed record FdbEntryStatus(string Mac, string Destination, string Source, double AgeSeconds);
