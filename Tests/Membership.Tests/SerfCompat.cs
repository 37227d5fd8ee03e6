using System.Net;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// What serf expects of a member beyond memberlist, implemented on our public API the way an
/// embedder would: serf tags in the node meta (0xff + msgpack map), a delegate protocol range
/// serf accepts (2–5), and serf's leave intent (user message type 0) before a graceful leave,
/// without which serf records a bare memberlist leave as "failed".
/// </summary>
public sealed class SerfCompat : IMembershipDelegate, IBroadcastSource
{
    private readonly string _name;
    private long _ltime;

    public SerfCompat(string name)
    {
        _name = name;
        Queue = new TransmitLimitedQueue(() => 3, 4);
    }

    internal TransmitLimitedQueue Queue { get; }

    public static MembershipOptions Options(string name, IPAddress ip, Keyring? key = null)
    {
        var compat = new SerfCompat(name);
        return MembershipOptions.DefaultLocal() with
        {
            Name = name,
            BindAddress = ip,
            BindPort = SerfAgent.FreePort(ip),
            Keyring = key,
            DelegateProtocolMin = 2,
            DelegateProtocolMax = 5,
            DelegateProtocolVersion = 4,
            Delegate = compat,
            Broadcasts = compat,
        };
    }

    public int WriteNodeMeta(Span<byte> destination)
    {
        var w = new MsgPackWriter();
        w.WriteByte(0xff);          // serf's tag magic
        w.WriteMapHeader(1);
        w.WriteString("role");
        w.WriteString("useroverlay");
        w.WrittenSpan.CopyTo(destination);
        return w.Length;
    }

    public void OnUserMessage(ReadOnlySpan<byte> message)
    {
        // serf join (1) and leave (0) intents carry {LTime, Node}: witness the Lamport time.
        if (message.Length < 2 || message[0] > 1) return;
        try
        {
            var r = new MsgPackReader(message[1..]);
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                if (r.ReadString() == "LTime") { long t = r.ReadInt64(); InterlockedMax(t); }
                else r.Skip();
            }
        }
        catch (MsgPackException) { }
    }

    private void InterlockedMax(long t)
    {
        long cur;
        while ((cur = Interlocked.Read(ref _ltime)) < t && Interlocked.CompareExchange(ref _ltime, t, cur) != cur) { }
    }

    public IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit) => Queue.GetBroadcasts(overhead, limit);

    /// <summary>Queues serf's leave intent and completes once it has been gossiped.</summary>
    public Task LeaveIntentAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var w = new MsgPackWriter();
        w.WriteByte(0); // serf messageLeaveType
        w.WriteMapHeader(3);
        w.WriteString("LTime"); w.WriteUInt((ulong)Interlocked.Increment(ref _ltime));
        w.WriteString("Node"); w.WriteString(_name);
        w.WriteString("Prune"); w.WriteBool(false);
        Queue.Queue(w.ToArray(), "leave", () => done.TrySetResult());
        return done.Task;
    }
}
