using System.Diagnostics.CodeAnalysis;

namespace UserOverlay.Crypto;

/// <summary>
/// Where network keys come from: the configuration file (<see cref="StaticNetworkKeySource"/>: one secret per id), or
/// the cluster's control plane (<see cref="MutableNetworkKeySource"/>: a ring of secrets per id, rotated at run time).
/// <see cref="EspSecurityDatabase.Tick"/> asks it for the ring of every key id in use and follows its changes: outbound
/// SAs from the ring's primary, inbound SAs for every key of the ring.
/// </summary>
/// <remarks>Implementations must be thread-safe; calls come from the thread that drives rotation and may block briefly.</remarks>
public interface INetworkKeySource
{
    /// <summary>The current key named <paramref name="keyId"/> (for a ring: its primary), or false if there is none
    /// (then nothing is sent to or accepted from that key's peers).</summary>
    bool TryGetKey(string keyId, [NotNullWhen(true)] out NetworkKey? key);

    /// <summary>The current ring of <paramref name="keyId"/>, or false if there is none. The default is a ring of the one
    /// key <see cref="TryGetKey"/> gives (a new object per call: the database compares rings by content).</summary>
    bool TryGetRing(string keyId, [NotNullWhen(true)] out NetworkKeyRing? ring)
    {
        if (TryGetKey(keyId, out NetworkKey? key))
        {
            ring = new NetworkKeyRing(key);
            return true;
        }
        ring = null;
        return false;
    }
}
