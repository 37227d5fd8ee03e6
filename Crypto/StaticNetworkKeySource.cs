using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace UserOverlay.Crypto;

/// <summary>
/// Keys held in memory: parsed from the configuration, and added and removed at run time (the daemon reads a
/// network's <c>key_file</c> when the API creates it). One secret per id: its ring is a ring of one
/// (<see cref="TryGetRing"/>), so replacing a key replaces every SA derived from it. Thread-safe: <see cref="TryGetKey"/>
/// takes no lock (it is called by <see cref="EspSecurityDatabase.Tick"/> on the ESP timer while the control plane may
/// <see cref="Set(NetworkKey)"/> or <see cref="Remove"/>); changes take effect at the next Tick. For rings of several keys rotated
/// at run time use <see cref="MutableNetworkKeySource"/>.
/// </summary>
public sealed class StaticNetworkKeySource : INetworkKeySource
{
    private readonly ConcurrentDictionary<string, NetworkKeyRing> _keys = new(StringComparer.Ordinal);

    /// <summary>Creates a source holding <paramref name="keys"/>.</summary>
    public StaticNetworkKeySource(IEnumerable<NetworkKey>? keys = null)
    {
        if (keys is not null)
            foreach (var k in keys)
                _keys[k.Id] = new NetworkKeyRing(k);
    }

    /// <summary>Adds or replaces a key.</summary>
    public void Set(NetworkKey key) => _keys[key.Id] = new NetworkKeyRing(key);

    /// <summary>Adds or replaces the ring of <paramref name="ring"/>'s id (a cluster's keys for one network).</summary>
    public void Set(NetworkKeyRing ring) => _keys[ring.Id] = ring;

    /// <summary>Removes a key; its SAs are torn down at the next Tick.</summary>
    public bool Remove(string keyId) => _keys.TryRemove(keyId, out _);

    /// <summary>Every key held.</summary>
    public IReadOnlyCollection<NetworkKey> Keys => [.. _keys.Values.Select(r => r.Primary)];

    /// <inheritdoc/>
    public bool TryGetKey(string keyId, [NotNullWhen(true)] out NetworkKey? key)
    {
        key = _keys.TryGetValue(keyId, out NetworkKeyRing? ring) ? ring.Primary : null;
        return key is not null;
    }

    /// <inheritdoc/>
    public bool TryGetRing(string keyId, [NotNullWhen(true)] out NetworkKeyRing? ring) => _keys.TryGetValue(keyId, out ring);
}
