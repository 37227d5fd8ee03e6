using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace UserOverlay.Crypto;

/// <summary>
/// Key rings the control plane sets at run time (a cluster's managers hand out and rotate them). Thread-safe and
/// lock-free for readers: each id maps to an immutable <see cref="NetworkKeyRing"/> that <c>Set</c> replaces as a
/// whole, so <see cref="EspSecurityDatabase.Tick"/> on the ESP timer never sees half a change. A change takes effect at
/// the database's next Tick (the router ticks about once a second).
/// </summary>
/// <remarks>To rotate without loss, follow the order described on <see cref="NetworkKeyRing"/>: add a key to every host's
/// ring before any host makes it primary.</remarks>
public sealed class MutableNetworkKeySource : INetworkKeySource
{
    private readonly ConcurrentDictionary<string, NetworkKeyRing> _rings = new(StringComparer.Ordinal);

    /// <summary>Creates a source holding <paramref name="rings"/> (none by default).</summary>
    /// <exception cref="ArgumentException">two rings with the same id.</exception>
    public MutableNetworkKeySource(IEnumerable<NetworkKeyRing>? rings = null)
    {
        if (rings is null)
            return;
        foreach (NetworkKeyRing r in rings)
            if (!_rings.TryAdd(r.Id, r))
                throw new ArgumentException($"two key rings for network key '{r.Id}'", nameof(rings));
    }

    /// <summary>Installs or replaces the ring of <paramref name="keyId"/> (which must be the ring's <see cref="NetworkKeyRing.Id"/>).</summary>
    /// <exception cref="ArgumentException">the ids differ.</exception>
    public void Set(string keyId, NetworkKeyRing ring)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        ArgumentNullException.ThrowIfNull(ring);
        if (!string.Equals(keyId, ring.Id, StringComparison.Ordinal))
            throw new ArgumentException($"ring '{ring.Id}' given for network key '{keyId}': the ids must match", nameof(ring));
        _rings[keyId] = ring;
    }

    /// <summary>Installs or replaces a ring under its own id.</summary>
    public void Set(NetworkKeyRing ring)
    {
        ArgumentNullException.ThrowIfNull(ring);
        _rings[ring.Id] = ring;
    }

    /// <summary>Installs or replaces the ring of <paramref name="key"/>'s id with a ring of that one key (a key read from a
    /// file, as <see cref="StaticNetworkKeySource.Set(NetworkKey)"/> does), so one source can serve file keys and cluster rings.</summary>
    public void Set(NetworkKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _rings[key.Id] = new NetworkKeyRing(key);
    }

    /// <summary>Removes a ring; its SAs are torn down at the next Tick (nothing is sent to or accepted from its peers).</summary>
    public bool Remove(string keyId) => _rings.TryRemove(keyId, out _);

    /// <summary>Every ring held (a snapshot).</summary>
    public IReadOnlyCollection<NetworkKeyRing> Rings => [.. _rings.Values];

    /// <inheritdoc/>
    public bool TryGetRing(string keyId, [NotNullWhen(true)] out NetworkKeyRing? ring) => _rings.TryGetValue(keyId, out ring);

    /// <inheritdoc/>
    public bool TryGetKey(string keyId, [NotNullWhen(true)] out NetworkKey? key)
    {
        key = _rings.TryGetValue(keyId, out NetworkKeyRing? ring) ? ring.Primary : null;
        return key is not null;
    }
}
