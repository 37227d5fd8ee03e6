using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace UserOverlay.Cluster.Store.Etcd;

/// <summary>
/// Secrets at rest: seals a value (the CA's private key, a network's ESP keys) with AES-256-GCM under a 32-byte key
/// the caller holds outside the store, so that whoever reads etcd (or its backups) sees only ciphertext.
/// <para>
/// A sealed value is <c>"UOSV" | version (1 byte, now 1) | key id (8 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)</c>.
/// The key id (the first 8 bytes of SHA-256 over a label and the key) lets <see cref="Open"/> tell "sealed under
/// another key" from "tampered with". The header and a caller's <c>context</c> (the store key the value lives
/// under) are authenticated: a sealed value copied to another key does not open. Nonces are random (a key seals
/// far fewer than 2³² values here). Instances are thread-safe; <see cref="Dispose"/> clears the key.
/// </para>
/// </summary>
public sealed class SealedValues : IDisposable
{
    /// <summary>The key's size in bytes (AES-256).</summary>
    public const int KeySize = 32;

    /// <summary>The format version this class writes.</summary>
    public const byte Version = 1;

    private const int MagicSize = 4, KeyIdSize = 8, NonceSize = 12, TagSize = 16;
    private const int HeaderSize = MagicSize + 1 + KeyIdSize + NonceSize;

    /// <summary>Bytes a sealed value adds to its plaintext.</summary>
    public const int Overhead = HeaderSize + TagSize;

    private static ReadOnlySpan<byte> Magic => "UOSV"u8;

    private readonly byte[] _key;
    private readonly byte[] _keyId;
    private int _disposed;

    /// <summary>A sealer for <paramref name="key"/> (exactly <see cref="KeySize"/> bytes; copied).</summary>
    /// <exception cref="ArgumentException">The key is not 32 bytes.</exception>
    public SealedValues(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize) throw new ArgumentException($"key: {key.Length} bytes, AES-256-GCM needs {KeySize}", nameof(key));
        _key = GC.AllocateUninitializedArray<byte>(KeySize, pinned: true);
        key.CopyTo(_key);
        _keyId = KeyId(key);
    }

    /// <summary>A new random key for <see cref="SealedValues(ReadOnlySpan{byte})"/>.</summary>
    public static byte[] NewKey() => RandomNumberGenerator.GetBytes(KeySize);

    /// <summary>The id sealed values carry for <paramref name="key"/> (8 bytes).</summary>
    public static byte[] KeyId(ReadOnlySpan<byte> key)
    {
        Span<byte> input = stackalloc byte[32 + KeySize];
        "useroverlay sealed-values key id"u8.CopyTo(input);
        key.CopyTo(input[32..]);
        byte[] id = SHA256.HashData(input[..(32 + key.Length)])[..KeyIdSize];
        CryptographicOperations.ZeroMemory(input);
        return id;
    }

    /// <summary>True when <paramref name="value"/> has a sealed value's header (of any version).</summary>
    public static bool IsSealed(ReadOnlySpan<byte> value) => value.Length >= Overhead && value.StartsWith(Magic);

    /// <summary>Seals <paramref name="plaintext"/> for the store key <paramref name="context"/>.</summary>
    public byte[] Seal(ReadOnlySpan<byte> plaintext, string context)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentNullException.ThrowIfNull(context);
        byte[] sealedValue = new byte[Overhead + plaintext.Length];
        var header = sealedValue.AsSpan(0, HeaderSize);
        Magic.CopyTo(header);
        header[MagicSize] = Version;
        _keyId.CopyTo(header[(MagicSize + 1)..]);
        var nonce = header[(MagicSize + 1 + KeyIdSize)..];
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagSize);
        aes.Encrypt(nonce, plaintext, sealedValue.AsSpan(HeaderSize, plaintext.Length), sealedValue.AsSpan(HeaderSize + plaintext.Length), Aad(header, context));
        return sealedValue;
    }

    /// <summary>Opens a value <see cref="Seal"/> made for the same <paramref name="context"/>.</summary>
    /// <exception cref="InvalidDataException">Not a sealed value, an unknown version, sealed under another key, or altered (the message says which).</exception>
    public byte[] Open(ReadOnlySpan<byte> sealedValue, string context)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentNullException.ThrowIfNull(context);
        if (!IsSealed(sealedValue))
            throw new InvalidDataException($"sealed value for '{context}': not a sealed value ({sealedValue.Length} bytes, no UOSV header)");
        byte version = sealedValue[MagicSize];
        if (version != Version)
            throw new InvalidDataException($"sealed value for '{context}': version {version} is not known (this build reads {Version})");
        var header = sealedValue[..HeaderSize];
        if (!CryptographicOperations.FixedTimeEquals(header.Slice(MagicSize + 1, KeyIdSize), _keyId))
            throw new InvalidDataException($"sealed value for '{context}': sealed under another key (id {Convert.ToHexString(header.Slice(MagicSize + 1, KeyIdSize))}, this key's is {Convert.ToHexString(_keyId)})");
        int length = sealedValue.Length - Overhead;
        byte[] plaintext = new byte[length];
        using var aes = new AesGcm(_key, TagSize);
        try
        {
            aes.Decrypt(header[(MagicSize + 1 + KeyIdSize)..], sealedValue.Slice(HeaderSize, length), sealedValue[(HeaderSize + length)..], plaintext, Aad(header, context));
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new InvalidDataException($"sealed value for '{context}': altered, or sealed for another store key", e);
        }
        return plaintext;
    }

    private static byte[] Aad(ReadOnlySpan<byte> header, string context)
    {
        byte[] aad = new byte[header.Length + 4 + Encoding.UTF8.GetByteCount(context)];
        header.CopyTo(aad);
        BinaryPrimitives.WriteInt32BigEndian(aad.AsSpan(header.Length), aad.Length - header.Length - 4);
        Encoding.UTF8.GetBytes(context, aad.AsSpan(header.Length + 4));
        return aad;
    }

    /// <summary>Clears the key; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) CryptographicOperations.ZeroMemory(_key);
    }
}
