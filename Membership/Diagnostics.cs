using Microsoft.Extensions.Logging;

namespace UserOverlay.Membership;

/// <summary>Why an incoming message was dropped. Each has a counter (<see cref="Memberlist.Drops"/>).</summary>
// WARNING: only append — values index the counter array and appear in metrics.
public enum DropReason
{
    /// <summary>Ended before its declared contents (truncated datagram, compound, msgpack or stream).</summary>
    Truncated = 0,
    /// <summary>Not a well-formed message (bad msgpack, wrong field types, invalid values).</summary>
    Malformed = 1,
    /// <summary>A message type we do not handle in that place.</summary>
    UnknownMessageType = 2,
    /// <summary>hasCrc checksum mismatch.</summary>
    BadChecksum = 3,
    /// <summary>No installed key authenticates it (wrong key, tampered).</summary>
    DecryptionFailed = 4,
    /// <summary>Plaintext while a keyring is set and incoming verification is on.</summary>
    NotEncrypted = 5,
    /// <summary>Encrypted while we have no keyring.</summary>
    EncryptedWithoutKey = 6,
    /// <summary>Larger than we accept (datagram, stream, decompressed size, node meta, node count).</summary>
    Oversized = 7,
    /// <summary>compress with an unknown algorithm or an invalid LZW stream.</summary>
    DecompressionFailed = 8,
    /// <summary>A ping addressed to another node name.</summary>
    WrongNode = 9,
    /// <summary>Handoff queue full (too much gossip to process).</summary>
    QueueFull = 10,
    /// <summary>Too many concurrent inbound push/pulls.</summary>
    TooManyPushPulls = 11,
    /// <summary>A push/pull from a member whose protocol versions are incompatible with the cluster.</summary>
    IncompatibleProtocol = 12,
    /// <summary>An ack or nack whose probe is no longer waiting (late or unknown sequence number).</summary>
    UnexpectedAck = 13,
    /// <summary>Nesting of compound/compress beyond what memberlist produces.</summary>
    TooDeep = 14,
    /// <summary>An alive message with an invalid address or versions.</summary>
    InvalidAlive = 15,
}

/// <summary>Per-reason drop counters. Thread-safe; reads are a snapshot of each counter.</summary>
public sealed class DropCounters
{
    private readonly long[] _counts = new long[Enum.GetValues<DropReason>().Length];

    /// <summary>Count for one reason.</summary>
    public long this[DropReason reason] => Interlocked.Read(ref _counts[(int)reason]);

    /// <summary>Total over all reasons.</summary>
    public long Total { get { long t = 0; for (int i = 0; i < _counts.Length; i++) t += Interlocked.Read(ref _counts[i]); return t; } }

    /// <summary>Non-zero counters.</summary>
    public IReadOnlyDictionary<DropReason, long> Snapshot()
    {
        var d = new Dictionary<DropReason, long>();
        foreach (var r in Enum.GetValues<DropReason>())
            if (this[r] is > 0 and var c) d[r] = c;
        return d;
    }

    internal void Increment(DropReason reason) => Interlocked.Increment(ref _counts[(int)reason]);

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", Snapshot().Select(kv => $"{kv.Key}={kv.Value}"));
}

/// <summary>Failure-detector activity counters of one member. Thread-safe.</summary>
public sealed class MembershipStats
{
    internal long _probes, _probesFailed, _indirectProbes, _tcpFallbackRescues, _suspicionsStarted, _declaredDead, _refutations;

    /// <summary>Probe rounds run.</summary>
    public long Probes => Interlocked.Read(ref _probes);
    /// <summary>Probes that ended in suspicion (no ack directly, indirectly or over TCP).</summary>
    public long ProbesFailed => Interlocked.Read(ref _probesFailed);
    /// <summary>Probes that needed indirect pings (the direct ack was late or lost).</summary>
    public long IndirectProbes => Interlocked.Read(ref _indirectProbes);
    /// <summary>Probes saved only by the TCP fallback ping.</summary>
    public long TcpFallbackRescues => Interlocked.Read(ref _tcpFallbackRescues);
    /// <summary>Suspicions this member started about others (its own probes or gossip).</summary>
    public long SuspicionsStarted => Interlocked.Read(ref _suspicionsStarted);
    /// <summary>Members this member marked dead (suspicion timeouts, gossip and push/pull).</summary>
    public long DeclaredDead => Interlocked.Read(ref _declaredDead);
    /// <summary>Accusations about this member it refuted.</summary>
    public long Refutations => Interlocked.Read(ref _refutations);

    /// <inheritdoc/>
    public override string ToString() => $"probes={Probes} failed={ProbesFailed} indirect={IndirectProbes} tcpRescues={TcpFallbackRescues} suspicions={SuspicionsStarted} dead={DeclaredDead} refutations={Refutations}";
}

/// <summary>Source-generated log messages. Event IDs are stable; retired ones stay as Reserved lines.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "{Self}: dropped a message from {From}: {Reason} ({Detail})")]
    public static partial void Dropped(ILogger logger, string self, string from, DropReason reason, string detail);

    [LoggerMessage(2, LogLevel.Information, "{Self}: suspect {Node} has failed, no acks received")]
    public static partial void SuspectNoAck(ILogger logger, string self, string node);

    [LoggerMessage(3, LogLevel.Information, "{Self}: marking {Node} as failed, suspect timeout reached ({Confirmations} peer confirmations)")]
    public static partial void MarkedDead(ILogger logger, string self, string node, int confirmations);

    [LoggerMessage(4, LogLevel.Warning, "{Self}: refuting a {Kind} message (from: {From})")]
    public static partial void Refuting(ILogger logger, string self, string kind, string from);

    [LoggerMessage(5, LogLevel.Warning, "{Self}: was able to connect to {Node} over TCP but UDP probes failed, network may be misconfigured")]
    public static partial void TcpOnly(ILogger logger, string self, string node);

    [LoggerMessage(6, LogLevel.Debug, "{Self}: push/pull with {Peer} failed: {Error}")]
    public static partial void PushPullFailed(ILogger logger, string self, string peer, string error);

    [LoggerMessage(7, LogLevel.Warning, "{Self}: conflicting address for {Node}: mine {Mine}, theirs {Theirs}")]
    public static partial void Conflict(ILogger logger, string self, string node, string mine, string theirs);

    [LoggerMessage(8, LogLevel.Debug, "{Self}: failed to join {Seed}: {Error}")]
    public static partial void JoinFailed(ILogger logger, string self, string seed, string error);

    [LoggerMessage(9, LogLevel.Information, "{Self}: {Node} ({Address}) joined")]
    public static partial void NodeJoined(ILogger logger, string self, string node, string address);

    [LoggerMessage(10, LogLevel.Information, "{Self}: {Node} is {State}")]
    public static partial void NodeGone(ILogger logger, string self, string node, MemberState state);

    [LoggerMessage(11, LogLevel.Error, "{Self}: a delegate threw")]
    public static partial void DelegateFailed(ILogger logger, string self, Exception error);

    [LoggerMessage(12, LogLevel.Debug, "{Self}: stream from {Peer} failed: {Error}")]
    public static partial void StreamFailed(ILogger logger, string self, string peer, string error);

    [LoggerMessage(13, LogLevel.Error, "{Self}: unexpected error while handling a message from {From}")]
    public static partial void HandlerFailed(ILogger logger, string self, string from, Exception error);
}
