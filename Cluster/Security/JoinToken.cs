using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace UserOverlay.Cluster.Security;

/// <summary>
/// A join token as swarm writes it: <c>SWMTKN-1-&lt;digest&gt;-&lt;secret&gt;</c>. The digest is the SHA-256 of the
/// cluster's root CA certificate PEM (its UTF-8 bytes, exactly as the managers serve it on
/// <c>GET /v1/cluster/ca</c>), read as a big-endian number and written in base 36 (0-9a-z), zero-padded to 50
/// characters; the secret is 16 random bytes read the same way, padded to 25. A joining node checks the CA a manager
/// presents against the digest before it sends anything, and the managers compare the secret (in constant time) to
/// decide whether, and as what role, the node may join. Worker and manager tokens share the digest and differ in
/// the secret; rotating a token changes only the secret.
/// <para>Immutable and thread-safe. <see cref="ToString"/> is the secret: never log it.</para>
/// </summary>
public sealed class JoinToken
{
    /// <summary>The prefix every token starts with.</summary>
    public const string Prefix = "SWMTKN";

    /// <summary>The only format version this code reads and writes.</summary>
    public const string Version = "1";

    /// <summary>Characters of the digest (SHA-256 in base 36: 36^50 &gt; 2^256).</summary>
    public const int DigestLength = 50;

    /// <summary>Characters of the secret (16 bytes in base 36: 36^25 &gt; 2^128).</summary>
    public const int SecretLength = 25;

    /// <summary>Bytes of randomness in the secret.</summary>
    public const int SecretBytes = 16;

    /// <summary>Characters of a whole token: "SWMTKN-1-" + digest + "-" + secret.</summary>
    public const int Length = 9 + DigestLength + 1 + SecretLength;

    private const string Digits = "0123456789abcdefghijklmnopqrstuvwxyz";

    private static readonly BigInteger MaxDigest = (BigInteger.One << 256) - 1;
    private static readonly BigInteger MaxSecret = (BigInteger.One << (8 * SecretBytes)) - 1;

    private JoinToken(string digest, string secret)
    {
        Digest = digest;
        Secret = secret;
    }

    /// <summary>The root CA's digest (50 base-36 characters).</summary>
    public string Digest { get; }

    /// <summary>The secret (25 base-36 characters).</summary>
    public string Secret { get; }

    /// <summary>A new token for the CA whose certificate PEM is <paramref name="rootPem"/>, with a fresh random secret.</summary>
    public static JoinToken Create(string rootPem)
    {
        Span<byte> secret = stackalloc byte[SecretBytes];
        RandomNumberGenerator.Fill(secret);
        return Create(rootPem, secret);
    }

    /// <summary>The token for <paramref name="rootPem"/> with the given 16 secret bytes (for tests and known vectors).</summary>
    public static JoinToken Create(string rootPem, ReadOnlySpan<byte> secret)
    {
        ArgumentNullException.ThrowIfNull(rootPem);
        if (secret.Length != SecretBytes)
            throw new ArgumentException($"a join token's secret is {SecretBytes} bytes, not {secret.Length}", nameof(secret));
        return new JoinToken(DigestOf(rootPem), ToBase36(secret, SecretLength));
    }

    /// <summary>The digest part of a token for the CA whose certificate PEM is <paramref name="rootPem"/>.</summary>
    public static string DigestOf(string rootPem)
    {
        ArgumentNullException.ThrowIfNull(rootPem);
        return DigestOf(Encoding.UTF8.GetBytes(rootPem));
    }

    /// <summary>The digest part of a token for the CA whose certificate PEM bytes are <paramref name="rootPem"/>.</summary>
    public static string DigestOf(ReadOnlySpan<byte> rootPem)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(rootPem, hash);
        return ToBase36(hash, DigestLength);
    }

    /// <summary>
    /// Reads a token. Surrounding white space (a pasted line's newline) is ignored; anything else malformed is refused
    /// with one sentence saying what is wrong (the prefix, the version, the number of parts, a part's length, a
    /// character outside 0-9a-z, a value too large). The error never repeats the secret.
    /// </summary>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out JoinToken? token, out string error)
    {
        token = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "the join token is empty (it looks like SWMTKN-1-<50 characters>-<25 characters>; a manager prints it with `swarm join-token worker|manager`)";
            return false;
        }
        string s = text.Trim();
        string[] parts = s.Split('-');
        if (!parts[0].Equals(Prefix, StringComparison.Ordinal))
        {
            error = parts[0].Equals(Prefix, StringComparison.OrdinalIgnoreCase)
                ? $"the join token must start with '{Prefix}-' in capitals"
                : $"the join token must start with '{Prefix}-' (this one starts with '{ControlPrintable(parts[0], 10)}')";
            return false;
        }
        if (parts.Length < 2 || parts[1].Length == 0)
        {
            error = $"the join token has no version after '{Prefix}-' (expected '{Prefix}-{Version}-')";
            return false;
        }
        if (!parts[1].Equals(Version, StringComparison.Ordinal))
        {
            error = $"the join token's version is '{ControlPrintable(parts[1], 10)}'; this node reads only version {Version} ({Prefix}-{Version}-…; the FIPS form {Prefix}-2-… is not supported)";
            return false;
        }
        if (parts.Length != 4)
        {
            error = $"the join token has {parts.Length} '-'-separated parts; it must have 4: {Prefix}-{Version}-<digest>-<secret>";
            return false;
        }
        if (!TryPart(parts[2], "digest", DigestLength, MaxDigest, out error, showValue: true)) return false;
        if (!TryPart(parts[3], "secret", SecretLength, MaxSecret, out error, showValue: false)) return false;
        token = new JoinToken(parts[2], parts[3]);
        error = "";
        return true;
    }

    /// <summary>Reads a token, or throws <see cref="FormatException"/> with <see cref="TryParse"/>'s sentence.</summary>
    public static JoinToken Parse(string text) =>
        TryParse(text, out var token, out string error) ? token : throw new FormatException(error);

    /// <summary>True when this token was made for the CA whose certificate PEM is <paramref name="rootPem"/>.</summary>
    public bool MatchesRoot(string rootPem) => MatchesDigest(DigestOf(rootPem));

    /// <summary>True when this token was made for the CA whose certificate PEM bytes are <paramref name="rootPem"/>.</summary>
    public bool MatchesRoot(ReadOnlySpan<byte> rootPem) => MatchesDigest(DigestOf(rootPem));

    private bool MatchesDigest(string digest) => digest.Equals(Digest, StringComparison.Ordinal);

    /// <summary>True when both tokens carry the same secret, compared in constant time (the digests are not compared).</summary>
    public bool SecretEquals(JoinToken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Span<byte> a = stackalloc byte[SecretLength], b = stackalloc byte[SecretLength];
        Encoding.ASCII.GetBytes(Secret, a);
        Encoding.ASCII.GetBytes(other.Secret, b);
        return CryptographicOperations.FixedTimeEquals(a, b);
    }

    /// <summary>The token, as a person pastes it (<c>SWMTKN-1-…</c>). It is a secret.</summary>
    public override string ToString() => $"{Prefix}-{Version}-{Digest}-{Secret}";

    private static bool TryPart(string part, string name, int length, BigInteger max, out string error, bool showValue)
    {
        if (part.Length != length)
        {
            error = $"the join token's {name} is {part.Length} characters; it must be {length}";
            return false;
        }
        for (int i = 0; i < part.Length; i++)
        {
            char c = part[i];
            if (c is (< '0' or > '9') and (< 'a' or > 'z'))
            {
                string shown = char.IsControl(c) || c > '~' || c == ' ' ? $"U+{(int)c:X4}" : $"'{c}'";
                error = showValue || char.IsUpper(c)
                    ? $"the join token's {name} has {shown} at position {i + 1}; only 0-9 and a-z (lower case) are allowed"
                    : $"the join token's {name} has a character other than 0-9 and a-z (lower case) at position {i + 1}";
                return false;
            }
        }
        if (FromBase36(part) > max)
        {
            error = $"the join token's {name} is not a valid {(name == "digest" ? "SHA-256 digest" : "16-byte secret")} (its value is too large)";
            return false;
        }
        error = "";
        return true;
    }

    private static string ToBase36(ReadOnlySpan<byte> bigEndian, int width)
    {
        var n = new BigInteger(bigEndian, isUnsigned: true, isBigEndian: true);
        Span<char> chars = stackalloc char[width];
        for (int i = width - 1; i >= 0; i--)
        {
            n = BigInteger.DivRem(n, 36, out var digit);
            chars[i] = Digits[(int)digit];
        }
        return new string(chars);
    }

    private static BigInteger FromBase36(string s)
    {
        BigInteger n = BigInteger.Zero;
        foreach (char c in s) n = n * 36 + (c <= '9' ? c - '0' : c - 'a' + 10);
        return n;
    }

    private static string ControlPrintable(string s, int max)
    {
        string cut = s.Length > max ? s[..max] + "…" : s;
        return string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
