using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;

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

/// <summary>.NET AesGcm. One instance holds one OpenSSL cipher context, which is not safe for concurrent use.</summary>
internal sealed class DotNetGcmEngine(ReadOnlySpan<byte> key) : GcmEngine
{
    // Explicit tag size, as STYLE.md rule 4 asks (the size-less constructor is obsolete).
    private readonly AesGcm _aes = new(key, Esp.IcvLength);

    public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag) =>
        _aes.Encrypt(nonce, data, data, tag, aad);

    public override bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag)
    {
        try
        {
            _aes.Decrypt(nonce, data, tag, data, aad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            // AesGcm has no non-throwing decrypt (as of .NET 10). Only packets that pass the SPI lookup and the
            // replay pre-check get here, and each is counted as AuthenticationFailed.
            return false;
        }
    }

    public override void Dispose() => _aes.Dispose();
}

/// <summary>BouncyCastle GcmBlockCipher. Re-initialised per packet with the key schedule kept (null key parameter).</summary>
internal sealed class BouncyCastleGcmEngine : GcmEngine
{
    private readonly GcmBlockCipher _gcm = new(AesUtilities.CreateEngine());
    private readonly byte[] _nonce = new byte[Esp.NonceLength];
    private readonly AeadParameters _reinit; // holds _nonce by reference; BouncyCastle clones it in Init

    public BouncyCastleGcmEngine(ReadOnlySpan<byte> key)
    {
        // Set the key once (decrypt direction, so the throw-away nonce never trips the encrypt-side reuse check).
        byte[] first = new byte[Esp.NonceLength];
        first.AsSpan().Fill(0xA5);
        _gcm.Init(false, new AeadParameters(new KeyParameter(key), Esp.IcvLength * 8, first));
        _reinit = new AeadParameters(null, Esp.IcvLength * 8, _nonce);
    }

    public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag)
    {
        nonce.CopyTo(_nonce);
        _gcm.Init(true, _reinit);
        _gcm.ProcessAadBytes(aad);
        if (Adjacent(data, tag))
        {
            Span<byte> all = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(data), data.Length + tag.Length);
            int n = _gcm.ProcessBytes(data, all);
            _gcm.DoFinal(all[n..]);
        }
        else
        {
            byte[] tmp = new byte[data.Length + tag.Length];
            int n = _gcm.ProcessBytes(data, tmp);
            _gcm.DoFinal(tmp.AsSpan(n));
            tmp.AsSpan(0, data.Length).CopyTo(data);
            tmp.AsSpan(data.Length).CopyTo(tag);
        }
    }

    public override bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag)
    {
        nonce.CopyTo(_nonce);
        _gcm.Init(false, _reinit);
        _gcm.ProcessAadBytes(aad);
        try
        {
            if (Adjacent(data, tag))
            {
                ReadOnlySpan<byte> all = MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetReference(data), data.Length + tag.Length);
                int n = _gcm.ProcessBytes(all, data);
                _gcm.DoFinal(data[n..]);
            }
            else
            {
                byte[] tmp = new byte[data.Length + tag.Length];
                data.CopyTo(tmp);
                tag.CopyTo(tmp.AsSpan(data.Length));
                int n = _gcm.ProcessBytes(tmp, data);
                _gcm.DoFinal(data[n..]);
            }
            return true;
        }
        catch (InvalidCipherTextException)
        {
            // GcmBlockCipher has already written the unauthenticated plaintext; do not release it (as AesGcm does).
            CryptographicOperations.ZeroMemory(data);
            return false;
        }
    }

    private static bool Adjacent(ReadOnlySpan<byte> data, ReadOnlySpan<byte> tag) =>
        Unsafe.AreSame(ref Unsafe.Add(ref MemoryMarshal.GetReference(data), data.Length), ref MemoryMarshal.GetReference(tag));

    public override void Dispose() => _gcm.Reset();
}

/// <summary>
/// A small set of <see cref="GcmEngine"/>s for one SA so that several pipeline threads can seal or open with the
/// same SA at once: a thread takes a free lane with one compare-and-swap (its start lane is its managed thread id
/// modulo the lane count, so each pipeline thread usually finds "its" lane free) and gives it back after the call.
/// Every lane's key schedule is built with the SA, on the control path: the data path never constructs a cipher.
/// AesGcm and BouncyCastle keep per-message state in their objects, so a lane is really needed per concurrent caller;
/// <see cref="AesGcmIntrinsics"/> keeps its per-message state in registers and on the stack, so for it a lane is only
/// a permit that keeps <see cref="Dispose"/> from zeroing key material under a call in progress (one CAS and one store
/// per packet, ≈ 8 ns measured).
/// </summary>
/// <remarks>
/// Thread-safe. <see cref="Dispose"/> waits for every lane to be returned, then frees the key schedules; a
/// <see cref="Rent"/> after Dispose returns null, so a sealer racing with rotation fails closed, never crashes.
/// </remarks>
internal sealed class CipherLanes : IDisposable
{
    private const int Stride = 16; // one busy flag per 64-byte cache line

    private readonly GcmEngine?[] _engines;
    private readonly int[] _busy;
    private volatile bool _disposed;

    public CipherLanes(GcmBackend backend, ReadOnlySpan<byte> key, int lanes)
    {
        if (lanes < 1)
            lanes = 1;
        _engines = new GcmEngine?[lanes];
        _busy = new int[lanes * Stride];
        for (int l = 0; l < lanes; l++)
            _engines[l] = GcmEngine.Create(backend, key);
    }

    public int Count => _engines.Length;

    /// <summary>Takes a lane; null only after <see cref="Dispose"/>. Pair with <see cref="Return"/>.</summary>
    public GcmEngine? Rent(out int lane)
    {
        int n = _engines.Length;
        int start = Environment.CurrentManagedThreadId % n;
        var spin = new SpinWait();
        while (true)
        {
            for (int i = 0; i < n; i++)
            {
                int l = start + i;
                if (l >= n)
                    l -= n;
                if (Interlocked.CompareExchange(ref _busy[l * Stride], 1, 0) == 0)
                {
                    if (_disposed)
                    {
                        Volatile.Write(ref _busy[l * Stride], 0);
                        lane = -1;
                        return null;
                    }
                    lane = l;
                    return _engines[l];
                }
            }
            if (_disposed)
            {
                lane = -1;
                return null;
            }
            spin.SpinOnce();
        }
    }

    public void Return(int lane) => Volatile.Write(ref _busy[lane * Stride], 0);

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        var spin = new SpinWait();
        for (int l = 0; l < _engines.Length; l++)
        {
            // Take every lane for good; a thread inside Seal/Open finishes first.
            while (Interlocked.CompareExchange(ref _busy[l * Stride], 1, 0) != 0)
                spin.SpinOnce();
            _engines[l]?.Dispose();
            _engines[l] = null;
        }
    }
}
