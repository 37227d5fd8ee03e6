namespace UserOverlay.Membership;

/// <summary>
/// A gossip broadcast queue with memberlist's retransmit policy: every message is piggybacked at most
/// <c>RetransmitMult · ceil(log10(n + 1))</c> times (n = current member count), least-transmitted first
/// (then larger first, then newest first), and a newer message with the same name replaces the older
/// one. Thread-safe; <c>finished</c> callbacks run outside the lock on the thread that retired the message.
/// </summary>
internal sealed class TransmitLimitedQueue : IBroadcastSource
{
    private sealed class Item(byte[] msg, string? name, Action? finished, long id)
    {
        public readonly byte[] Msg = msg;
        public readonly string? Name = name;
        public readonly Action? Finished = finished;
        public readonly long Id = id;
        public int Transmits;
    }

    private readonly Func<int> _numNodes;
    private readonly List<Item> _items = [];
    private long _idGen;

    /// <summary>Creates a queue. <paramref name="numNodes"/> gives the current member count (called under the queue's lock: keep it cheap).</summary>
    public TransmitLimitedQueue(Func<int> numNodes, int retransmitMult)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retransmitMult, 1);
        _numNodes = numNodes;
        RetransmitMult = retransmitMult;
    }

    /// <summary>Multiplier of the retransmit limit (memberlist's RetransmitMult).</summary>
    public int RetransmitMult { get; }

    /// <summary>Messages waiting.</summary>
    public int Count { get { lock (_items) return _items.Count; } }

    /// <summary>Retransmit limit for <paramref name="n"/> members: <c>mult · ceil(log10(n + 1))</c>.</summary>
    public static int RetransmitLimit(int retransmitMult, int n) =>
        retransmitMult * (int)Math.Ceiling(Math.Log10(n + 1));

    /// <summary>
    /// Queues <paramref name="message"/>. A queued message with the same non-null <paramref name="name"/>
    /// is dropped (its <c>finished</c> runs). <paramref name="finished"/> runs once the message has been
    /// sent the retransmit limit, or was replaced, or the queue was reset.
    /// </summary>
    public void Queue(byte[] message, string? name = null, Action? finished = null)
    {
        List<Action>? done = null;
        lock (_items)
        {
            if (name is not null)
            {
                for (int i = _items.Count - 1; i >= 0; i--)
                {
                    if (_items[i].Name == name)
                    {
                        if (_items[i].Finished is { } f) (done ??= []).Add(f);
                        _items.RemoveAt(i);
                    }
                }
            }
            _items.Add(new Item(message, name, finished, ++_idGen));
        }
        Run(done);
    }

    /// <inheritdoc/>
    public IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit)
    {
        List<byte[]> result = [];
        List<Action>? done = null;
        lock (_items)
        {
            if (_items.Count == 0) return result;
            int transmitLimit = RetransmitLimit(RetransmitMult, _numNodes());
            _items.Sort(static (a, b) =>
                a.Transmits != b.Transmits ? a.Transmits.CompareTo(b.Transmits)
                : a.Msg.Length != b.Msg.Length ? b.Msg.Length.CompareTo(a.Msg.Length)
                : b.Id.CompareTo(a.Id));
            int used = 0;
            for (int i = 0; i < _items.Count; i++)
            {
                var it = _items[i];
                if (used + overhead + it.Msg.Length > limit) continue;
                used += overhead + it.Msg.Length;
                result.Add(it.Msg);
                it.Transmits++;
            }
            for (int i = _items.Count - 1; i >= 0; i--)
            {
                if (_items[i].Transmits >= transmitLimit)
                {
                    if (_items[i].Finished is { } f) (done ??= []).Add(f);
                    _items.RemoveAt(i);
                }
            }
        }
        Run(done);
        return result;
    }

    /// <summary>Keeps only the <paramref name="maxRetain"/> least-transmitted messages.</summary>
    public void Prune(int maxRetain)
    {
        List<Action>? done = null;
        lock (_items)
        {
            if (_items.Count <= maxRetain) return;
            _items.Sort(static (a, b) => a.Transmits != b.Transmits ? a.Transmits.CompareTo(b.Transmits) : b.Id.CompareTo(a.Id));
            for (int i = _items.Count - 1; i >= maxRetain; i--)
            {
                if (_items[i].Finished is { } f) (done ??= []).Add(f);
                _items.RemoveAt(i);
            }
        }
        Run(done);
    }

    /// <summary>Drops everything (running <c>finished</c> callbacks).</summary>
    public void Reset()
    {
        List<Action> done;
        lock (_items)
        {
            done = _items.Where(i => i.Finished is not null).Select(i => i.Finished!).ToList();
            _items.Clear();
        }
        Run(done);
    }

    private static void Run(List<Action>? callbacks)
    {
        if (callbacks is null) return;
        foreach (var f in callbacks) f();
    }
}
