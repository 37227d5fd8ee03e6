namespace UserOverlay.Crypto;

/// <summary>Which AES-GCM implementation an SA uses.</summary>
public enum GcmBackend
{
    /// <summary>
    /// .NET's <see cref="System.Security.Cryptography.AesGcm"/> (OpenSSL 3's EVP AES-GCM on Linux: AES-NI/VAES with
    /// carry-less multiply). Zero bytes allocated per packet. It was the data path default until
    /// <see cref="Intrinsics"/>: every call pays a fixed cost of ≈ 700 ns on the project VM (several P/Invokes and
    /// OpenSSL's per-message EVP re-initialisation) on top of ≈ 0.4 ns/byte. It remains selectable, and it is what
    /// <see cref="Intrinsics"/> falls back to on a CPU without AES-NI or PCLMULQDQ.
    /// </summary>
    AesGcm = 0,

    /// <summary>
    /// BouncyCastle's <c>GcmBlockCipher</c> over <c>AesUtilities.CreateEngine()</c> (managed, with x86 AES intrinsics).
    /// Kept as an independent implementation: the tests cross-check every packet shape against it, and the
    /// benchmarks compare it. It allocates ≈ 560 B per packet (BouncyCastle's <c>Init</c> clones the nonce and builds
    /// per-message state), so it is not a data-path backend.
    /// </summary>
    BouncyCastle = 1,

    /// <summary>
    /// AES-GCM in C# with x86 hardware intrinsics (AES-NI for AES; PCLMULQDQ, and VPCLMULQDQ on 512-bit registers
    /// where AVX-512 is present, for GHASH with aggregated reduction over hash key powers computed when the SA is
    /// created). No P/Invoke and no per-message set-up, zero bytes allocated per packet. The default
    /// (<see cref="EspOptions.Backend"/>), chosen by measurement (Bench/Crypto, table in Crypto/README.md): on the
    /// project VM it seals a 64-byte frame ≈ 12× and a 1400-byte frame ≈ 3.7× faster than <see cref="AesGcm"/>, and
    /// opens them ≈ 7× and ≈ 3.4× faster. An SA asking for it on a CPU without AES-NI, PCLMULQDQ and SSSE3 gets
    /// <see cref="AesGcm"/> instead (<see cref="SecurityAssociation.Backend"/> tells which).
    /// </summary>
    Intrinsics = 2,
}
