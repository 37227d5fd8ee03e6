using Microsoft.Extensions.Logging;

namespace UserOverlay.Membership;

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

    [LoggerMessage(14, LogLevel.Information, "{Self}: suspect {Node} has failed, no acks received and its TCP port refused the connection")]
    public static partial void SuspectRefused(ILogger logger, string self, string node);
}
