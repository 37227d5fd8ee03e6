namespace UserOverlay.Crypto;

/// <summary>
/// One AES-GCM key schedule, used by one thread at a time (<see cref="CipherLanes"/> hands them out).
/// ESP keeps ciphertext and ICV adjacent, so both methods work in place on <c>data</c> followed by <c>tag</c>.
/// </summary>
internal abstract class GcmEngine : IDisposable
{
    /// <summary>Encrypts <paramref name="data"/> in place and writes the 16-byte tag.</summary>
    public abstract void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag);

    /// <summary>Authenticates and decrypts <paramref name="data"/> in place; false if the tag does not verify
    /// (then <paramref name="data"/> is zeroed: no unauthenticated plaintext is released). The tag comparison is
    /// constant-time in every backend (OpenSSL's CRYPTO_memcmp inside EVP_DecryptFinal; BouncyCastle's
    /// Arrays.FixedTimeEquals; a 128-bit XOR and zero test in <see cref="AesGcmIntrinsics"/>).</summary>
    public abstract bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag);

    public abstract void Dispose();

    public static GcmEngine Create(GcmBackend backend, ReadOnlySpan<byte> key) => Resolve(backend) switch
    {
        GcmBackend.AesGcm => new DotNetGcmEngine(key),
        GcmBackend.BouncyCastle => new BouncyCastleGcmEngine(key),
        GcmBackend.Intrinsics => new AesGcmIntrinsics(key),
        _ => throw new ArgumentOutOfRangeException(nameof(backend)),
    };

    /// <summary>The backend an SA asking for <paramref name="backend"/> really uses: <see cref="GcmBackend.Intrinsics"/>
    /// falls back to <see cref="GcmBackend.AesGcm"/> on a CPU without AES-NI, PCLMULQDQ or SSSE3.</summary>
    public static GcmBackend Resolve(GcmBackend backend) => ResolveFor(backend, AesGcmIntrinsics.IsSupported);

    internal static GcmBackend ResolveFor(GcmBackend backend, bool intrinsicsSupported) =>
        backend == GcmBackend.Intrinsics && !intrinsicsSupported ? GcmBackend.AesGcm : backend;
}
