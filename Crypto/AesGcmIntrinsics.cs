using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using AesNi = System.Runtime.Intrinsics.X86.Aes;

namespace UserOverlay.Crypto;

// AES-GCM (NIST SP 800-38D) for ESP, written with x86 hardware intrinsics: no P/Invoke, no allocation per message.
//
// Scope, deliberately: 96-bit nonces only (ESP's salt ‖ IV, RFC 4106 §4), 16-byte tags only, AES-128/192/256
// (192 only because draft-mcgrew-gcm-test-01 has an AES-192 case; networks use 128 or 256), messages up to
// int.MaxValue bytes (so the 32-bit block counter, starting at 2, never wraps).
//
// Per message:
//   1. J0 = nonce ‖ 0x00000001; E(K, J0) masks the tag. Data block i is XORed with E(K, nonce ‖ (i + 2)).
//   2. Main loop, 128 bytes (8 blocks) at a time: 8 independent AES-NI chains (AESENC has a latency of several cycles
//      but two issue per cycle, so 8 blocks in flight keep the unit busy), and GHASH of those 8 ciphertext blocks with
//      one aggregated multiplication by H^8..H^1 and a single reduction (Intel's "Carry-less Multiplication and its
//      Usage for Computing the GCM Mode", aggregated reduction; Gueron–Kounavis). With AVX-512 + VPCLMULQDQ the 8
//      blocks are multiplied 4 per instruction (two ZMM registers); otherwise 32 PCLMULQDQs on XMM registers.
//      .NET 10 has VPCLMULQDQ (Pclmulqdq.V256/V512) but no VAES (there is no Aes.V256/V512), so AES stays 128-bit.
//      Decryption hashes the ciphertext of the same iteration before overwriting it (in place); encryption hashes the
//      previous iteration's ciphertext, so the hash never waits for the AES it follows.
//   3. Tail, fewer than 128 bytes: the remaining counter blocks are encrypted together (4 or 8 chains), and the
//      remaining ciphertext blocks (the last one zero-padded), the length block and, for short messages, the AAD
//      block are hashed in one aggregated batch (at most 10 blocks, powers H^10..H^1) with one reduction. A 64-byte
//      frame therefore costs one GHASH reduction in all. With AVX-512 the tail is read, XORed and written as two
//      64-byte vectors under byte masks (no copy for the partial block) and its blocks are multiplied four per
//      VPCLMULQDQ; without it, block by block with a copy for the partial block.
//   4. Tag = E(K, J0) ⊕ GHASH. Decryption compares it in constant time (one 128-bit XOR and a zero test; see CheckTag
//      for why not CryptographicOperations.FixedTimeEquals); on a mismatch the output is zeroed (the same contract as
//      .NET's AesGcm), so unauthenticated plaintext is never released.
//
// GHASH representation. A block is byte-reversed (PSHUFB) and read as a 128-bit little-endian integer, so the
// coefficient of x^k of the GCM polynomial sits at bit 127 − k ("reflected"). A carry-less product of two reflected
// values is the reflected product shifted right by one bit, i.e. multiplied by y^-127 in the reflected ring modulo
// y^128 + y^127 + y^126 + y^121 + 1. The hash key powers are therefore stored pre-multiplied by y ("H·y", a one-bit
// shift with conditional reduction, done once per key), and each product is reduced by a Montgomery step that divides
// by y^128: two carry-less multiplications of the low 64-bit half by 0xC200000000000000 and two qword swaps. The
// stored powers are y·φ(H^i); multiplying two of them and reducing gives y·φ(H^(i+j)), which is how the table is built.
//
// Constant time: AES-NI and PCLMULQDQ take data-independent time, there are no table lookups indexed by secrets and no
// branches on secret data (the key schedule uses AESKEYGENASSIST for SubWord; the hash key shift is branch-free).
// Lengths and nonces are public and may steer control flow.
//
// Key material (round keys, hash key powers) is computed once in the constructor, on the control path; Dispose zeroes
// it. One instance is safe for concurrent use by any number of threads: the per-message state lives in registers and
// on the stack. (CipherLanes still hands out one instance per lane so that Dispose never races with a call.)

/// <summary>
/// AES-GCM with x86 intrinsics (AES-NI, PCLMULQDQ, and VPCLMULQDQ on AVX-512): 96-bit nonce, 16-byte tag, any AAD
/// length, in place or between disjoint buffers. Allocation-free per message. See the file header for the method.
/// </summary>
/// <remarks>Thread-safe for Encrypt/Decrypt; <see cref="Dispose"/> must not race with them (CipherLanes ensures that).</remarks>
[SkipLocalsInit] // every local and stackalloc here is written before it is read; no prolog zeroing per message
internal sealed class AesGcmIntrinsics : GcmEngine
{
    public const int NonceSize = 12;
    public const int TagSize = 16;

    private const int MaxRounds = 14;
    private const int PowerCount = 16; // H^1..H^16 (the tail uses up to H^10, the main loop H^8..H^1)

    [InlineArray(MaxRounds + 1)]
    private struct RoundKeyArray
    {
        private Vector128<byte> _element;
    }

    // Four zero entries after H^1: the wide tail loads runs of four powers that may reach past H^1 (for lanes that
    // hold no block and are zero themselves).
    [InlineArray(PowerCount + 4)]
    private struct PowerArray
    {
        private Vector128<ulong> _element;
    }

    [InlineArray(8)]
    private struct BlockArray
    {
        private Vector128<byte> _element;
    }

    private interface IDirection
    {
        static abstract bool Encrypting { get; }
    }

    private struct Sealing : IDirection
    {
        public static bool Encrypting => true;
    }

    private struct Opening : IDirection
    {
        public static bool Encrypting => false;
    }

    private RoundKeyArray _roundKeys;
    private PowerArray _powers; // descending: _powers[PowerCount − i] = y·φ(H^i), so H^8..H^5 and H^4..H^1 are contiguous
    private readonly int _rounds;
    private readonly bool _wide;

    /// <summary>AES-NI, PCLMULQDQ and SSSE3 (byte shuffles): what this engine needs at the least.</summary>
    public static bool IsSupported => AesNi.IsSupported && Pclmulqdq.IsSupported && Ssse3.IsSupported;

    /// <summary>AVX-512BW and VPCLMULQDQ on 512-bit registers: GHASH multiplies four blocks per instruction.</summary>
    public static bool IsWideSupported => IsSupported && Pclmulqdq.V512.IsSupported && Avx512BW.IsSupported;

    /// <summary>Whether this instance hashes with 512-bit VPCLMULQDQ (false: 128-bit PCLMULQDQ).</summary>
    public bool UsesWideGhash => _wide;

    /// <summary>Builds the key schedule and the hash key powers (control path).</summary>
    /// <param name="key">16, 24 or 32 bytes.</param>
    /// <param name="wide">Use 512-bit GHASH when available (default). False forces the 128-bit path (tests use both).</param>
    public AesGcmIntrinsics(ReadOnlySpan<byte> key, bool wide = true)
    {
        if (!IsSupported)
            throw new PlatformNotSupportedException("AES-NI, PCLMULQDQ and SSSE3 are required.");
        if (key.Length is not (16 or 24 or 32))
            throw new ArgumentException("AES key must be 16, 24 or 32 bytes.", nameof(key));
        _wide = wide && IsWideSupported;
        _rounds = key.Length / 4 + 6;
        ExpandKey(key);

        // H = E(K, 0^128); the table holds y·φ(H^i) for i = 1..16.
        Vector128<byte> h = EncryptBlock(Vector128<byte>.Zero, ref _roundKeys[0], _rounds);
        Vector128<ulong> r = Ssse3.Shuffle(h, ByteReverseMask).AsUInt64();
        UInt128 reflected = new(r.GetElement(1), r.GetElement(0));
        // Multiply by y modulo the reflected polynomial, without a branch on the secret top bit.
        UInt128 top = reflected >> 127;
        UInt128 poly = new(0xC200000000000000UL, 1UL);
        UInt128 hy = (reflected << 1) ^ (poly & (UInt128.Zero - top));
        Vector128<ulong> h1 = Vector128.Create((ulong)hy, (ulong)(hy >> 64));
        ref Vector128<ulong> powers = ref _powers[0];
        Unsafe.Add(ref powers, PowerCount - 1) = h1;
        Vector128<ulong> hi = h1;
        for (int i = 2; i <= PowerCount; i++)
        {
            hi = Multiply(hi, h1);
            Unsafe.Add(ref powers, PowerCount - i) = hi;
        }
        h = default;
        r = default;
        reflected = default;
        hy = default;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // GcmEngine (ESP: in place, ciphertext followed by the tag)

    /// <inheritdoc/>
    public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag)
    {
        if (nonce.Length != NonceSize || tag.Length != TagSize)
            ThrowBadSizes();
        ref byte d = ref MemoryMarshal.GetReference(data);
        Vector128<byte> t = Crypt<Sealing>(nonce, aad, ref d, ref d, (nuint)data.Length);
        t.StoreUnsafe(ref MemoryMarshal.GetReference(tag));
    }

    /// <inheritdoc/>
    public override bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag)
    {
        if (nonce.Length != NonceSize || tag.Length != TagSize)
            ThrowBadSizes();
        ref byte d = ref MemoryMarshal.GetReference(data);
        Vector128<byte> t = Crypt<Opening>(nonce, aad, ref d, ref d, (nuint)data.Length);
        return CheckTag(t, tag, data);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Raw AES-GCM, shaped like System.Security.Cryptography.AesGcm (tests, and anything that is not ESP)

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length; the same span,
    /// or disjoint) and writes the 16-byte tag.</summary>
    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData = default)
    {
        CheckArguments(nonce, plaintext, ciphertext, tag.Length);
        Vector128<byte> t = Crypt<Sealing>(nonce, associatedData, ref MemoryMarshal.GetReference(plaintext),
            ref MemoryMarshal.GetReference(ciphertext), (nuint)plaintext.Length);
        t.StoreUnsafe(ref MemoryMarshal.GetReference(tag));
    }

    /// <summary>Authenticates and decrypts <paramref name="ciphertext"/> into <paramref name="plaintext"/> (same length;
    /// the same span, or disjoint). False if the tag does not verify; <paramref name="plaintext"/> is then zeroed.</summary>
    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        CheckArguments(nonce, ciphertext, plaintext, tag.Length);
        Vector128<byte> t = Crypt<Opening>(nonce, associatedData, ref MemoryMarshal.GetReference(ciphertext),
            ref MemoryMarshal.GetReference(plaintext), (nuint)ciphertext.Length);
        return CheckTag(t, tag, plaintext);
    }

    /// <summary>Zeroes the round keys and hash key powers. Not safe while another thread encrypts with this instance.</summary>
    public override void Dispose()
    {
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes((Span<Vector128<byte>>)_roundKeys));
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes((Span<Vector128<ulong>>)_powers));
    }

    /// <summary>
    /// Constant-time tag check: XOR the computed and the received tag and test the 128-bit result for zero in one
    /// vector instruction (no early exit, no data-dependent branch or memory access before the single yes/no).
    /// CryptographicOperations.FixedTimeEquals gives the same guarantee but is compiled without optimisation
    /// (MethodImplOptions.NoOptimization, so the JIT cannot add an early exit) and costs ≈ 60 ns for 16 bytes on the
    /// project VM, about as much as decrypting a whole 64-byte frame here; this comparison costs a few cycles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool CheckTag(Vector128<byte> computed, ReadOnlySpan<byte> tag, Span<byte> output)
    {
        Vector128<byte> difference = computed ^ Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(tag));
        if (difference == Vector128<byte>.Zero)
            return true;
        // Do not release unauthenticated plaintext (what AesGcm does too).
        CryptographicOperations.ZeroMemory(output);
        return false;
    }

    private static void CheckArguments(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, ReadOnlySpan<byte> output, int tagLength)
    {
        if (nonce.Length != NonceSize || tagLength != TagSize || input.Length != output.Length)
            ThrowBadSizes();
        if (input.Overlaps(output, out int offset) && offset != 0)
            throw new ArgumentException("Input and output must be the same span or must not overlap.", nameof(output));
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadSizes() =>
        throw new ArgumentException($"AES-GCM here takes a {NonceSize}-byte nonce, a {TagSize}-byte tag and equal input and output lengths.");

    // ---------------------------------------------------------------------------------------------------------------
    // The message loop

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Vector128<byte> Crypt<TDirection>(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, ref byte src, ref byte dst, nuint length)
        where TDirection : struct, IDirection
    {
        ref Vector128<byte> rk = ref _roundKeys[0];
        ref Vector128<ulong> powers = ref _powers[0];
        int rounds = _rounds;
        bool wide = _wide;
        Vector128<byte> swap = CounterSwapMask;
        Vector128<byte> reverse = ByteReverseMask;

        // J0 = nonce ‖ 00 00 00 01; E(K, J0) masks the tag. Its AES chain overlaps with the work below.
        ref byte n = ref MemoryMarshal.GetReference(nonce);
        Vector128<byte> j0 = Vector128.Create(
            Unsafe.ReadUnaligned<ulong>(ref n),
            Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref n, 8)) | (0x01000000UL << 32)).AsByte();
        Vector128<byte> tagMask = EncryptBlock(j0, ref rk, rounds);

        // The counter with its last 32-bit word byte-swapped into a little-endian lane, so it can be added to.
        Vector128<uint> counter = Ssse3.Shuffle(j0, swap).AsUInt32() + Vector128.Create(0u, 0u, 0u, 1u);
        Vector128<uint> one = Vector128.Create(0u, 0u, 0u, 1u);

        // Short messages hash a single-block AAD in the final batch; otherwise it is hashed first.
        bool aadInTail = (uint)(aad.Length - 1) < 16u && length < 128;
        Vector128<ulong> x = Vector128<ulong>.Zero;
        if (!aadInTail && aad.Length != 0)
            x = HashAad(aad, ref powers, reverse);

        nuint offset = 0;
        if (length >= 128)
        {
            do
            {
                if (!TDirection.Encrypting)
                    x = wide ? Hash8Wide(x, ref Unsafe.Add(ref src, offset), ref powers) : Hash8(x, ref Unsafe.Add(ref src, offset), ref powers, reverse);

                // Counters by chained adds of one constant: the 8 blocks, the round key, the counter and two
                // constants must fit the 16 registers VEX-encoded AESENC can address (no spills in the rounds).
                Vector128<byte> b0 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b1 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b2 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b3 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b4 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b5 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b6 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> b7 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;

                Vector128<byte> k = rk;
                b0 ^= k; b1 ^= k; b2 ^= k; b3 ^= k; b4 ^= k; b5 ^= k; b6 ^= k; b7 ^= k;
                for (int r = 1; r < rounds; r++)
                {
                    k = Unsafe.Add(ref rk, r);
                    b0 = AesNi.Encrypt(b0, k);
                    b1 = AesNi.Encrypt(b1, k);
                    b2 = AesNi.Encrypt(b2, k);
                    b3 = AesNi.Encrypt(b3, k);
                    b4 = AesNi.Encrypt(b4, k);
                    b5 = AesNi.Encrypt(b5, k);
                    b6 = AesNi.Encrypt(b6, k);
                    b7 = AesNi.Encrypt(b7, k);
                }
                k = Unsafe.Add(ref rk, rounds);
                ref byte s = ref Unsafe.Add(ref src, offset);
                ref byte d = ref Unsafe.Add(ref dst, offset);
                (AesNi.EncryptLast(b0, k) ^ Vector128.LoadUnsafe(ref s)).StoreUnsafe(ref d);
                (AesNi.EncryptLast(b1, k) ^ Vector128.LoadUnsafe(ref s, 16)).StoreUnsafe(ref d, 16);
                (AesNi.EncryptLast(b2, k) ^ Vector128.LoadUnsafe(ref s, 32)).StoreUnsafe(ref d, 32);
                (AesNi.EncryptLast(b3, k) ^ Vector128.LoadUnsafe(ref s, 48)).StoreUnsafe(ref d, 48);
                (AesNi.EncryptLast(b4, k) ^ Vector128.LoadUnsafe(ref s, 64)).StoreUnsafe(ref d, 64);
                (AesNi.EncryptLast(b5, k) ^ Vector128.LoadUnsafe(ref s, 80)).StoreUnsafe(ref d, 80);
                (AesNi.EncryptLast(b6, k) ^ Vector128.LoadUnsafe(ref s, 96)).StoreUnsafe(ref d, 96);
                (AesNi.EncryptLast(b7, k) ^ Vector128.LoadUnsafe(ref s, 112)).StoreUnsafe(ref d, 112);

                // Encryption hashes the previous iteration's ciphertext (already stored) while this one's AES runs.
                if (TDirection.Encrypting && offset != 0)
                    x = wide ? Hash8Wide(x, ref Unsafe.Add(ref dst, offset - 128), ref powers) : Hash8(x, ref Unsafe.Add(ref dst, offset - 128), ref powers, reverse);
                offset += 128;
            }
            while (length - offset >= 128);

            if (TDirection.Encrypting)
                x = wide ? Hash8Wide(x, ref Unsafe.Add(ref dst, offset - 128), ref powers) : Hash8(x, ref Unsafe.Add(ref dst, offset - 128), ref powers, reverse);
        }

        // Tail (fewer than 8 blocks left, the last one possibly partial) and the final GHASH batch.
        x = wide
            ? FinishWide<TDirection>(ref rk, rounds, ref powers, counter, aad, aadInTail, ref Unsafe.Add(ref src, offset), ref Unsafe.Add(ref dst, offset), length - offset, length, x)
            : FinishNarrow<TDirection>(ref rk, rounds, ref powers, counter, aad, aadInTail, ref Unsafe.Add(ref src, offset), ref Unsafe.Add(ref dst, offset), length - offset, length, x);
        return Ssse3.Shuffle(x.AsByte(), reverse) ^ tagMask;
    }

    /// <summary>
    /// The tail (at most 127 bytes at <paramref name="ts"/>/<paramref name="td"/>) and the final GHASH batch
    /// [AAD block] ‖ tail blocks ‖ length block with 128-bit PCLMULQDQ and SSE only (what runs without AVX-512; the
    /// tests force it on AVX-512 machines too). Returns the GHASH value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<ulong> FinishNarrow<TDirection>(ref Vector128<byte> rk, int rounds, ref Vector128<ulong> powers, Vector128<uint> counter,
        ReadOnlySpan<byte> aad, bool aadInTail, ref byte ts, ref byte td, nuint remaining, nuint length, Vector128<ulong> x)
        where TDirection : struct, IDirection
    {
        Vector128<byte> swap = CounterSwapMask;
        Vector128<byte> reverse = ByteReverseMask;
        Vector128<uint> one = Vector128.Create(0u, 0u, 0u, 1u);
        int full = (int)(remaining >> 4);
        int partial = (int)(remaining & 15);
        int blocks = full + (partial != 0 ? 1 : 0);

        BlockArray keystream = default;
        if (blocks != 0)
        {
            Vector128<byte> c0 = Ssse3.Shuffle(counter.AsByte(), swap);
            Vector128<byte> c1 = Ssse3.Shuffle((counter + one).AsByte(), swap);
            Vector128<byte> c2 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 2u)).AsByte(), swap);
            Vector128<byte> c3 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 3u)).AsByte(), swap);
            if (blocks <= 4)
            {
                Encrypt4(ref rk, rounds, ref c0, ref c1, ref c2, ref c3);
            }
            else
            {
                Vector128<byte> c4 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 4u)).AsByte(), swap);
                Vector128<byte> c5 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 5u)).AsByte(), swap);
                Vector128<byte> c6 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 6u)).AsByte(), swap);
                Vector128<byte> c7 = Ssse3.Shuffle((counter + Vector128.Create(0u, 0u, 0u, 7u)).AsByte(), swap);
                Encrypt8(ref rk, rounds, ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7);
                keystream[4] = c4;
                keystream[5] = c5;
                keystream[6] = c6;
                keystream[7] = c7;
            }
            keystream[0] = c0;
            keystream[1] = c1;
            keystream[2] = c2;
            keystream[3] = c3;
        }

        // One aggregated batch: [AAD block] ‖ remaining blocks ‖ length block, multiplied by H^batch..H^1.
        int batch = (aadInTail ? 1 : 0) + blocks + 1;
        ref Vector128<ulong> h = ref Unsafe.Add(ref powers, PowerCount - batch);
        Vector128<ulong> lo = Vector128<ulong>.Zero, mid = Vector128<ulong>.Zero, hi = Vector128<ulong>.Zero;
        if (aadInTail)
        {
            Vector128<byte> a = LoadPartialCopy(ref MemoryMarshal.GetReference(aad), aad.Length);
            MultiplyAccumulate(Ssse3.Shuffle(a, reverse).AsUInt64() ^ x, h, ref lo, ref mid, ref hi);
            h = ref Unsafe.Add(ref h, 1);
            x = Vector128<ulong>.Zero;
        }
        for (int j = 0; j < full; j++)
        {
            Vector128<byte> input = Vector128.LoadUnsafe(ref ts, (nuint)(j * 16));
            Vector128<byte> output = input ^ keystream[j];
            output.StoreUnsafe(ref td, (nuint)(j * 16));
            Vector128<byte> c = TDirection.Encrypting ? output : input;
            MultiplyAccumulate(Ssse3.Shuffle(c, reverse).AsUInt64() ^ x, h, ref lo, ref mid, ref hi);
            h = ref Unsafe.Add(ref h, 1);
            x = Vector128<ulong>.Zero;
        }
        if (partial != 0)
        {
            Vector128<byte> input = LoadPartialCopy(ref Unsafe.Add(ref ts, full * 16), partial);
            Vector128<byte> output = input ^ keystream[full];
            StorePartialCopy(ref Unsafe.Add(ref td, full * 16), output, partial);
            // GHASH pads the last ciphertext block with zeros: mask off the keystream bytes past the end.
            Vector128<byte> c = TDirection.Encrypting ? output & PrefixMask(partial) : input;
            MultiplyAccumulate(Ssse3.Shuffle(c, reverse).AsUInt64() ^ x, h, ref lo, ref mid, ref hi);
            h = ref Unsafe.Add(ref h, 1);
            x = Vector128<ulong>.Zero;
        }
        // Length block: bit lengths of AAD and ciphertext, each 64-bit big-endian; reflected, the ciphertext's is the low half.
        Vector128<ulong> lengths = Vector128.Create((ulong)length << 3, (ulong)aad.Length << 3);
        MultiplyAccumulate(lengths ^ x, h, ref lo, ref mid, ref hi);
        return Reduce(lo, mid, hi);
    }

    /// <summary>
    /// Same as <see cref="FinishNarrow"/> with AVX-512: the tail is loaded, XORed and stored as two 64-byte vectors
    /// with byte masks (no copies for the partial block), and its blocks are multiplied four per VPCLMULQDQ by the
    /// matching run of hash key powers (lanes past the end are zero, so their products vanish).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe Vector128<ulong> FinishWide<TDirection>(ref Vector128<byte> rk, int rounds, ref Vector128<ulong> powers, Vector128<uint> counter,
        ReadOnlySpan<byte> aad, bool aadInTail, ref byte ts, ref byte td, nuint remaining, nuint length, Vector128<ulong> x)
        where TDirection : struct, IDirection
    {
        Vector128<byte> swap = CounterSwapMask;
        Vector128<byte> reverse = ByteReverseMask;
        Vector128<uint> one = Vector128.Create(0u, 0u, 0u, 1u);
        int rem = (int)remaining;
        int blocks = (rem + 15) >> 4;
        Vector128<ulong> lo = Vector128<ulong>.Zero, mid = Vector128<ulong>.Zero, hi = Vector128<ulong>.Zero;

        if (blocks != 0)
        {
            Vector128<byte> c0 = Ssse3.Shuffle(counter.AsByte(), swap);
            counter += one;
            Vector128<byte> c1 = Ssse3.Shuffle(counter.AsByte(), swap);
            counter += one;
            Vector128<byte> c2 = Ssse3.Shuffle(counter.AsByte(), swap);
            counter += one;
            Vector128<byte> c3 = Ssse3.Shuffle(counter.AsByte(), swap);
            Vector512<byte> ks0, ks1 = Vector512<byte>.Zero;
            if (blocks <= 4)
            {
                Encrypt4(ref rk, rounds, ref c0, ref c1, ref c2, ref c3);
            }
            else
            {
                counter += one;
                Vector128<byte> c4 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> c5 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> c6 = Ssse3.Shuffle(counter.AsByte(), swap);
                counter += one;
                Vector128<byte> c7 = Ssse3.Shuffle(counter.AsByte(), swap);
                Encrypt8(ref rk, rounds, ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7);
                ks1 = Vector512.Create(Vector256.Create(c4, c5), Vector256.Create(c6, c7));
            }
            ks0 = Vector512.Create(Vector256.Create(c0, c1), Vector256.Create(c2, c3));

            Vector512<byte> reverse512 = Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(ByteReverse512));
            // Block j of the tail is multiplied by H^(blocks + 1 − j): a descending run of the table starting at H^(blocks+1).
            ref ulong run = ref Unsafe.As<Vector128<ulong>, ulong>(ref Unsafe.Add(ref powers, PowerCount - 1 - blocks));
            Vector512<ulong> lo4, mid4, hi4;
            fixed (byte* ps = &ts, pd = &td)
            {
                Vector512<byte> m0 = PrefixMask512(Math.Min(rem, 64));
                Vector512<byte> in0 = Avx512BW.MaskLoad(ps, m0, Vector512<byte>.Zero);
                Vector512<byte> out0 = in0 ^ ks0;
                Avx512BW.MaskStore(pd, m0, out0);
                Vector512<byte> ct0 = TDirection.Encrypting ? out0 & m0 : in0;
                // The running hash enters with the first block of the batch.
                Vector512<ulong> g0 = Avx512BW.Shuffle(ct0, reverse512).AsUInt64() ^ x.ToVector256().ToVector512();
                Vector512<ulong> p0 = Vector512.LoadUnsafe(ref run);
                lo4 = Pclmulqdq.V512.CarrylessMultiply(g0, p0, 0x00);
                hi4 = Pclmulqdq.V512.CarrylessMultiply(g0, p0, 0x11);
                mid4 = Pclmulqdq.V512.CarrylessMultiply(g0, p0, 0x01) ^ Pclmulqdq.V512.CarrylessMultiply(g0, p0, 0x10);
                if (blocks > 4)
                {
                    Vector512<byte> m1 = PrefixMask512(rem - 64);
                    Vector512<byte> in1 = Avx512BW.MaskLoad(ps + 64, m1, Vector512<byte>.Zero);
                    Vector512<byte> out1 = in1 ^ ks1;
                    Avx512BW.MaskStore(pd + 64, m1, out1);
                    Vector512<byte> ct1 = TDirection.Encrypting ? out1 & m1 : in1;
                    Vector512<ulong> g1 = Avx512BW.Shuffle(ct1, reverse512).AsUInt64();
                    Vector512<ulong> p1 = Vector512.LoadUnsafe(ref run, 8);
                    lo4 ^= Pclmulqdq.V512.CarrylessMultiply(g1, p1, 0x00);
                    hi4 ^= Pclmulqdq.V512.CarrylessMultiply(g1, p1, 0x11);
                    mid4 ^= Pclmulqdq.V512.CarrylessMultiply(g1, p1, 0x01) ^ Pclmulqdq.V512.CarrylessMultiply(g1, p1, 0x10);
                }
            }
            Vector256<ulong> lo2 = lo4.GetLower() ^ lo4.GetUpper();
            Vector256<ulong> mid2 = mid4.GetLower() ^ mid4.GetUpper();
            Vector256<ulong> hi2 = hi4.GetLower() ^ hi4.GetUpper();
            lo = lo2.GetLower() ^ lo2.GetUpper();
            mid = mid2.GetLower() ^ mid2.GetUpper();
            hi = hi2.GetLower() ^ hi2.GetUpper();
            x = Vector128<ulong>.Zero;
        }
        if (aadInTail)
        {
            // Short message: the AAD block opens the batch (the running hash is zero here).
            Vector128<byte> a = LoadPartial(ref MemoryMarshal.GetReference(aad), aad.Length);
            MultiplyAccumulate(Ssse3.Shuffle(a, reverse).AsUInt64(), Unsafe.Add(ref powers, PowerCount - 2 - blocks), ref lo, ref mid, ref hi);
        }
        Vector128<ulong> lengths = Vector128.Create((ulong)length << 3, (ulong)aad.Length << 3);
        MultiplyAccumulate(lengths ^ x, Unsafe.Add(ref powers, PowerCount - 1), ref lo, ref mid, ref hi);
        return Reduce(lo, mid, hi);
    }

    /// <summary>GHASH of the AAD on its own (long messages or AAD longer than a block): block by block, from zero.</summary>
    private static Vector128<ulong> HashAad(ReadOnlySpan<byte> aad, ref Vector128<ulong> powers, Vector128<byte> reverse)
    {
        Vector128<ulong> h1 = Unsafe.Add(ref powers, PowerCount - 1);
        Vector128<ulong> x = Vector128<ulong>.Zero;
        ref byte a = ref MemoryMarshal.GetReference(aad);
        int i = 0;
        for (; i + 16 <= aad.Length; i += 16)
            x = Multiply(Ssse3.Shuffle(Vector128.LoadUnsafe(ref a, (nuint)i), reverse).AsUInt64() ^ x, h1);
        if (i < aad.Length)
            x = Multiply(Ssse3.Shuffle(LoadPartial(ref Unsafe.Add(ref a, i), aad.Length - i), reverse).AsUInt64() ^ x, h1);
        return x;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // GHASH primitives (reflected representation, powers pre-multiplied by y; see the file header)

    /// <summary>(x ⊕ B0)·H^8 ⊕ B1·H^7 ⊕ … ⊕ B7·H for 8 blocks at <paramref name="blocks"/>, with 128-bit PCLMULQDQ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Hash8(Vector128<ulong> x, ref byte blocks, ref Vector128<ulong> powers, Vector128<byte> reverse)
    {
        ref Vector128<ulong> h = ref Unsafe.Add(ref powers, PowerCount - 8);
        Vector128<ulong> lo = Vector128<ulong>.Zero, mid = Vector128<ulong>.Zero, hi = Vector128<ulong>.Zero;
        MultiplyAccumulate(Ssse3.Shuffle(Vector128.LoadUnsafe(ref blocks), reverse).AsUInt64() ^ x, h, ref lo, ref mid, ref hi);
        for (int i = 1; i < 8; i++)
            MultiplyAccumulate(Ssse3.Shuffle(Vector128.LoadUnsafe(ref blocks, (nuint)(i * 16)), reverse).AsUInt64(), Unsafe.Add(ref h, i), ref lo, ref mid, ref hi);
        return Reduce(lo, mid, hi);
    }

    /// <summary>Same as <see cref="Hash8"/>, four blocks per VPCLMULQDQ (AVX-512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Hash8Wide(Vector128<ulong> x, ref byte blocks, ref Vector128<ulong> powers)
    {
        Vector512<byte> reverse = Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(ByteReverse512));
        Vector512<ulong> a = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref blocks), reverse).AsUInt64() ^ x.ToVector256().ToVector512();
        Vector512<ulong> b = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref blocks, 64), reverse).AsUInt64();
        ref ulong p = ref Unsafe.As<Vector128<ulong>, ulong>(ref Unsafe.Add(ref powers, PowerCount - 8));
        Vector512<ulong> ha = Vector512.LoadUnsafe(ref p);      // H^8 H^7 H^6 H^5
        Vector512<ulong> hb = Vector512.LoadUnsafe(ref p, 8);   // H^4 H^3 H^2 H^1
        Vector512<ulong> lo = Pclmulqdq.V512.CarrylessMultiply(a, ha, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(b, hb, 0x00);
        Vector512<ulong> hi = Pclmulqdq.V512.CarrylessMultiply(a, ha, 0x11) ^ Pclmulqdq.V512.CarrylessMultiply(b, hb, 0x11);
        Vector512<ulong> mid = Pclmulqdq.V512.CarrylessMultiply(a, ha, 0x01) ^ Pclmulqdq.V512.CarrylessMultiply(a, ha, 0x10)
            ^ Pclmulqdq.V512.CarrylessMultiply(b, hb, 0x01) ^ Pclmulqdq.V512.CarrylessMultiply(b, hb, 0x10);
        lo ^= Avx512BW.ShiftLeftLogical128BitLane(mid.AsByte(), 8).AsUInt64();
        hi ^= Avx512BW.ShiftRightLogical128BitLane(mid.AsByte(), 8).AsUInt64();
        Vector256<ulong> lo2 = lo.GetLower() ^ lo.GetUpper();
        Vector256<ulong> hi2 = hi.GetLower() ^ hi.GetUpper();
        return ReduceFolded(lo2.GetLower() ^ lo2.GetUpper(), hi2.GetLower() ^ hi2.GetUpper());
    }

    /// <summary>Adds the unreduced 256-bit product x·h to (lo, mid, hi) (schoolbook: four PCLMULQDQs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAccumulate(Vector128<ulong> x, Vector128<ulong> h, ref Vector128<ulong> lo, ref Vector128<ulong> mid, ref Vector128<ulong> hi)
    {
        lo ^= Pclmulqdq.CarrylessMultiply(x, h, 0x00);
        hi ^= Pclmulqdq.CarrylessMultiply(x, h, 0x11);
        mid ^= Pclmulqdq.CarrylessMultiply(x, h, 0x01) ^ Pclmulqdq.CarrylessMultiply(x, h, 0x10);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Multiply(Vector128<ulong> x, Vector128<ulong> h)
    {
        Vector128<ulong> lo = Vector128<ulong>.Zero, mid = Vector128<ulong>.Zero, hi = Vector128<ulong>.Zero;
        MultiplyAccumulate(x, h, ref lo, ref mid, ref hi);
        return Reduce(lo, mid, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Reduce(Vector128<ulong> lo, Vector128<ulong> mid, Vector128<ulong> hi) =>
        ReduceFolded(lo ^ Sse2.ShiftLeftLogical128BitLane(mid, 8), hi ^ Sse2.ShiftRightLogical128BitLane(mid, 8));

    /// <summary>Montgomery reduction of the 256-bit value hi:lo: returns (hi:lo)·y^-128 modulo the reflected GCM polynomial.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> ReduceFolded(Vector128<ulong> lo, Vector128<ulong> hi)
    {
        Vector128<ulong> poly = Vector128.CreateScalar(0xC200000000000000UL);
        // Each step cancels the low 64 bits by adding a multiple of the polynomial and moves down by 64 bits.
        lo = Sse2.Shuffle(lo.AsUInt32(), 0x4E).AsUInt64() ^ Pclmulqdq.CarrylessMultiply(lo, poly, 0x00);
        lo = Sse2.Shuffle(lo.AsUInt32(), 0x4E).AsUInt64() ^ Pclmulqdq.CarrylessMultiply(lo, poly, 0x00);
        return lo ^ hi;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Partial blocks (1..15 bytes)

    /// <summary>Loads <paramref name="count"/> (1..16) bytes into the low bytes of a block; the rest are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector128<byte> LoadPartial(ref byte source, int count)
    {
        if (!Avx512BW.VL.IsSupported)
            return LoadPartialCopy(ref source, count);
        // Masked load: masked-off bytes are neither read nor faulted on, so reading at the end of a buffer is safe.
        fixed (byte* p = &source)
            return Avx512BW.VL.MaskLoad(p, PrefixMask(count), Vector128<byte>.Zero);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> LoadPartialCopy(ref byte source, int count)
    {
        Vector128<byte> block = Vector128<byte>.Zero;
        Unsafe.CopyBlockUnaligned(ref Unsafe.As<Vector128<byte>, byte>(ref block), ref source, (uint)count);
        return block;
    }

    /// <summary>Stores the low <paramref name="count"/> (1..15) bytes of <paramref name="block"/>; nothing beyond.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePartialCopy(ref byte destination, Vector128<byte> block, int count) =>
        Unsafe.CopyBlockUnaligned(ref destination, ref Unsafe.As<Vector128<byte>, byte>(ref block), (uint)count);

    /// <summary>0xFF in the first <paramref name="count"/> (0..64) bytes, 0 in the others.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> PrefixMask512(int count) =>
        Vector512.LessThan(Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(ByteIndex512)), Vector512.Create((byte)count));

    /// <summary>0xFF in the first <paramref name="count"/> bytes, 0 in the others.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> PrefixMask(int count) => Vector128.LessThan(ByteIndex, Vector128.Create((byte)count));

    // ---------------------------------------------------------------------------------------------------------------
    // AES

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> EncryptBlock(Vector128<byte> block, ref Vector128<byte> rk, int rounds)
    {
        block ^= rk;
        for (int r = 1; r < rounds; r++)
            block = AesNi.Encrypt(block, Unsafe.Add(ref rk, r));
        return AesNi.EncryptLast(block, Unsafe.Add(ref rk, rounds));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Encrypt4(ref Vector128<byte> rk, int rounds, ref Vector128<byte> c0, ref Vector128<byte> c1, ref Vector128<byte> c2, ref Vector128<byte> c3)
    {
        Vector128<byte> k = rk;
        Vector128<byte> b0 = c0 ^ k, b1 = c1 ^ k, b2 = c2 ^ k, b3 = c3 ^ k;
        for (int r = 1; r < rounds; r++)
        {
            k = Unsafe.Add(ref rk, r);
            b0 = AesNi.Encrypt(b0, k);
            b1 = AesNi.Encrypt(b1, k);
            b2 = AesNi.Encrypt(b2, k);
            b3 = AesNi.Encrypt(b3, k);
        }
        k = Unsafe.Add(ref rk, rounds);
        c0 = AesNi.EncryptLast(b0, k);
        c1 = AesNi.EncryptLast(b1, k);
        c2 = AesNi.EncryptLast(b2, k);
        c3 = AesNi.EncryptLast(b3, k);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Encrypt8(ref Vector128<byte> rk, int rounds, ref Vector128<byte> c0, ref Vector128<byte> c1, ref Vector128<byte> c2, ref Vector128<byte> c3,
        ref Vector128<byte> c4, ref Vector128<byte> c5, ref Vector128<byte> c6, ref Vector128<byte> c7)
    {
        Vector128<byte> k = rk;
        Vector128<byte> b0 = c0 ^ k, b1 = c1 ^ k, b2 = c2 ^ k, b3 = c3 ^ k, b4 = c4 ^ k, b5 = c5 ^ k, b6 = c6 ^ k, b7 = c7 ^ k;
        for (int r = 1; r < rounds; r++)
        {
            k = Unsafe.Add(ref rk, r);
            b0 = AesNi.Encrypt(b0, k);
            b1 = AesNi.Encrypt(b1, k);
            b2 = AesNi.Encrypt(b2, k);
            b3 = AesNi.Encrypt(b3, k);
            b4 = AesNi.Encrypt(b4, k);
            b5 = AesNi.Encrypt(b5, k);
            b6 = AesNi.Encrypt(b6, k);
            b7 = AesNi.Encrypt(b7, k);
        }
        k = Unsafe.Add(ref rk, rounds);
        c0 = AesNi.EncryptLast(b0, k);
        c1 = AesNi.EncryptLast(b1, k);
        c2 = AesNi.EncryptLast(b2, k);
        c3 = AesNi.EncryptLast(b3, k);
        c4 = AesNi.EncryptLast(b4, k);
        c5 = AesNi.EncryptLast(b5, k);
        c6 = AesNi.EncryptLast(b6, k);
        c7 = AesNi.EncryptLast(b7, k);
    }

    /// <summary>FIPS-197 key expansion, word by word; SubWord comes from AESKEYGENASSIST (constant time, no S-box table).</summary>
    private void ExpandKey(ReadOnlySpan<byte> key)
    {
        int nk = key.Length / 4;
        int total = 4 * (_rounds + 1);
        Span<uint> w = stackalloc uint[4 * (MaxRounds + 1)];
        for (int i = 0; i < nk; i++)
            w[i] = BinaryPrimitives.ReadUInt32LittleEndian(key[(4 * i)..]);
        uint rcon = 1;
        for (int i = nk; i < total; i++)
        {
            uint t = w[i - 1];
            if (i % nk == 0)
            {
                // RotWord then SubWord (they commute); in little-endian words RotWord is a right rotation by 8.
                t = BitOperations.RotateRight(SubWord(t), 8) ^ rcon;
                rcon = (rcon << 1) ^ ((rcon >> 7) * 0x11Bu);
            }
            else if (nk > 6 && i % nk == 4)
            {
                t = SubWord(t);
            }
            w[i] = w[i - nk] ^ t;
        }
        for (int r = 0; r <= _rounds; r++)
            _roundKeys[r] = Vector128.Create(w[4 * r], w[4 * r + 1], w[4 * r + 2], w[4 * r + 3]).AsByte();
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(w));
    }

    // AESKEYGENASSIST puts SubWord(source word 1) in result word 0.
    private static uint SubWord(uint word) => AesNi.KeygenAssist(Vector128.Create(0u, word, 0u, 0u).AsByte(), 0).AsUInt32().ToScalar();

    // ---------------------------------------------------------------------------------------------------------------
    // Constants

    /// <summary>PSHUFB mask reversing the 16 bytes of a block.</summary>
    private static Vector128<byte> ByteReverseMask => Vector128.Create((byte)15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);

    /// <summary>PSHUFB mask byte-swapping the last 32-bit word only (the GCM block counter).</summary>
    private static Vector128<byte> CounterSwapMask => Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12);

    private static Vector128<byte> ByteIndex => Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    private static ReadOnlySpan<byte> ByteIndex512 =>
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    ];

    private static ReadOnlySpan<byte> ByteReverse512 =>
    [
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    ];
}
