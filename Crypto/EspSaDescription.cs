using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace UserOverlay.Crypto;

/// <summary>
/// One SA as <c>useroverlay sa</c> prints it (like <c>ip xfrm state</c>): enough to decrypt a capture in Wireshark.
/// Contains the key: whoever sees it can read and forge the network's traffic of that epoch.
/// Plain types only, so <c>System.Text.Json</c> serialises it as is for <c>--json</c>.
/// </summary>
public sealed record EspSaDescription
{
    /// <summary>Outbound (this host seals) or inbound (this host opens).</summary>
    public required EspDirection Direction { get; init; }

    /// <summary>Network key id.</summary>
    public required string KeyId { get; init; }

    /// <summary>Sending VTEP (outer source).</summary>
    public required string Source { get; init; }

    /// <summary>Receiving VTEP (outer destination).</summary>
    public required string Destination { get; init; }

    /// <summary>SPI.</summary>
    public required uint Spi { get; init; }

    /// <summary>SPI as 0x + 8 hex digits.</summary>
    public string SpiHex => "0x" + Spi.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>"rfc4106(gcm(aes))".</summary>
    public string Algorithm { get; init; } = Esp.AlgorithmName;

    /// <summary>AES key, hex.</summary>
    public required string KeyHex { get; init; }

    /// <summary>Salt, hex (4 bytes).</summary>
    public required string SaltHex { get; init; }

    /// <summary>ICV length in bits (128).</summary>
    public int IcvBits { get; init; } = Esp.IcvLength * 8;

    /// <summary>Key epoch.</summary>
    public required long Epoch { get; init; }

    /// <summary>Start of the epoch by the clock schedule.</summary>
    public required DateTimeOffset EpochStart { get; init; }

    /// <summary>End of the epoch by the clock schedule.</summary>
    public required DateTimeOffset EpochEnd { get; init; }

    /// <summary>True for the SA of the current epoch (for outbound: the SA in use).</summary>
    public required bool Current { get; init; }

    /// <summary>Extended sequence numbers.</summary>
    public required bool ExtendedSequenceNumbers { get; init; }

    /// <summary>Wire form.</summary>
    public required EspEncapsulation Encapsulation { get; init; }

    /// <summary>UDP port for <see cref="EspEncapsulation.Udp"/>, else 0.</summary>
    public int UdpPort { get; init; }

    /// <summary>Key ‖ salt in hex, the form ip xfrm and Wireshark take.</summary>
    public string KeyAndSaltHex => KeyHex + SaltHex;

    /// <summary>The SA in the shape of <c>ip xfrm state</c> output.</summary>
    public string ToXfrmString()
    {
        var sb = new StringBuilder();
        sb.Append("src ").Append(Source).Append(" dst ").Append(Destination).Append('\n');
        sb.Append("\tproto esp spi ").Append(SpiHex).Append(" reqid 0 mode transport\n");
        sb.Append("\treplay-window ").Append(Esp.ReplayWindowSize.ToString(CultureInfo.InvariantCulture));
        if (ExtendedSequenceNumbers)
            sb.Append(" flag esn");
        sb.Append('\n');
        sb.Append("\taead ").Append(Algorithm).Append(" 0x").Append(KeyAndSaltHex).Append(' ')
          .Append(IcvBits.ToString(CultureInfo.InvariantCulture)).Append('\n');
        if (Encapsulation == EspEncapsulation.Udp)
            sb.Append("\tencap type espinudp sport ").Append(UdpPort.ToString(CultureInfo.InvariantCulture))
              .Append(" dport ").Append(UdpPort.ToString(CultureInfo.InvariantCulture)).Append(" addr 0.0.0.0\n");
        sb.Append("\t# ").Append(Direction == EspDirection.Outbound ? "out" : "in").Append(" key ").Append(KeyId)
          .Append(" epoch ").Append(Epoch.ToString(CultureInfo.InvariantCulture))
          .Append(' ').Append(EpochStart.ToString("u", CultureInfo.InvariantCulture)).Append(" .. ")
          .Append(EpochEnd.ToString("u", CultureInfo.InvariantCulture))
          .Append(Current ? " (current)" : "").Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// One entry of Wireshark's ESP SA table, for <c>tshark -o 'uat:esp_sa:…'</c> or the esp_sa file in the
    /// Wireshark profile (together with <c>-o esp.enable_encryption_decode:TRUE</c>).
    /// Wireshark 4.0 cannot verify ESN packets; it decrypts them but marks their ICV bad.
    /// </summary>
    public string ToWiresharkUat()
    {
        string family = Source.Contains(':') ? "IPv6" : "IPv4";
        return $"\"{family}\",\"{Source}\",\"{Destination}\",\"{SpiHex}\",\"{Esp.WiresharkAlgorithmName}\",\"0x{KeyAndSaltHex}\",\"NULL\",\"\"";
    }

    /// <summary>
    /// The SAs a host with VTEP <paramref name="localVtep"/> uses with <paramref name="peers"/> under
    /// <paramref name="keys"/> at <paramref name="now"/>, by derivation alone (no daemon needed): for each key and peer,
    /// outbound and inbound SAs of every accepted epoch (current ± <see cref="EspOptions.EpochSpread"/>), the current
    /// one marked. A running host may have moved its outbound SA ahead early (sequence space or restart); the
    /// neighbouring epochs listed cover that.
    /// </summary>
    public static IReadOnlyList<EspSaDescription> Enumerate(IPAddress localVtep, IEnumerable<IPAddress> peers,
        IEnumerable<NetworkKey> keys, DateTimeOffset now, EspOptions options)
    {
        localVtep = EspKeyDerivation.Normalize(localVtep);
        long epoch = EspEpoch.Of(now, options.RekeyInterval);
        var list = new List<EspSaDescription>();
        IPAddress[] peerList = peers.Select(EspKeyDerivation.Normalize).Where(p => !p.Equals(localVtep)).Distinct().ToArray();
        foreach (NetworkKey key in keys)
        {
            foreach (IPAddress peer in peerList)
            {
                for (long e = epoch - options.EpochSpread; e <= epoch + options.EpochSpread; e++)
                {
                    list.Add(FromParameters(EspKeyDerivation.Derive(key, localVtep, peer, e, options.ExtendedSequenceNumbers), EspDirection.Outbound, options, e == epoch));
                    list.Add(FromParameters(EspKeyDerivation.Derive(key, peer, localVtep, e, options.ExtendedSequenceNumbers), EspDirection.Inbound, options, e == epoch));
                }
            }
        }
        return list;
    }

    internal static EspSaDescription From(SecurityAssociation sa, EspOptions options, bool current) => new()
    {
        Direction = sa.Direction,
        KeyId = sa.KeyId,
        Source = sa.Source?.ToString() ?? "",
        Destination = sa.Destination?.ToString() ?? "",
        Spi = sa.Spi,
        KeyHex = sa.KeyHex(),
        SaltHex = sa.SaltHex(),
        Epoch = sa.Epoch,
        EpochStart = EspEpoch.Start(sa.Epoch, options.RekeyInterval),
        EpochEnd = EspEpoch.Start(sa.Epoch + 1, options.RekeyInterval),
        Current = current,
        ExtendedSequenceNumbers = sa.ExtendedSequenceNumbers,
        Encapsulation = options.Encapsulation,
        UdpPort = options.Encapsulation == EspEncapsulation.Udp ? options.UdpPort : 0,
    };

    private static EspSaDescription FromParameters(EspSaParameters p, EspDirection direction, EspOptions options, bool current) => new()
    {
        Direction = direction,
        KeyId = p.KeyId,
        Source = p.Source?.ToString() ?? "",
        Destination = p.Destination?.ToString() ?? "",
        Spi = p.Spi,
        KeyHex = Convert.ToHexStringLower(p.Key),
        SaltHex = Convert.ToHexStringLower(p.Salt),
        Epoch = p.Epoch,
        EpochStart = EspEpoch.Start(p.Epoch, options.RekeyInterval),
        EpochEnd = EspEpoch.Start(p.Epoch + 1, options.RekeyInterval),
        Current = current,
        ExtendedSequenceNumbers = p.ExtendedSequenceNumbers,
        Encapsulation = options.Encapsulation,
        UdpPort = options.Encapsulation == EspEncapsulation.Udp ? options.UdpPort : 0,
    };
}
