namespace UserOverlay.Router.Forwarding;

/// <summary>
/// An FDB entry: a MAC on one network is behind a local port or a remote VTEP. Immutable except
/// <see cref="LastSeen"/>, which readers refresh in place (benign race: any recent stamp will do).
/// </summary>
internal sealed class FdbEntry(ulong mac, EntrySource source, LocalPort? port, VtepEndpoint remote, long now)
{
    public readonly ulong Mac = mac;
    public readonly EntrySource Source = source;
    /// <summary>The local port, or null for a remote entry.</summary>
    public readonly LocalPort? Port = port;
    /// <summary>The remote VTEP (meaningful when <see cref="Port"/> is null).</summary>
    public readonly VtepEndpoint Remote = remote;
    /// <summary>Environment.TickCount64 of the last frame that confirmed the entry.</summary>
    public long LastSeen = now;

    /// <summary>Learned entries (local or remote) age out; configured ones do not.</summary>
    public bool Ages => Source == EntrySource.Learned;
}
