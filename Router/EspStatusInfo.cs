namespace UserOverlay.Router;

/// <summary>The ESP security associations' state (no secrets).</summary>
/// <param name="Encapsulation">"transport" (IP protocol 50) or "udp" (ESP-in-UDP).</param>
/// <param name="UdpPort">ESP-in-UDP port, 0 in transport mode.</param>
/// <param name="RekeyIntervalSeconds">Length of a key epoch.</param>
/// <param name="CurrentEpoch">The epoch outbound SAs are in.</param>
/// <param name="InboundSas">Inbound SAs held (current and neighbouring epochs).</param>
/// <param name="Rotations">Outbound SAs replaced by a newer epoch so far.</param>
/// <param name="SpiCollisions">SPIs currently shared by more than one inbound SA (detected and served separately).</param>
/// <param name="Dropped">Inbound ESP dropped, by reason.</param>
/// <param name="NotSent">Outbound frames not sent, by reason (no SA, sequence space…).</param>
public sealed record EspStatusInfo(
    string Encapsulation, int UdpPort, double RekeyIntervalSeconds, long CurrentEpoch, int InboundSas, long Rotations, int SpiCollisions,
    IReadOnlyDictionary<string, long> Dropped, IReadOnlyDictionary<string, long> NotSent);
