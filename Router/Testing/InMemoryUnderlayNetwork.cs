using System.Collections.Concurrent;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An in-memory underlay network: every <see cref="InMemoryUnderlay"/> attached to it has a VTEP
/// address, and datagrams sent to an address are queued for the underlay attached there
/// (dropped when none is). Tests can also inject datagrams from any source address to play a
/// hostile or foreign VTEP. Thread-safe.
/// </summary>
public sealed class InMemoryUnderlayNetwork
{
    private readonly ConcurrentDictionary<VtepEndpoint, InMemoryUnderlay> _attached = new();

    /// <summary>Datagrams sent to an address nobody is attached to.</summary>
    public long Undeliverable;

    /// <summary>Attaches a new underlay at <paramref name="local"/>.</summary>
    public InMemoryUnderlay Attach(VtepEndpoint local)
    {
        var u = new InMemoryUnderlay(this, local);
        if (!_attached.TryAdd(local, u)) throw new InvalidOperationException($"{local} is already attached");
        return u;
    }

    internal void Detach(InMemoryUnderlay u) => _attached.TryRemove(u.LocalEndpoint, out _);

    /// <summary>Delivers <paramref name="payload"/> to whoever is attached at <paramref name="to"/>, as if sent from <paramref name="from"/>.</summary>
    public bool Deliver(VtepEndpoint from, VtepEndpoint to, ReadOnlySpan<byte> payload)
    {
        if (_attached.TryGetValue(to, out var u) && u.Enqueue(from, payload)) return true;
        Interlocked.Increment(ref Undeliverable);
        return false;
    }
}
