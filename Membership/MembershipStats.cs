namespace UserOverlay.Membership;

/// <summary>Failure-detector activity counters of one member. Thread-safe.</summary>
public sealed class MembershipStats
{
    internal long _probes, _probesFailed, _indirectProbes, _tcpFallbackRescues, _suspicionsStarted, _declaredDead, _refutations, _probesRefused;

    /// <summary>Probe rounds run.</summary>
    public long Probes => Interlocked.Read(ref _probes);
    /// <summary>Probes that ended in suspicion (no ack directly, indirectly or over TCP).</summary>
    public long ProbesFailed => Interlocked.Read(ref _probesFailed);
    /// <summary>Probes that needed indirect pings (the direct ack was late or lost).</summary>
    public long IndirectProbes => Interlocked.Read(ref _indirectProbes);
    /// <summary>Failed probes whose TCP fallback was refused (the member's process is gone): their suspicion ends after <see cref="MembershipOptions.RefusedProbeSuspicionTimeout"/>.</summary>
    public long ProbesRefused => Interlocked.Read(ref _probesRefused);
    /// <summary>Probes saved only by the TCP fallback ping.</summary>
    public long TcpFallbackRescues => Interlocked.Read(ref _tcpFallbackRescues);
    /// <summary>Suspicions this member started about others (its own probes or gossip).</summary>
    public long SuspicionsStarted => Interlocked.Read(ref _suspicionsStarted);
    /// <summary>Members this member marked dead (suspicion timeouts, gossip and push/pull).</summary>
    public long DeclaredDead => Interlocked.Read(ref _declaredDead);
    /// <summary>Accusations about this member it refuted.</summary>
    public long Refutations => Interlocked.Read(ref _refutations);

    /// <inheritdoc/>
    public override string ToString() => $"probes={Probes} failed={ProbesFailed} refused={ProbesRefused} indirect={IndirectProbes} tcpRescues={TcpFallbackRescues} suspicions={SuspicionsStarted} dead={DeclaredDead} refutations={Refutations}";
}
