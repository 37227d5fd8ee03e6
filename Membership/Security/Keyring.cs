namespace UserOverlay.Membership.Security;

/// <summary>
/// Gossip encryption keys, as memberlist's Keyring: the primary key encrypts, every installed key is
/// tried on decryption (so keys can be rotated without a flag day). Keys are 16, 24 or 32 bytes
/// (AES-128/192/256-GCM).
/// </summary>
/// <remarks>
/// Thread-safe, and made to be changed while the member runs (a cluster's control plane rotates the gossip key): the
/// keys are one immutable array (primary first) that writers replace as a whole under a private lock, and the packet
/// and stream paths read it once per message (<see cref="PrimaryKey"/> to encrypt, the whole array to decrypt), so a
/// message never sees half a change and no key array is ever modified after it was published. To rotate without a
/// lost message, add the new key to every member before any member makes it primary, and remove the old one only
/// after every member switched (<see cref="SetKeys"/> does one step atomically).
/// </remarks>
public sealed class Keyring
{
    private readonly Lock _lock = new();
    private volatile byte[][] _keys; // _keys[0] is the primary; never modified once published

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

    /// <summary>Number of installed keys (the primary included).</summary>
    public int Count => _keys.Length;

    /// <summary>Every installed key, primary first. A snapshot.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Keys => _keys.Select(k => (ReadOnlyMemory<byte>)k).ToArray();

    internal byte[][] Snapshot => _keys;

    /// <summary>
    /// Replaces every key at once: <paramref name="primary"/> encrypts, it and <paramref name="others"/> decrypt
    /// (duplicates are ignored). Messages in progress finish with the keys they started with.
    /// </summary>
    /// <exception cref="ArgumentException">a key is not 16, 24 or 32 bytes (nothing is changed).</exception>
    public void SetKeys(ReadOnlySpan<byte> primary, IEnumerable<byte[]>? others = null)
    {
        Validate(primary);
        var list = new List<byte[]> { primary.ToArray() };
        foreach (var k in others ?? [])
        {
            ArgumentNullException.ThrowIfNull(k, nameof(others));
            Validate(k);
            if (!list.Any(x => x.AsSpan().SequenceEqual(k))) list.Add([.. k]);
        }
        lock (_lock)
            _keys = [.. list];
    }

    /// <summary>Installs an extra key for decryption (no effect if already installed).</summary>
    public void AddKey(ReadOnlySpan<byte> key)
    {
        Validate(key);
        lock (_lock)
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
        lock (_lock)
        {
            byte[] k = key.ToArray();
            _keys = [k, .. _keys.Where(x => !x.AsSpan().SequenceEqual(k))];
        }
    }

    /// <summary>Removes a non-primary key. Removing the primary throws.</summary>
    public void RemoveKey(ReadOnlySpan<byte> key)
    {
        lock (_lock)
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
