using System.Security.Cryptography;
using System.Text;

namespace UserOverlay.Crypto;

/// <summary>
/// The secret of one encrypted overlay network (or of several networks that name the same key): 16 bytes for
/// AES-128-GCM SAs or 32 bytes for AES-256-GCM SAs. SA keys, salts and SPIs are derived from it
/// (<see cref="EspKeyDerivation"/>); the secret itself never goes on the wire.
/// </summary>
/// <remarks>Immutable and thread-safe. <see cref="ToString"/> shows the id and a fingerprint, never the secret.</remarks>
public sealed class NetworkKey
{
    private readonly byte[] _secret;

    /// <summary>Creates a key. <paramref name="id"/> names it (usually the network's name); SAs are per (id, peer).</summary>
    /// <exception cref="ArgumentException">the secret is not 16 or 32 bytes, or the id is empty.</exception>
    public NetworkKey(string id, ReadOnlySpan<byte> secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (secret.Length is not (16 or 32))
            throw new ArgumentException($"network key '{id}' is {secret.Length} bytes; an encrypted network needs a 16-byte (AES-128) or 32-byte (AES-256) key.", nameof(secret));
        Id = id;
        _secret = secret.ToArray();
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData([.. "UserOverlay network key fingerprint\0"u8, .. _secret], h);
        Fingerprint = Convert.ToHexStringLower(h[..8]);
    }

    /// <summary>Name of the key; SAs, counters and descriptions refer to it.</summary>
    public string Id { get; }

    /// <summary>The secret (16 or 32 bytes).</summary>
    public ReadOnlySpan<byte> Secret => _secret;

    /// <summary>16 hex digits of SHA-256("UserOverlay network key fingerprint\0" ‖ secret): tells keys apart in logs without revealing them.</summary>
    public string Fingerprint { get; }

    /// <summary>True if both keys hold the same secret (constant-time).</summary>
    public bool SecretEquals(NetworkKey other) => CryptographicOperations.FixedTimeEquals(_secret, other._secret);

    /// <summary>Parses the configuration's <c>key:</c> value (base64 of 16 or 32 bytes).</summary>
    /// <exception cref="FormatException">not base64, or not 16/32 bytes; the message says which and why.</exception>
    public static NetworkKey FromBase64(string id, string base64)
    {
        byte[] secret;
        try
        {
            secret = Convert.FromBase64String(base64.Trim());
        }
        catch (FormatException)
        {
            throw new FormatException($"key of network '{id}' is not valid base64 (expected 16 or 32 random bytes in base64, e.g. from 'head -c 32 /dev/urandom | base64').");
        }
        if (secret.Length is not (16 or 32))
            throw new FormatException($"key of network '{id}' decodes to {secret.Length} bytes; it must be 16 (AES-128) or 32 (AES-256) bytes.");
        try
        {
            return new NetworkKey(id, secret);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>
    /// Reads the configuration's <c>key_file:</c>. The file holds either the key in base64 (surrounding whitespace
    /// ignored) or exactly 16 or 32 raw bytes; base64 is tried first (a raw 16/32-byte file that happens to be
    /// valid base64 would decode to 12 or 24 bytes, which is rejected and falls through to raw).
    /// </summary>
    /// <exception cref="FormatException">neither form yields 16 or 32 bytes (or the file is larger than any key file, which also
    /// stops a device such as /dev/zero from being read forever).</exception>
    public static NetworkKey FromFile(string id, string path)
    {
        const int MaxKeyFile = 1024;
        byte[] raw = new byte[MaxKeyFile + 1];
        int length = 0;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0))
        {
            int n;
            while (length < raw.Length && (n = file.Read(raw, length, raw.Length - length)) > 0) length += n;
        }
        try
        {
            if (length > MaxKeyFile)
                throw new FormatException($"key_file '{path}' of network '{id}' is larger than {MaxKeyFile} bytes; it must hold one key (base64 of 16/32 bytes, or 16/32 raw bytes).");
            raw = TrimTo(raw, length);
            string text = Encoding.ASCII.GetString(raw).Trim();
            Span<byte> decoded = stackalloc byte[64];
            if (text.Length <= 88 && Convert.TryFromBase64String(text, decoded, out int n) && n is 16 or 32)
            {
                var key = new NetworkKey(id, decoded[..n]);
                CryptographicOperations.ZeroMemory(decoded);
                return key;
            }
            if (raw.Length is 16 or 32)
                return new NetworkKey(id, raw);
            throw new FormatException($"key_file '{path}' of network '{id}' holds neither base64 of 16/32 bytes nor 16/32 raw bytes ({raw.Length} bytes).");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    // The first length bytes (the rest of the buffer is zeroed).
    private static byte[] TrimTo(byte[] buffer, int length)
    {
        byte[] exact = buffer[..length];
        CryptographicOperations.ZeroMemory(buffer);
        return exact;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Id} ({_secret.Length * 8}-bit, fingerprint {Fingerprint})";
}
