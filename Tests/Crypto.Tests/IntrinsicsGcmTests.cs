using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;

namespace UserOverlay.Crypto.Tests;

/// <summary>
/// AES-GCM test cases 1–4, 7–10 and 13–16 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B
/// (the NIST submission; the cases with a 96-bit IV — 5/6, 11/12 and 17/18 use 64- and 480-bit IVs, which ESP never
/// does and the intrinsics engine does not take). Copied as published: key, plaintext, AAD, IV, ciphertext, tag.
/// </summary>
public sealed record GcmSpecVector(int Case, string Key, string Plaintext, string Aad, string Iv, string Ciphertext, string Tag)
{
    public override string ToString() => $"test case {Case} (AES-{Key.Length * 4})";

    private const string K3 = "feffe9928665731c6d6a8f9467308308";
    private const string P3 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    private const string P4 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    private const string A4 = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    private const string Iv3 = "cafebabefacedbaddecaf888";
    private const string Zero96 = "000000000000000000000000";
    private const string Zero128 = "00000000000000000000000000000000";

    public static readonly GcmSpecVector[] All =
    [
        new(1, Zero128, "", "", Zero96, "", "58e2fccefa7e3061367f1d57a4e7455a"),
        new(2, Zero128, Zero128, "", Zero96, "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
        new(3, K3, P3, "", Iv3,
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
            "4d5c2af327cd64a62cf35abd2ba6fab4"),
        new(4, K3, P4, A4, Iv3,
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47"),
        new(7, Zero128 + "0000000000000000", "", "", Zero96, "", "cd33b28ac773f74ba00ed1f312572435"),
        new(8, Zero128 + "0000000000000000", Zero128, "", Zero96, "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb"),
        new(9, K3 + "feffe9928665731c", P3, "", Iv3,
            "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710acade256",
            "9924a7c8587336bfb118024db8674a14"),
        new(10, K3 + "feffe9928665731c", P4, A4, Iv3,
            "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710",
            "2519498e80f1478f37ba55bd6d27618c"),
        new(13, Zero128 + Zero128, "", "", Zero96, "", "530f8afbc74536b9a963b4f1c4cb738b"),
        new(14, Zero128 + Zero128, Zero128, "", Zero96, "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
        new(15, K3 + K3, P3, "", Iv3,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c"),
        new(16, K3 + K3, P4, A4, Iv3,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"),
    ];
}

/// <summary>
/// The intrinsics AES-GCM engine at the raw GCM level: published vectors, every length through every tail path of
/// the 8-block loop, and randomised agreement with .NET's AesGcm (OpenSSL) and BouncyCastle. Each test runs on both
/// GHASH paths: 512-bit VPCLMULQDQ (where the CPU has AVX-512) and 128-bit PCLMULQDQ.
/// </summary>
public class IntrinsicsGcmTests
{
    public static bool Supported => AesGcmIntrinsics.IsSupported;

    public static TheoryData<int, bool> SpecCases()
    {
        var data = new TheoryData<int, bool>();
        for (int i = 0; i < GcmSpecVector.All.Length; i++)
        {
            data.Add(i, true);
            data.Add(i, false);
        }
        return data;
    }

    [Fact]
    public void Reports_which_ghash_path_it_uses()
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        using var wide = new AesGcmIntrinsics(new byte[16], wide: true);
        using var narrow = new AesGcmIntrinsics(new byte[16], wide: false);
        Assert.Equal(AesGcmIntrinsics.IsWideSupported, wide.UsesWideGhash);
        Assert.False(narrow.UsesWideGhash);
    }

    [Theory]
    [MemberData(nameof(SpecCases))]
    public void Spec_vector_encrypts_and_decrypts(int index, bool wide)
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        GcmSpecVector v = GcmSpecVector.All[index];
        using var gcm = new AesGcmIntrinsics(Hex.Bytes(v.Key), wide);
        byte[] p = Hex.Bytes(v.Plaintext), a = Hex.Bytes(v.Aad), iv = Hex.Bytes(v.Iv);

        // Separate buffers.
        byte[] c = new byte[p.Length];
        byte[] tag = new byte[16];
        gcm.Encrypt(iv, p, c, tag, a);
        Assert.Equal(v.Ciphertext, Hex.Of(c));
        Assert.Equal(v.Tag, Hex.Of(tag));
        byte[] back = new byte[c.Length];
        Assert.True(gcm.TryDecrypt(iv, c, tag, back, a));
        Assert.Equal(v.Plaintext, Hex.Of(back));

        // In place, through the ESP engine entry points (data followed by the tag).
        byte[] buffer = new byte[p.Length + 16];
        p.CopyTo(buffer, 0);
        GcmEngine engine = gcm;
        engine.Encrypt(iv, a, buffer.AsSpan(0, p.Length), buffer.AsSpan(p.Length));
        Assert.Equal(v.Ciphertext + v.Tag, Hex.Of(buffer));
        Assert.True(engine.Decrypt(iv, a, buffer.AsSpan(0, p.Length), buffer.AsSpan(p.Length)));
        Assert.Equal(v.Plaintext, Hex.Of(buffer.AsSpan(0, p.Length)));
    }

    [Fact]
    public void Rejects_the_sizes_it_does_not_implement()
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        Assert.Throws<ArgumentException>(() => new AesGcmIntrinsics(new byte[20]));
        using var gcm = new AesGcmIntrinsics(new byte[16]);
        byte[] data = new byte[32];
        Assert.Throws<ArgumentException>(() => gcm.Encrypt(new byte[8], data, data, new byte[16]));      // 64-bit IV
        Assert.Throws<ArgumentException>(() => gcm.Encrypt(new byte[12], data, data, new byte[12]));     // short tag
        Assert.Throws<ArgumentException>(() => gcm.Encrypt(new byte[12], data, new byte[31], new byte[16]));
        Assert.Throws<ArgumentException>(() => gcm.Encrypt(new byte[12], data.AsSpan(0, 16), data.AsSpan(1, 16), new byte[16])); // partial overlap
    }

    /// <summary>Every length 0..600 and some long ones: all tail shapes (0–7 full blocks, 0–15 partial bytes) after 0..4
    /// main-loop iterations, AAD in the final batch or hashed first, against .NET's AesGcm; in place and not.</summary>
    [Theory]
    [InlineData(16, true)]
    [InlineData(16, false)]
    [InlineData(32, true)]
    [InlineData(32, false)]
    [InlineData(24, true)]
    public void Every_length_matches_AesGcm(int keySize, bool wide)
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        var rng = new Random(keySize * 2 + (wide ? 1 : 0));
        int[] aadLengths = [8, 12, 0, 16, 20, 1, 33];
        IEnumerable<int> lengths = Enumerable.Range(0, 601).Concat([1000, 1023, 1024, 1025, 1416, 1420, 4095, 4096, 8999, 9000, 65536 + 13]);
        foreach (int length in lengths)
        {
            byte[] key = RandomBytes(rng, keySize);
            byte[] nonce = RandomBytes(rng, 12);
            byte[] aad = RandomBytes(rng, aadLengths[length % aadLengths.Length]);
            byte[] plaintext = RandomBytes(rng, length);

            using var reference = new AesGcm(key, 16);
            byte[] expected = new byte[length];
            byte[] expectedTag = new byte[16];
            reference.Encrypt(nonce, plaintext, expected, expectedTag, aad);

            using var gcm = new AesGcmIntrinsics(key, wide);
            byte[] c = new byte[length];
            byte[] tag = new byte[16];
            gcm.Encrypt(nonce, plaintext, c, tag, aad);
            Assert.True(expected.AsSpan().SequenceEqual(c), $"ciphertext differs at length {length}");
            Assert.True(expectedTag.AsSpan().SequenceEqual(tag), $"tag differs at length {length}");

            byte[] inPlace = (byte[])plaintext.Clone();
            byte[] tag2 = new byte[16];
            gcm.Encrypt(nonce, inPlace, inPlace, tag2, aad);
            Assert.True(expected.AsSpan().SequenceEqual(inPlace), $"in-place ciphertext differs at length {length}");
            Assert.True(expectedTag.AsSpan().SequenceEqual(tag2));

            Assert.True(gcm.TryDecrypt(nonce, inPlace, tag2, inPlace, aad), $"in-place decrypt failed at length {length}");
            Assert.True(plaintext.AsSpan().SequenceEqual(inPlace));
            byte[] back = new byte[length];
            Assert.True(gcm.TryDecrypt(nonce, expected, expectedTag, back, aad));
            Assert.True(plaintext.AsSpan().SequenceEqual(back));
        }
    }

    /// <summary>Random keys (128/256), nonces, AAD (mostly ESP's 8 and 12 bytes), lengths 0..9000: the three
    /// implementations agree on ciphertext and tag, and each decrypts the others' output.</summary>
    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    public void Random_messages_agree_with_AesGcm_and_BouncyCastle(int seed, bool wide)
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        var rng = new Random(seed);
        const int Cases = 1500;
        for (int i = 0; i < Cases; i++)
        {
            byte[] key = RandomBytes(rng, rng.Next(2) == 0 ? 16 : 32);
            byte[] nonce = RandomBytes(rng, 12);
            int aadLength = rng.Next(10) switch { < 4 => 8, < 8 => 12, _ => rng.Next(0, 70) };
            byte[] aad = RandomBytes(rng, aadLength);
            int length = rng.Next(4) == 0 ? rng.Next(0, 200) : rng.Next(0, 9001);
            byte[] plaintext = RandomBytes(rng, length);
            bool inPlace = rng.Next(2) == 0;

            using var gcm = new AesGcmIntrinsics(key, wide);
            byte[] c1 = inPlace ? (byte[])plaintext.Clone() : new byte[length];
            byte[] t1 = new byte[16];
            gcm.Encrypt(nonce, inPlace ? c1 : plaintext, c1, t1, aad);

            using var dotnet = new AesGcm(key, 16);
            byte[] c2 = new byte[length];
            byte[] t2 = new byte[16];
            dotnet.Encrypt(nonce, plaintext, c2, t2, aad);

            byte[] c3 = BouncyCastleSeal(key, nonce, aad, plaintext, out byte[] t3);

            string what = $"case {i}: key {key.Length * 8} bits, {length} bytes, AAD {aadLength}, in place {inPlace}";
            Assert.True(c1.AsSpan().SequenceEqual(c2) && t1.AsSpan().SequenceEqual(t2), "differs from AesGcm, " + what);
            Assert.True(c1.AsSpan().SequenceEqual(c3) && t1.AsSpan().SequenceEqual(t3), "differs from BouncyCastle, " + what);

            // Each decrypts the others' output.
            byte[] p1 = new byte[length];
            dotnet.Decrypt(nonce, c1, t1, p1, aad);
            Assert.True(plaintext.AsSpan().SequenceEqual(p1), what);
            Assert.True(plaintext.AsSpan().SequenceEqual(BouncyCastleOpen(key, nonce, aad, c1, t1)), what);
            byte[] p2 = inPlace ? (byte[])c2.Clone() : new byte[length];
            Assert.True(gcm.TryDecrypt(nonce, inPlace ? p2 : c2, t2, p2, aad), what);
            Assert.True(plaintext.AsSpan().SequenceEqual(p2), what);
            byte[] p3 = new byte[length];
            Assert.True(gcm.TryDecrypt(nonce, c3, t3, p3, aad), what);
            Assert.True(plaintext.AsSpan().SequenceEqual(p3), what);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Tampered_tag_ciphertext_aad_or_nonce_is_rejected_and_nothing_is_released(bool wide)
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        var rng = new Random(7);
        foreach (int length in new[] { 0, 1, 15, 16, 17, 84, 127, 128, 129, 1420, 9000 })
        {
            byte[] key = RandomBytes(rng, 32);
            byte[] nonce = RandomBytes(rng, 12);
            byte[] aad = RandomBytes(rng, 8);
            byte[] plaintext = RandomBytes(rng, length);
            using var gcm = new AesGcmIntrinsics(key, wide);
            byte[] c = new byte[length];
            byte[] tag = new byte[16];
            gcm.Encrypt(nonce, plaintext, c, tag, aad);

            for (int what = 0; what < 5; what++)
            {
                byte[] c2 = (byte[])c.Clone(), t2 = (byte[])tag.Clone(), a2 = (byte[])aad.Clone(), n2 = (byte[])nonce.Clone();
                switch (what)
                {
                    case 0: t2[rng.Next(16)] ^= (byte)(1 << rng.Next(8)); break;
                    case 1 when length > 0: c2[rng.Next(length)] ^= (byte)(1 << rng.Next(8)); break;
                    case 1: continue;
                    case 2: a2[rng.Next(8)] ^= 0x80; break;
                    case 3: n2[rng.Next(12)] ^= 0x01; break;
                    case 4: a2 = aad[..4]; break; // different AAD length
                }
                byte[] output = new byte[length];
                output.AsSpan().Fill(0xEE);
                Assert.False(gcm.TryDecrypt(n2, c2, t2, output, a2), $"accepted tampering {what} at length {length}");
                Assert.True(output.AsSpan().IndexOfAnyExcept((byte)0) < 0, "plaintext released after a failed check");

                // In place (the ESP path): the buffer is zeroed.
                GcmEngine engine = gcm;
                Assert.False(engine.Decrypt(n2, a2, c2, t2));
                Assert.True(c2.AsSpan().IndexOfAnyExcept((byte)0) < 0);
            }
        }
    }

    [Fact]
    public void Backend_falls_back_to_AesGcm_where_the_cpu_lacks_the_instructions()
    {
        Assert.Equal(GcmBackend.AesGcm, GcmEngine.ResolveFor(GcmBackend.Intrinsics, intrinsicsSupported: false));
        Assert.Equal(GcmBackend.Intrinsics, GcmEngine.ResolveFor(GcmBackend.Intrinsics, intrinsicsSupported: true));
        Assert.Equal(GcmBackend.BouncyCastle, GcmEngine.ResolveFor(GcmBackend.BouncyCastle, intrinsicsSupported: false));
        using GcmEngine engine = GcmEngine.Create(GcmBackend.Intrinsics, new byte[16]);
        Assert.IsType(Supported ? typeof(AesGcmIntrinsics) : typeof(DotNetGcmEngine), engine);
    }

    [Fact]
    public void Dispose_zeroes_the_key_material()
    {
        Assert.SkipUnless(Supported, "no AES-NI/PCLMULQDQ");
        byte[] key = RandomBytes(new Random(3), 16);
        var gcm = new AesGcmIntrinsics(key);
        byte[] c = new byte[32], tag = new byte[16];
        gcm.Encrypt(new byte[12], new byte[32], c, tag);
        gcm.Dispose();
        // The round keys and hash key powers are gone: the same call now gives a different result.
        byte[] c2 = new byte[32], tag2 = new byte[16];
        gcm.Encrypt(new byte[12], new byte[32], c2, tag2);
        Assert.False(c.AsSpan().SequenceEqual(c2));
        Assert.False(tag.AsSpan().SequenceEqual(tag2));
    }

    internal static byte[] RandomBytes(Random rng, int n)
    {
        byte[] b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static byte[] BouncyCastleSeal(byte[] key, byte[] nonce, byte[] aad, byte[] plaintext, out byte[] tag)
    {
        var gcm = new GcmBlockCipher(new AesEngine());
        gcm.Init(true, new AeadParameters(new KeyParameter(key), 128, nonce, aad));
        byte[] output = new byte[plaintext.Length + 16];
        int n = gcm.ProcessBytes(plaintext, 0, plaintext.Length, output, 0);
        gcm.DoFinal(output, n);
        tag = output[plaintext.Length..];
        return output[..plaintext.Length];
    }

    private static byte[] BouncyCastleOpen(byte[] key, byte[] nonce, byte[] aad, byte[] ciphertext, byte[] tag)
    {
        var gcm = new GcmBlockCipher(new AesEngine());
        gcm.Init(false, new AeadParameters(new KeyParameter(key), 128, nonce, aad));
        byte[] input = [.. ciphertext, .. tag];
        byte[] output = new byte[ciphertext.Length];
        int n = gcm.ProcessBytes(input, 0, input.Length, output, 0);
        gcm.DoFinal(output, n);
        return output;
    }
}
