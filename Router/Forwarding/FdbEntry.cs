using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Forwarding;

/// <summary>
/// An FDB entry: a MAC on one network is behind a local port or a remote VTEP. Immutable except the two stamps
/// <see cref="LastSeen"/> and <see cref="UnansweredSince"/>, which the workers refresh in place (benign races: any
/// recent stamp will do; each is rewritten at most every <see cref="Constants.StampGranularityMilliseconds"/>).
/// </summary>
internal sealed class FdbEntry(ulong mac, EntrySource source, LocalPort? port, VtepEndpoint remote, long now)
{
    public readonly ulong Mac = mac;
    public readonly EntrySource Source = source;
    /// <summary>The local port, or null for a remote entry.</summary>
    public readonly LocalPort? Port = port;
    /// <summary>The remote VTEP (meaningful when <see cref="Port"/> is null).</summary>
    public readonly VtepEndpoint Remote = remote;
    /// <summary>
    /// Environment.TickCount64 of the last frame that confirmed the entry: a frame received from the MAC (through its
    /// VTEP, for a remote entry). Sending to the MAC never refreshes it, so traffic into the void cannot keep it alive.
    /// </summary>
    public long LastSeen = now;
    /// <summary>
    /// For a learned remote entry: when the router first sent to the MAC after <see cref="LastSeen"/>, i.e. since when
    /// the MAC owes an answer. Meaningful only while it is later than <see cref="LastSeen"/>; 0 until the first send.
    /// The housekeeping sweep removes the entry when the answer is <see cref="RouterOptions.UnansweredAging"/> late and
    /// the VTEP has been silent as long (see <see cref="ForwardingState.Sweep"/>).
    /// </summary>
    public long UnansweredSince;

    /// <summary>Learned entries (local or remote) age out; configured ones do not.</summary>
    public bool Ages => Source == EntrySource.Learned;

    /// <summary>
    /// Called by a worker that sends a frame to this entry's VTEP: stamps the first send since the MAC was last heard.
    /// Writes at most every <see cref="Constants.StampGranularityMilliseconds"/>, and only after <see cref="Seen"/> moved
    /// <see cref="LastSeen"/> past the previous stamp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Sent(long now)
    {
        long since = Volatile.Read(ref UnansweredSince);
        if (Source == EntrySource.Learned && since <= Volatile.Read(ref LastSeen) && now - since >= Constants.StampGranularityMilliseconds)
            Volatile.Write(ref UnansweredSince, now);
    }

    /// <summary>
    /// Called by a worker that received a frame from the MAC (through <see cref="Remote"/>, or from its port): refreshes
    /// <see cref="LastSeen"/> when it is <see cref="Constants.StampGranularityMilliseconds"/> old, or at once when a send
    /// is waiting for this answer. Together with <see cref="Sent"/>, a flow in both directions writes each stamp about
    /// ten times a second.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Seen(long now)
    {
        long seen = Volatile.Read(ref LastSeen), sent = Volatile.Read(ref UnansweredSince);
        // max: a worker whose wake began before another's send still answers it (its `now` may be a little older).
        if (now - seen >= Constants.StampGranularityMilliseconds || sent > seen) Volatile.Write(ref LastSeen, Math.Max(now, sent));
    }

    /// <summary>Whether a send has waited for an answer from the MAC since <paramref name="since"/> or earlier.</summary>
    public bool UnansweredBefore(long since)
    {
        long sent = Volatile.Read(ref UnansweredSince);
        return sent > Volatile.Read(ref LastSeen) && sent <= since;
    }
}
