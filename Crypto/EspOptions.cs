namespace UserOverlay.Crypto;

/// <summary>
/// Settings of an <see cref="EspSecurityDatabase"/>. Every host of a network must use the same
/// <see cref="RekeyInterval"/> and <see cref="ExtendedSequenceNumbers"/> (they enter the epoch and the derivation).
/// </summary>
public sealed record EspOptions
{
    /// <summary>
    /// Length of one key epoch (config <c>rekey_interval</c>, default 1 h). Epoch = ⌊unix time / interval⌋; at each
    /// boundary senders move to the next epoch's SAs. Formula for the sequence budget: without ESN one SA may seal
    /// <see cref="RekeyAfterPackets"/> (2^31) packets before it moves early, so sustained rates above
    /// 2^31 / interval (≈ 600 000 packets/s per peer pair at 1 h) call for a shorter interval or ESN.
    /// </summary>
    public TimeSpan RekeyInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Epochs accepted on either side of the current one (default 1: receivers hold SAs for e−1, e, e+1). The grace
    /// period after a rotation is therefore one full interval, and hosts whose clocks differ by up to
    /// <see cref="EpochSpread"/> × <see cref="RekeyInterval"/> still understand each other. A sender rotating early
    /// (sequence space) may go at most this far ahead of its clock's epoch.
    /// </summary>
    public int EpochSpread { get; init; } = 1;

    /// <summary>64-bit extended sequence numbers (RFC 4303 App. A; high half in the AAD, RFC 4106 §5). Off by
    /// default: Wireshark 4.0 cannot verify ESN packets.</summary>
    public bool ExtendedSequenceNumbers { get; init; }

    /// <summary>The wire form used when none is given: <see cref="EspEncapsulation.Udp"/> (ESP-in-UDP, RFC 3948). It gets the
    /// kernel's UDP GSO and GRO, as plain VXLAN does, and passes networks that drop IP protocol 50; transport mode's raw IP
    /// sockets have neither, and carry about half the plaintext TCP throughput (docs/performance.md).</summary>
    public const EspEncapsulation DefaultEncapsulation = EspEncapsulation.Udp;

    /// <summary>Wire form (config <c>esp</c>, default <see cref="DefaultEncapsulation"/>, ESP-in-UDP; <see cref="EspEncapsulation.Transport"/>
    /// is Docker's protocol-50 form, for a kernel-IPsec peer). Affects only <see cref="EspOverhead"/> and descriptions here;
    /// the router does the UDP part.</summary>
    public EspEncapsulation Encapsulation { get; init; } = DefaultEncapsulation;

    /// <summary>UDP port of ESP-in-UDP (config, default <see cref="Esp.NatTraversalPort"/>).</summary>
    public int UdpPort { get; init; } = Esp.NatTraversalPort;

    /// <summary>GCM implementation (default <see cref="GcmBackend.Intrinsics"/>, which falls back to
    /// <see cref="GcmBackend.AesGcm"/> on a CPU without AES-NI/PCLMULQDQ; measured in Bench/Crypto and Crypto/README.md:
    /// several times faster than AesGcm for 64-byte and MTU-sized frames, zero allocation; see <see cref="GcmBackend"/>).</summary>
    public GcmBackend Backend { get; init; } = GcmBackend.Intrinsics;

    /// <summary>Key schedules per SA for concurrent callers = min(processor count, 8) by default; set it to the
    /// number of pipeline threads that may seal or open with one SA at once.</summary>
    public int CipherLanes { get; init; } = Math.Min(Environment.ProcessorCount, 8);

    /// <summary>Packets after which an outbound SA moves to the next epoch early (default 2^31 without ESN, 2^62 with),
    /// long before the 32-bit space (2^32 − 1) could wrap.</summary>
    public ulong? RekeyAfterPackets { get; init; }

    /// <summary>Sequence numbers reserved per durable write (default 2^22 ≈ 4.2 M: one write every ~4 s at 1 M packets/s;
    /// a restart skips at most this many, 0.1 % of the 32-bit space).</summary>
    public ulong SequenceReservationBlock { get; init; } = 1UL << 22;

    /// <summary>How often <see cref="EspSecurityDatabase.Tick"/> saves the highest sequence number each inbound SA has
    /// accepted (default 10 s; <see cref="TimeSpan.Zero"/> turns it off). After a restart the receiver rejects
    /// everything up to the saved number, so a replay of captured packets can succeed only for what arrived in the
    /// last interval before the restart, instead of for the whole epoch.</summary>
    public TimeSpan ReplayStateSaveInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where outbound sequence reservations persist (required by <see cref="EspSecurityDatabase"/>; not needed for <see cref="EspSaDescription.Enumerate"/>). Use <see cref="FileSequenceStore"/> in the
    /// daemon; <see cref="InMemorySequenceStore"/> only where keys do not outlive the process, or in tests.</summary>
    public ISequenceStore? SequenceStore { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the property (ParamName) if a value is out of range; the message says the range, not a file's key name.</summary>
    public void Validate()
    {
        if (RekeyInterval < TimeSpan.FromSeconds(1))
            throw new ArgumentOutOfRangeException(nameof(RekeyInterval), RekeyInterval, $"must be at least 1 s (it is {RekeyInterval.TotalSeconds:0.###} s)");
        if (EpochSpread is < 1 or > 16)
            throw new ArgumentOutOfRangeException(nameof(EpochSpread), EpochSpread, $"must be from 1 to 16 (it is {EpochSpread})");
        if (CipherLanes is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(CipherLanes), CipherLanes, $"must be from 1 to 256 (it is {CipherLanes})");
        if (SequenceReservationBlock < 2)
            throw new ArgumentOutOfRangeException(nameof(SequenceReservationBlock), SequenceReservationBlock, $"must be at least 2 (it is {SequenceReservationBlock})");
        if (UdpPort is < 1 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(UdpPort), UdpPort, $"must be from 1 to 65535 (it is {UdpPort})");
    }

    internal ulong EffectiveRekeyAfter => RekeyAfterPackets ?? (ExtendedSequenceNumbers ? Esp.DefaultRekeyAfterPackets64 : Esp.DefaultRekeyAfterPackets32);
}
