using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;

namespace UserOverlay.Crypto;

/// <summary>Common part of <see cref="OutboundSa"/> and <see cref="InboundSa"/>: identity, key material, cipher lanes.</summary>
public abstract class SecurityAssociation : IDisposable
{
    private protected readonly CipherLanes _lanes;
    private protected readonly byte[] _salt;
    private readonly byte[] _key;

    private protected SecurityAssociation(EspSaParameters p)
    {
        if (p.Key.Length is not (16 or 24 or 32))
            throw new ArgumentException("AES-GCM key must be 16, 24 or 32 bytes.", nameof(p));
        if (p.Salt.Length != Esp.SaltLength)
            throw new ArgumentException("salt must be 4 bytes.", nameof(p));
        Spi = p.Spi;
        ExtendedSequenceNumbers = p.ExtendedSequenceNumbers;
        Backend = GcmEngine.Resolve(p.Backend);
        KeyId = p.KeyId;
        Source = p.Source;
        Destination = p.Destination;
        Epoch = p.Epoch;
        _key = (byte[])p.Key.Clone();
        _salt = (byte[])p.Salt.Clone();
        _lanes = new CipherLanes(Backend, _key, p.CipherLanes);
    }

    /// <summary>Security parameter index.</summary>
    public uint Spi { get; }

    /// <summary>Whether 64-bit extended sequence numbers are used.</summary>
    public bool ExtendedSequenceNumbers { get; }

    /// <summary>GCM implementation in use (<see cref="GcmBackend.Intrinsics"/> asked for on a CPU without it reads
    /// <see cref="GcmBackend.AesGcm"/>).</summary>
    public GcmBackend Backend { get; }

    /// <summary>Network key id the SA belongs to. The router must check that a packet opened with an SA carries a VNI of a network using this key.</summary>
    public string KeyId { get; }

    /// <summary>Sending VTEP.</summary>
    public IPAddress? Source { get; }

    /// <summary>Receiving VTEP.</summary>
    public IPAddress? Destination { get; }

    /// <summary>Key epoch.</summary>
    public long Epoch { get; }

    /// <summary>Key length in bytes (16 or 32).</summary>
    public int KeyLength => _key.Length;

    /// <summary>Direction as seen from this host.</summary>
    public abstract EspDirection Direction { get; }

    /// <summary>Copies the key and salt as "key ‖ salt" in lower-case hex, the form ip xfrm and Wireshark take. Secret: for <c>useroverlay sa</c> only.</summary>
    public string KeyAndSaltHex() => Convert.ToHexStringLower(_key) + Convert.ToHexStringLower(_salt);

    internal string KeyHex() => Convert.ToHexStringLower(_key);

    internal string SaltHex() => Convert.ToHexStringLower(_salt);

    /// <summary>
    /// Identity of this SA in an <see cref="ISequenceStore"/>: 32 hex digits of
    /// SHA-256("UserOverlay ESP SA id\0" ‖ key ‖ salt ‖ SPI (4 bytes BE) ‖ flags (1 byte)). Reveals nothing of the key.
    /// </summary>
    public string RecordId => ComputeRecordId(_key, _salt, Spi, ExtendedSequenceNumbers);

    internal static string ComputeRecordId(ReadOnlySpan<byte> key, ReadOnlySpan<byte> salt, uint spi, bool esn)
    {
        ReadOnlySpan<byte> label = "UserOverlay ESP SA id\0"u8;
        Span<byte> buf = stackalloc byte[64];
        label.CopyTo(buf);
        int o = label.Length;
        key.CopyTo(buf[o..]);
        o += key.Length;
        salt.CopyTo(buf[o..]);
        o += salt.Length;
        BinaryPrimitives.WriteUInt32BigEndian(buf[o..], spi);
        o += 4;
        buf[o++] = esn ? (byte)1 : (byte)0;
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(buf[..o], h);
        CryptographicOperations.ZeroMemory(buf);
        return Convert.ToHexStringLower(h[..16]);
    }

    /// <summary>Frees the key schedules after any call in progress has finished; later calls fail closed
    /// (<see cref="EspSealStatus.NoSa"/> / <see cref="EspOpenStatus.UnknownSpi"/>). Zeroes the key copy.</summary>
    public void Dispose()
    {
        _lanes.Dispose();
        CryptographicOperations.ZeroMemory(_key);
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Direction} SA spi 0x{Spi:x8} {Source}->{Destination} key {KeyId} epoch {Epoch}";
}
