using System.Text.Json;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;
using UserOverlay.Crypto;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// The cluster's network keys as this node last received them, kept in STATE/cluster/ipsec-keys.json (0600, in the
/// cluster directory that <c>swarm leave</c> removes), so that a node restarted while no manager answers serves its
/// encrypted cluster networks again at once: the host restores them into its router before it brings the networks
/// back (<see cref="ClusterNode.RestoreKeys"/>), and the node saves each new ring (<see cref="Save"/>).
/// </summary>
internal sealed class ClusterKeyFile(IClusterHost host)
{
    private readonly Lock _lock = new();

    private string FilePath => PathIn(host.StateDirectory);

    /// <summary>The file in a host's state directory.</summary>
    public static string PathIn(string stateDirectory) => Path.Combine(stateDirectory, "cluster", "ipsec-keys.json");

    /// <summary>Saves <paramref name="ring"/> (atomically; the directory must exist) and gives every encrypted network of <paramref name="networks"/> its keys.</summary>
    public void Save(KeyRing ring, IEnumerable<NetworkDefinition> networks)
    {
        lock (_lock)
        {
            string temp = FilePath + ".tmp";
            using (var f = new FileStream(temp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
                JsonSerializer.Serialize(f, ring, ClusterJson.Default.KeyRing);
            File.Move(temp, FilePath, overwrite: true);
        }
        Apply(ring, networks, onlyMissing: false);
    }

    /// <summary>Gives the encrypted cluster networks among <paramref name="networks"/> the keys saved in <paramref name="stateDirectory"/> (at start, before they are served).</summary>
    public static void Restore(string stateDirectory, IEnumerable<NetworkDefinition> networks, StaticNetworkKeySource? keys)
    {
        string path = PathIn(stateDirectory);
        if (keys is null || !File.Exists(path)) return;
        KeyRing? ring;
        try { ring = JsonSerializer.Deserialize(File.ReadAllText(path), ClusterJson.Default.KeyRing); }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new Router.RouterException(Router.RouterErrorCode.SystemError, $"cannot read the cluster's saved keys in {path}: {e.Message}; remove the file (the managers send the keys again once they answer)");
        }
        if (ring is { Keys.Count: > 0 }) Apply(keys, ring, networks, onlyMissing: true);
    }

    /// <summary>Gives every encrypted cluster network of <paramref name="networks"/> that has no ring yet (or, unless <paramref name="onlyMissing"/>, every one) the cluster's ring.</summary>
    public void Apply(KeyRing ring, IEnumerable<NetworkDefinition> networks, bool onlyMissing)
    {
        if (host.NetworkKeys is { } keys) Apply(keys, ring, networks, onlyMissing);
    }

    private static void Apply(StaticNetworkKeySource keys, KeyRing ring, IEnumerable<NetworkDefinition> networks, bool onlyMissing)
    {
        foreach (var n in networks.Where(n => n.Encrypted && n.Scope == NetworkManager.SwarmScope))
            if (!onlyMissing || !keys.TryGetRing(n.Name, out _)) keys.Set(RingFor(n.Name, ring));
    }

    /// <summary>The router's key ring for an encrypted cluster network: the cluster's ESP keys under the network's name, sending with <see cref="KeyRing.SendKey"/>.</summary>
    public static NetworkKeyRing RingFor(string network, KeyRing ring) =>
        new([.. ring.Keys.Select(k => new NetworkKey(network, k.Material))], ring.Keys.ToList().IndexOf(ring.SendKey));
}
