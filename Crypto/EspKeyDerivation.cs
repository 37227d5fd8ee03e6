using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace UserOverlay.Crypto;

/// <summary>
/// Derives the SPI, AES key and salt of one SA from the network key, both VTEP addresses and the key epoch with
/// HKDF-SHA256 (RFC 5869). Deterministic, so both ends compute the same SA without a key exchange. The exact
/// recipe (reproduce it byte for byte in another implementation):
/// <code>
/// PRK  = HKDF-Extract(salt = ASCII "UserOverlay ESP v1", IKM = network key (16 or 32 bytes))
/// info = ASCII "UserOverlay ESP SA" ‖ 0x00
///        ‖ flags (1 byte: 0x01 if extended sequence numbers, else 0x00)
///        ‖ key length in bytes (1 byte: 16 or 32)
///        ‖ source VTEP length (1 byte: 4 or 16) ‖ source VTEP address (network byte order)
///        ‖ destination VTEP length (1 byte) ‖ destination VTEP address
///        ‖ epoch (8 bytes, big-endian two's complement)
/// OKM  = HKDF-Expand(PRK, info, L = key length + 8)
/// key  = OKM[0 .. keylen)        salt = OKM[keylen .. keylen+4)
/// spi  = big-endian uint32 of OKM[keylen+4 .. keylen+8); if spi &lt; 256 then spi = spi | 0x100
/// </code>
/// Source is the sender's VTEP (outer source address), destination the receiver's. IPv4-mapped IPv6 addresses are
/// used as IPv4. The SPI rule keeps clear of the IANA-reserved values 0..255 (RFC 4303 §2.1).
/// </summary>
public static class EspKeyDerivation
{
    /// <summary>HKDF salt: ASCII "UserOverlay ESP v1".</summary>
    public static ReadOnlySpan<byte> HkdfSalt => "UserOverlay ESP v1"u8;

    /// <summary>Start of the HKDF info: ASCII "UserOverlay ESP SA" followed by one zero byte.</summary>
    public static ReadOnlySpan<byte> InfoLabel => "UserOverlay ESP SA\0"u8;

    /// <summary>Derives the SA that <paramref name="source"/> uses to send to <paramref name="destination"/> in <paramref name="epoch"/>.</summary>
    public static EspSaParameters Derive(NetworkKey key, IPAddress source, IPAddress destination, long epoch, bool extendedSequenceNumbers)
    {
        source = Normalize(source);
        destination = Normalize(destination);
        Span<byte> src = stackalloc byte[16];
        Span<byte> dst = stackalloc byte[16];
        if (!source.TryWriteBytes(src, out int srcLen) || !destination.TryWriteBytes(dst, out int dstLen))
            throw new ArgumentException("VTEP addresses must be IPv4 or IPv6.");

        int keyLen = key.Secret.Length;
        Span<byte> info = stackalloc byte[InfoLabel.Length + 2 + 1 + srcLen + 1 + dstLen + 8];
        int o = 0;
        InfoLabel.CopyTo(info);
        o += InfoLabel.Length;
        info[o++] = extendedSequenceNumbers ? (byte)1 : (byte)0;
        info[o++] = (byte)keyLen;
        info[o++] = (byte)srcLen;
        src[..srcLen].CopyTo(info[o..]);
        o += srcLen;
        info[o++] = (byte)dstLen;
        dst[..dstLen].CopyTo(info[o..]);
        o += dstLen;
        BinaryPrimitives.WriteInt64BigEndian(info[o..], epoch);

        Span<byte> okm = stackalloc byte[keyLen + Esp.SaltLength + 4];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key.Secret, okm, HkdfSalt, info);
        uint spi = BinaryPrimitives.ReadUInt32BigEndian(okm[(keyLen + Esp.SaltLength)..]);
        if (spi < Esp.MinSpi)
            spi |= 0x100;
        var p = new EspSaParameters
        {
            Spi = spi,
            Key = okm[..keyLen].ToArray(),
            Salt = okm.Slice(keyLen, Esp.SaltLength).ToArray(),
            ExtendedSequenceNumbers = extendedSequenceNumbers,
            KeyId = key.Id,
            Source = source,
            Destination = destination,
            Epoch = epoch,
        };
        CryptographicOperations.ZeroMemory(okm);
        return p;
    }

    /// <summary>IPv4-mapped IPv6 becomes IPv4; anything else is returned as is.</summary>
    public static IPAddress Normalize(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
