using System.Net;

namespace UserOverlay.Crypto;

/// <summary>
/// The SAs between this host and one peer VTEP under one network key: the outbound SA of the current epoch (which
/// <see cref="Seal"/> uses) and the inbound SAs of the accepted epochs. A stable handle: get it once from
/// <see cref="EspSecurityDatabase.AddPeer"/> and keep it with the router's remote-VTEP state; rotation swaps the SA
/// inside it, so the data path never looks anything up.
/// </summary>
/// <remarks>Thread contract: <see cref="Seal"/> is safe from any number of threads; everything else belongs to the database.</remarks>
public sealed class EspPeer
{
    private readonly EspCounters _counters;
    private volatile OutboundSa? _current;

    internal EspPeer(string keyId, IPAddress peer, EspCounters counters)
    {
        KeyId = keyId;
        Peer = peer;
        _counters = counters;
    }

    /// <summary>Network key id.</summary>
    public string KeyId { get; }

    /// <summary>The peer's VTEP address (outer destination of what <see cref="Seal"/> produces).</summary>
    public IPAddress Peer { get; }

    /// <summary>The outbound SA in use, or null (then <see cref="Seal"/> refuses: no SA, no send).</summary>
    public OutboundSa? CurrentOutbound => _current;

    /// <summary>True after <see cref="EspSecurityDatabase.RemovePeer"/>; the handle then never seals again.</summary>
    public bool IsRemoved { get; internal set; }

    /// <summary>The key ring the SAs were last built from (null: none yet, or the key went away).</summary>
    internal NetworkKeyRing? Ring { get; set; }

    /// <summary>The key <see cref="CurrentOutbound"/> was derived from (the ring's primary once the switch is committed).</summary>
    internal NetworkKey? OutboundKey { get; set; }

    /// <summary>Inbound SAs by key of the ring (in ring order) and epoch.</summary>
    internal List<KeySlot> Slots { get; } = [];

    /// <summary>Every inbound SA of every key.</summary>
    internal IEnumerable<InboundSa> AllInbound => Slots.SelectMany(s => s.Inbound.Values);

    /// <summary>Number of inbound SAs.</summary>
    internal int InboundCount => Slots.Sum(s => s.Inbound.Count);

    /// <summary>The inbound SAs derived from one key of the ring, by epoch.</summary>
    internal sealed class KeySlot(NetworkKey key)
    {
        public NetworkKey Key { get; } = key;

        public Dictionary<long, InboundSa> Inbound { get; } = [];
    }

    internal void SetCurrent(OutboundSa? sa) => _current = sa;

    /// <summary>
    /// Seals a payload for this peer in place with the current outbound SA; see <see cref="OutboundSa.Seal"/> for the
    /// buffer contract (16 bytes headroom, 21 bytes tailroom). Anything but <see cref="EspSealStatus.Ok"/> means
    /// "do not send"; it is counted in <see cref="EspSecurityDatabase.Counters"/>. Allocation-free.
    /// </summary>
    public EspSealStatus Seal(Span<byte> buffer, int payloadOffset, int payloadLength, byte nextHeader, out int espLength)
    {
        OutboundSa? sa = _current;
        if (sa is null)
        {
            espLength = 0;
            _counters.Count(EspSealStatus.NoSa);
            return EspSealStatus.NoSa;
        }
        EspSealStatus status = sa.Seal(buffer, payloadOffset, payloadLength, nextHeader, out espLength);
        if (status != EspSealStatus.Ok)
            _counters.Count(status);
        return status;
    }

    /// <inheritdoc/>
    public override string ToString() => $"ESP peer {Peer} key {KeyId}";
}
