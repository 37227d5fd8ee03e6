using System.Security.Cryptography;

namespace UserOverlay.Membership.Security;

/// <summary>
/// Gossip encryption keys, as memberlist's Keyring: the primary key encrypts, every installed key is
/// tried on decryption (so keys can be rotated without a flag day). Keys are 16, 24 or 32 bytes
/// (AES-128/192/256-GCM). Thread-safe: readers get an immutable snapshot, writers replace it.
/// </summary>
public sealed class Keyring
{
    private volatile byte[][] _keys; // _keys[0] is the primary

    /// <summary>Creates a keyring with <paramref name="primary"/> first and <paramref name="others"/> after it.</summary>
    public Keyring(ReadOnlySpan<byte> primary, params IEnumerable<byte[]> others)
    {
        Validate(primary);
        var list = new List<byte[]> { primary.ToArray() };
        foreach (var k in others)
        {
            Validate(k);
            if (!list.Any(x => x.AsSpan().SequenceEqual(k))) list.Add([.. k]);
        }
        _keys = [.. list];
    }

    /// <summary>Parses base64 keys as <c>serf agent -encrypt</c> and Docker take them; the first is the primary.</summary>
    public static Keyring FromBase64(string primary, params string[] others)
    {
        static byte[] Decode(string s)
        {
            try { return Convert.FromBase64String(s.Trim()); }
            catch (FormatException e) { throw new ArgumentException("gossip key is not valid base64", e); }
        }
        return new Keyring(Decode(primary), others.Select(Decode));
    }

    /// <summary>The key that encrypts outgoing messages.</summary>
    public ReadOnlyMemory<byte> PrimaryKey => _keys[0];

    /// <summary>Every installed key, primary first. A snapshot.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Keys => _keys.Select(k => (ReadOnlyMemory<byte>)k).ToArray();

    internal byte[][] Snapshot => _keys;

    /// <summary>Installs an extra key for decryption (no effect if already installed).</summary>
    public void AddKey(ReadOnlySpan<byte> key)
    {
        Validate(key);
        lock (this)
        {
            foreach (var k in _keys) if (k.AsSpan().SequenceEqual(key)) return;
            byte[] add = key.ToArray();
            _keys = [.. _keys, add];
        }
    }

    /// <summary>Makes an installed key (or a new one, installed first) the primary.</summary>
    public void UseKey(ReadOnlySpan<byte> key)
    {
        Validate(key);
        lock (this)
        {
            byte[] k = key.ToArray();
            _keys = [k, .. _keys.Where(x => !x.AsSpan().SequenceEqual(k))];
        }
    }

    /// <summary>Removes a non-primary key. Removing the primary throws.</summary>
    public void RemoveKey(ReadOnlySpan<byte> key)
    {
        lock (this)
        {
            if (_keys[0].AsSpan().SequenceEqual(key)) throw new InvalidOperationException("cannot remove the primary key");
            byte[] k = key.ToArray();
            _keys = [.. _keys.Where(x => !x.AsSpan().SequenceEqual(k))];
        }
    }

    private static void Validate(ReadOnlySpan<byte> key)
    {
        if (key.Length is not (16 or 24 or 32))
            throw new ArgumentException($"gossip key must be 16, 24 or 32 bytes (AES-128/192/256), not {key.Length}");
    }
}

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
