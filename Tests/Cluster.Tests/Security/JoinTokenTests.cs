using UserOverlay.Cluster.Security;

namespace UserOverlay.Cluster.Tests.Security;

/// <summary>
/// Join tokens: known vectors, and one precise refusal per malformed form.
/// <para>
/// The expected strings were computed once, independently of this code, with Python 3's hashlib and int arithmetic:
/// <c>hashlib.sha256(pem.encode()).digest()</c> → <c>int.from_bytes(…, 'big')</c> → repeated divmod by 36 over
/// "0123456789abcdefghijklmnopqrstuvwxyz", left-padded with '0' to 50 (digest) or 25 (secret). The PEM below hashes to
/// ac78225c879978e1d0a02e562e80a976cdba742f4dd74de6652d9f5e7a69c003.
/// </para>
/// </summary>
public sealed class JoinTokenTests
{
    private const string Pem = "-----BEGIN CERTIFICATE-----\nVGhpcyBpcyBub3QgYSBjZXJ0aWZpY2F0ZSwgb25seSBhIHRlc3QgdmVjdG9yLg==\n-----END CERTIFICATE-----\n";
    private const string PemDigest = "4aqzzfr1gwxzgxj0sukrngwdifgzy2d1tx5wx4uet7a31qjrib";
    private const string Secret0To15 = "000avh9he7dy896m08s18udxr"; // bytes 00 01 02 … 0f
    private const string SecretAllOnes = "f5lxx1zz5pnorynqglhzmsp33"; // 2^128 − 1
    private const string EmptyDigest = "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p"; // SHA-256 of no bytes
    private const string Good = "SWMTKN-1-" + PemDigest + "-" + Secret0To15;

    private static byte[] Bytes0To15 => [.. Enumerable.Range(0, 16).Select(i => (byte)i)];

    [Fact]
    public void Known_vector_for_a_fixed_pem_and_secret()
    {
        var t = JoinToken.Create(Pem, Bytes0To15);
        Assert.Equal(Good, t.ToString());
        Assert.Equal(PemDigest, t.Digest);
        Assert.Equal(Secret0To15, t.Secret);
        Assert.Equal(JoinToken.Length, t.ToString().Length);
    }

    [Fact]
    public void Extreme_values_pad_and_fit()
    {
        Assert.Equal(SecretAllOnes, JoinToken.Create(Pem, Enumerable.Repeat((byte)0xff, 16).ToArray()).Secret);
        Assert.Equal(new string('0', 25), JoinToken.Create(Pem, new byte[16]).Secret);
        Assert.Equal(EmptyDigest, JoinToken.DigestOf(""));
    }

    [Fact]
    public void Random_tokens_round_trip_and_differ()
    {
        var a = JoinToken.Create(Pem);
        var b = JoinToken.Create(Pem);
        Assert.Equal(a.Digest, b.Digest);
        Assert.NotEqual(a.Secret, b.Secret);
        Assert.True(JoinToken.TryParse(a.ToString(), out var back, out string error), error);
        Assert.Equal(a.ToString(), back.ToString());
        Assert.True(a.SecretEquals(back));
        Assert.False(a.SecretEquals(b));
    }

    [Fact]
    public void Parses_the_known_vector_and_ignores_surrounding_white_space()
    {
        Assert.True(JoinToken.TryParse("  " + Good + "\n", out var t, out string error), error);
        Assert.Equal(PemDigest, t.Digest);
        Assert.Equal(Secret0To15, t.Secret);
        Assert.True(t.MatchesRoot(Pem));
        Assert.False(t.MatchesRoot(Pem + "\n"));
        Assert.False(t.MatchesRoot(Pem.Replace('V', 'W')));
    }

    [Fact]
    public void Secret_equality_ignores_the_digest()
    {
        var a = JoinToken.Create(Pem, Bytes0To15);
        var other = JoinToken.Create("another root", Bytes0To15);
        Assert.True(a.SecretEquals(other));
        Assert.False(a.MatchesRoot("another root"));
    }

    public static TheoryData<string?, string> Malformed => new()
    {
        { null, "empty" },
        { "   ", "empty" },
        { "XWMTKN-1-" + PemDigest + "-" + Secret0To15, "must start with 'SWMTKN-' (this one starts with 'XWMTKN')" },
        { "swmtkn-1-" + PemDigest + "-" + Secret0To15, "in capitals" },
        { "SWMTKN", "no version" },
        { "SWMTKN--" + PemDigest + "-" + Secret0To15, "no version" },
        { "SWMTKN-2-1-" + PemDigest + "-" + Secret0To15, "version is '2'" },
        { "SWMTKN-1-" + PemDigest, "has 3 '-'-separated parts" },
        { "SWMTKN-1-" + PemDigest + "-" + Secret0To15 + "-x", "has 5 '-'-separated parts" },
        { "SWMTKN-1-" + PemDigest[1..] + "-" + Secret0To15, "digest is 49 characters; it must be 50" },
        { "SWMTKN-1-" + PemDigest + "0-" + Secret0To15, "digest is 51 characters; it must be 50" },
        { "SWMTKN-1-" + PemDigest + "-" + Secret0To15[1..], "secret is 24 characters; it must be 25" },
        { "SWMTKN-1-" + PemDigest + "-" + Secret0To15 + "a", "secret is 26 characters; it must be 25" },
        { "SWMTKN-1-" + "A" + PemDigest[1..] + "-" + Secret0To15, "digest has 'A' at position 1; only 0-9 and a-z (lower case)" },
        { "SWMTKN-1-" + PemDigest[..10] + "_" + PemDigest[11..] + "-" + Secret0To15, "digest has '_' at position 11" },
        { "SWMTKN-1-" + PemDigest + "-" + Secret0To15[..24] + "!", "secret has a character other than 0-9 and a-z (lower case) at position 25" },
        { "SWMTKN-1-" + PemDigest + "-" + "é" + Secret0To15[1..], "secret has a character other than 0-9 and a-z (lower case) at position 1" },
        { "SWMTKN-1-" + new string('z', 50) + "-" + Secret0To15, "digest is not a valid SHA-256 digest (its value is too large)" },
        { "SWMTKN-1-" + PemDigest + "-" + new string('z', 25), "secret is not a valid 16-byte secret (its value is too large)" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_tokens_are_refused_with_a_precise_sentence(string? text, string expected)
    {
        Assert.False(JoinToken.TryParse(text, out var token, out string error));
        Assert.Null(token);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        // The error never repeats the secret.
        Assert.DoesNotContain(Secret0To15[1..], error, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => JoinToken.Parse(text!));
    }

    [Fact]
    public void The_largest_values_still_parse()
    {
        Assert.True(JoinToken.TryParse("SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof-" + SecretAllOnes, out _, out string error), error);
        Assert.False(JoinToken.TryParse("SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtog-" + SecretAllOnes, out _, out error));
        Assert.False(JoinToken.TryParse("SWMTKN-1-" + PemDigest + "-f5lxx1zz5pnorynqglhzmsp34", out _, out error));
    }
}
