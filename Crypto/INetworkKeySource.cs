using System.Diagnostics.CodeAnalysis;

namespace UserOverlay.Crypto;

/// <summary>
/// Where network keys come from: the configuration file today (<see cref="StaticNetworkKeySource"/>), the cluster's
/// control plane later. <see cref="EspSecurityDatabase.Tick"/> asks it for every key id in use; when a key's secret
/// changes, every SA derived from it is replaced.
/// </summary>
/// <remarks>Implementations must be thread-safe; calls come from the thread that drives rotation and may block briefly.</remarks>
public interface INetworkKeySource
{
    /// <summary>The current key named <paramref name="keyId"/>, or false if there is none (then nothing is sent to or accepted from that key's peers).</summary>
    bool TryGetKey(string keyId, [NotNullWhen(true)] out NetworkKey? key);
}
