using System.Net;

namespace UserOverlay.Crypto;

/// <summary>Everything that defines one unidirectional SA: what <see cref="EspKeyDerivation.Derive"/> produces, or what a test or a manual configuration supplies.</summary>
public sealed record EspSaParameters
{
    /// <summary>Security parameter index (the receiver's lookup key), ≥ 256 for derived SAs.</summary>
    public required uint Spi { get; init; }

    /// <summary>AES key: 16 or 32 bytes (24 is accepted here for RFC 4106 test vectors; networks use 16 or 32).</summary>
    public required byte[] Key { get; init; }

    /// <summary>4-byte salt, the implicit start of every GCM nonce (RFC 4106 §4).</summary>
    public required byte[] Salt { get; init; }

    /// <summary>64-bit extended sequence numbers: high half implicit, in the AAD (RFC 4303 App. A, RFC 4106 §5).</summary>
    public bool ExtendedSequenceNumbers { get; init; }

    /// <summary>GCM implementation (default <see cref="GcmBackend.Intrinsics"/>, as <see cref="EspOptions.Backend"/>;
    /// falls back to <see cref="GcmBackend.AesGcm"/> where the CPU lacks AES-NI or PCLMULQDQ).</summary>
    public GcmBackend Backend { get; init; } = GcmBackend.Intrinsics;

    /// <summary>Concurrent callers served without waiting (one key schedule each, all built with the SA).</summary>
    public int CipherLanes { get; init; } = 1;

    /// <summary>Network key the SA was derived from (descriptive).</summary>
    public string KeyId { get; init; } = "";

    /// <summary>Sending VTEP (descriptive; the outer source address).</summary>
    public IPAddress? Source { get; init; }

    /// <summary>Receiving VTEP (descriptive; the outer destination address).</summary>
    public IPAddress? Destination { get; init; }

    /// <summary>Key epoch (descriptive).</summary>
    public long Epoch { get; init; }
}
