namespace UserOverlay.Crypto;

/// <summary>
/// The secrets of one network key id at one moment, as a cluster's managers hand them out (Docker swarm keeps a ring of
/// three and rotates it every 12 h): every key of the ring is accepted on receive, the <see cref="Primary"/> alone seals.
/// </summary>
/// <remarks>
/// <para>Rotation without loss relies on the order in which hosts learn rings (swarm's scheme): a new key joins every
/// host's ring one rotation <i>before</i> any host makes it primary, so when senders switch, every receiver has it; a key
/// leaves rings only after no host seals with it any more. <see cref="EspSecurityDatabase"/> keeps the SAs of the keys a
/// new ring still holds exactly as they are (sequence numbers, replay windows), builds those of new keys and retires
/// those of removed ones.</para>
/// <para>Immutable and thread-safe. All keys carry the ring's <see cref="Id"/>; no two hold the same secret.
/// <see cref="ToString"/> shows fingerprints, never secrets.</para>
/// </remarks>
public sealed class NetworkKeyRing
{
    private readonly NetworkKey[] _keys;

    /// <summary>A ring of <paramref name="keys"/> (in the order given, e.g. oldest first) whose primary is <c>keys[primaryIndex]</c>.</summary>
    /// <exception cref="ArgumentException">no key, keys with different ids, two keys with the same secret, or the index outside the list;
    /// the message names the field.</exception>
    public NetworkKeyRing(IReadOnlyList<NetworkKey> keys, int primaryIndex)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
            throw new ArgumentException("a network key ring needs at least one key", nameof(keys));
        if ((uint)primaryIndex >= (uint)keys.Count)
            throw new ArgumentOutOfRangeException(nameof(primaryIndex), primaryIndex, $"primary index must be 0 to {keys.Count - 1} (the ring has {keys.Count} keys)");
        string id = keys[0]?.Id ?? throw new ArgumentException("keys[0] is null", nameof(keys));
        _keys = new NetworkKey[keys.Count];
        for (int i = 0; i < keys.Count; i++)
        {
            NetworkKey k = keys[i] ?? throw new ArgumentException($"keys[{i}] is null", nameof(keys));
            if (!string.Equals(k.Id, id, StringComparison.Ordinal))
                throw new ArgumentException($"keys[{i}] has id '{k.Id}' but the ring is '{id}': every key of a ring names the same network key", nameof(keys));
            for (int j = 0; j < i; j++)
                if (_keys[j].SecretEquals(k))
                    throw new ArgumentException($"keys[{i}] holds the same secret as keys[{j}] (fingerprint {k.Fingerprint}) in ring '{id}'", nameof(keys));
            _keys[i] = k;
        }
        Id = id;
        PrimaryIndex = primaryIndex;
    }

    /// <summary>A ring of <paramref name="primary"/> followed by <paramref name="others"/>.</summary>
    public NetworkKeyRing(NetworkKey primary, params IEnumerable<NetworkKey> others)
        : this([primary ?? throw new ArgumentNullException(nameof(primary)), .. others ?? []], 0)
    {
    }

    /// <summary>The network key id every key of the ring carries.</summary>
    public string Id { get; }

    /// <summary>The key that seals.</summary>
    public NetworkKey Primary => _keys[PrimaryIndex];

    /// <summary>Position of <see cref="Primary"/> in <see cref="All"/>.</summary>
    public int PrimaryIndex { get; }

    /// <summary>Every key, in the ring's order (the primary among them); all of them open.</summary>
    public IReadOnlyList<NetworkKey> All => _keys;

    /// <summary>Number of keys.</summary>
    public int Count => _keys.Length;

    /// <summary>The keys' fingerprints in ring order (<see cref="NetworkKey.Fingerprint"/>), for logs.</summary>
    public IReadOnlyList<string> Fingerprints => [.. _keys.Select(k => k.Fingerprint)];

    /// <summary>True if the ring holds a key with <paramref name="key"/>'s secret (constant-time per key).</summary>
    public bool Contains(NetworkKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return IndexOf(key) >= 0;
    }

    /// <summary>Position of the key with <paramref name="key"/>'s secret, or −1.</summary>
    public int IndexOf(NetworkKey key)
    {
        for (int i = 0; i < _keys.Length; i++)
            if (_keys[i].SecretEquals(key))
                return i;
        return -1;
    }

    /// <summary>True if both rings have the same id, the same secrets in the same order and the same primary.</summary>
    public bool SameAs(NetworkKeyRing? other)
    {
        if (other is null || other.PrimaryIndex != PrimaryIndex || other._keys.Length != _keys.Length || other.Id != Id)
            return false;
        for (int i = 0; i < _keys.Length; i++)
            if (!_keys[i].SecretEquals(other._keys[i]))
                return false;
        return true;
    }

    /// <summary>The same keys with the key of <paramref name="primary"/>'s secret as primary.</summary>
    /// <exception cref="ArgumentException">the ring has no such key.</exception>
    public NetworkKeyRing WithPrimary(NetworkKey primary)
    {
        ArgumentNullException.ThrowIfNull(primary);
        int i = IndexOf(primary);
        if (i < 0)
            throw new ArgumentException($"key {primary.Fingerprint} is not in ring '{Id}' ({string.Join(", ", Fingerprints)})", nameof(primary));
        return new NetworkKeyRing(_keys, i);
    }

    /// <summary>A ring of one key (a configuration file's key).</summary>
    public static NetworkKeyRing Of(NetworkKey key) => new(key);

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Id}: primary {Primary.Fingerprint}" + (_keys.Length == 1 ? "" : ", ring " + string.Join(", ", Fingerprints));
}
