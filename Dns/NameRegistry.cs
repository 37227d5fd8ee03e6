using System.Collections.Frozen;
using UserOverlay.Router;

namespace UserOverlay.Dns;

/// <summary>
/// The names of every network's endpoints (local ones and other hosts'), as the DNS responder reads them: per network,
/// name → addresses (several endpoints under one alias: all of them, answered round-robin) and address → name (PTR).
/// A name answers on its own network only: the same name on two networks resolves per the asker's network.
/// <para>
/// Names are DNS names compared without case and without a trailing dot. Writers (<see cref="SetNames"/>,
/// <see cref="RemoveNames"/>) serialise on a lock and publish a new immutable snapshot of the network they changed
/// (O(endpoints of that network) per change); readers (<see cref="Resolve"/>, <see cref="Reverse"/>) take one volatile
/// read and no lock. Thread-safe.
/// </para>
/// </summary>
public sealed class NameRegistry : IEndpointNameSink
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Dictionary<ulong, Entry>> _entries = new(StringComparer.Ordinal); // under _lock
    private volatile FrozenDictionary<string, Snapshot> _snapshots = FrozenDictionary<string, Snapshot>.Empty;

    private sealed record Entry(uint Address, string[] Names);

    /// <summary>One network's names, immutable.</summary>
    internal sealed class Snapshot(Dictionary<string, uint[]> byName, Dictionary<uint, string> byAddress)
    {
        public readonly FrozenDictionary<string, uint[]> ByName = byName.ToFrozenDictionary(StringComparer.Ordinal);
        public readonly FrozenDictionary<uint, string> ByAddress = byAddress.ToFrozenDictionary();
        public int RoundRobin; // incremented per answer (Interlocked), so several endpoints under one name take turns first
    }

    /// <summary>The canonical form of a name: lower case, no trailing dot.</summary>
    public static string Canonical(string name) => name.TrimEnd('.').ToLowerInvariant();

    /// <inheritdoc/>
    public void SetNames(string network, MacAddress mac, uint address, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(names);
        string[] canonical = [.. names.Where(n => !string.IsNullOrWhiteSpace(n)).Select(Canonical).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal)];
        lock (_lock)
        {
            if (!_entries.TryGetValue(network, out var net)) _entries[network] = net = [];
            if (canonical.Length == 0) net.Remove(mac.Value);
            else net[mac.Value] = new Entry(address, canonical);
            PublishLocked(network);
        }
    }

    /// <inheritdoc/>
    public bool RemoveNames(string network, MacAddress mac)
    {
        ArgumentNullException.ThrowIfNull(network);
        lock (_lock)
        {
            if (!_entries.TryGetValue(network, out var net) || !net.Remove(mac.Value)) return false;
            PublishLocked(network);
            return true;
        }
    }

    /// <summary>Forgets every name of <paramref name="network"/> (the network was removed from this host).</summary>
    public void RemoveNetwork(string network)
    {
        lock (_lock)
        {
            if (_entries.Remove(network)) PublishLocked(network);
        }
    }

    /// <summary>
    /// The addresses of <paramref name="name"/> on <paramref name="network"/>, in round-robin order (each call starts one
    /// further along), or false when the name is not there. <paramref name="name"/> must be canonical.
    /// </summary>
    public bool Resolve(string network, string name, out uint[] addresses)
    {
        addresses = [];
        if (!_snapshots.TryGetValue(network, out var s) || !s.ByName.TryGetValue(name, out var all)) return false;
        if (all.Length == 1) { addresses = all; return true; }
        int start = (int)((uint)Interlocked.Increment(ref s.RoundRobin) % (uint)all.Length);
        var rotated = new uint[all.Length];
        for (int i = 0; i < all.Length; i++) rotated[i] = all[(start + i) % all.Length];
        addresses = rotated;
        return true;
    }

    /// <summary>The (first) name of the endpoint with <paramref name="address"/> on <paramref name="network"/>, or null.</summary>
    public string? Reverse(string network, uint address) =>
        _snapshots.TryGetValue(network, out var s) && s.ByAddress.TryGetValue(address, out var name) ? name : null;

    /// <summary>Every name of <paramref name="network"/> with its addresses (sorted; for status and tests).</summary>
    public IReadOnlyList<(string Name, IReadOnlyList<uint> Addresses)> Names(string network) =>
        _snapshots.TryGetValue(network, out var s)
            ? [.. s.ByName.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, (IReadOnlyList<uint>)[.. kv.Value.Order()]))]
            : [];

    private void PublishLocked(string network)
    {
        var all = new Dictionary<string, Snapshot>(_snapshots, StringComparer.Ordinal);
        if (_entries.TryGetValue(network, out var net) && net.Count > 0)
        {
            var byName = new Dictionary<string, List<uint>>(StringComparer.Ordinal);
            var byAddress = new Dictionary<uint, string>();
            foreach (var (_, e) in net.OrderBy(kv => kv.Key)) // by MAC: the order does not depend on arrival
            {
                foreach (string n in e.Names)
                {
                    if (!byName.TryGetValue(n, out var list)) byName[n] = list = [];
                    if (!list.Contains(e.Address)) list.Add(e.Address);
                }
                byAddress.TryAdd(e.Address, e.Names[0]);
            }
            // The turn carries over: a change elsewhere on the network does not send every name back to its first address.
            all[network] = new Snapshot(byName.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal), byAddress)
            {
                RoundRobin = all.TryGetValue(network, out var previous) ? Volatile.Read(ref previous.RoundRobin) : 0,
            };
        }
        else
        {
            all.Remove(network);
            _entries.Remove(network);
        }
        _snapshots = all.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
