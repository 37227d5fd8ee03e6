using System.Security.Cryptography;

namespace UserOverlay.Membership.Security;

/// <summary>
/// memberlist's payload encryption. Layout: version (1) | nonce (12) | ciphertext | GCM tag (16).
/// Version 1 has no padding (what protocol ≥ 2 sends); version 0 pads with PKCS#7 to 16 bytes and
/// is accepted on receive. AAD: empty for UDP (no label), the 5-byte stream header (0x0a + BE32
/// length) for TCP. Stateless and thread-safe.
/// </summary>
internal static class PayloadCrypto
{
    public const int VersionSize = 1, NonceSize = 12, TagSize = 16;
    /// <summary>Bytes added by version 1 encryption.</summary>
    public const int Overhead = VersionSize + NonceSize + TagSize; // 29
    /// <summary>The version we send (protocol 2 → 1, no padding).</summary>
    public const byte CurrentVersion = 1;

    public static int EncryptedLength(int plainLength) => Overhead + plainLength;

    /// <summary>Encrypts into <paramref name="destination"/> (length <see cref="EncryptedLength"/>).</summary>
    public static void Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plain, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        destination[0] = CurrentVersion;
        var nonce = destination.Slice(VersionSize, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var ct = destination.Slice(VersionSize + NonceSize, plain.Length);
        var tag = destination.Slice(VersionSize + NonceSize + plain.Length, TagSize);
        using var gcm = new AesGcm(key, TagSize);
        gcm.Encrypt(nonce, plain, ct, tag, aad);
    }

    public static byte[] Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plain, ReadOnlySpan<byte> aad)
    {
        var b = new byte[EncryptedLength(plain.Length)];
        Encrypt(key, plain, aad, b);
        return b;
    }

    /// <summary>Tries every key; null when none authenticates (or the payload is malformed).</summary>
    public static byte[]? TryDecrypt(byte[][] keys, ReadOnlySpan<byte> msg, ReadOnlySpan<byte> aad)
    {
        if (msg.Length < 1) return null;
        byte vsn = msg[0];
        if (vsn > 1) return null;
        if (msg.Length < VersionSize + NonceSize + TagSize + (vsn == 0 ? 16 : 0)) return null;
        var nonce = msg.Slice(VersionSize, NonceSize);
        var ct = msg[(VersionSize + NonceSize)..^TagSize];
        var tag = msg[^TagSize..];
        var plain = new byte[ct.Length];
        foreach (var key in keys)
        {
            using var gcm = new AesGcm(key, TagSize);
            try
            {
                gcm.Decrypt(nonce, ct, tag, plain, aad);
            }
            catch (AuthenticationTagMismatchException)
            {
                continue;
            }
            if (vsn == 0)
            {
                if (plain.Length == 0) return null;
                int pad = plain[^1];
                if (pad is 0 or > 16 || pad > plain.Length) return null;
                return plain[..^pad];
            }
            return plain;
        }
        return null;
    }
}
