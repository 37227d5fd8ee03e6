using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Replication;

/// <summary>Settings of an <see cref="InMemoryLogGroup"/>.</summary>
public sealed record InMemoryLogGroupOptions
{
    /// <summary>How long a proposal waits before it fails with <see cref="StoreErrorCode.Unavailable"/> (an isolated member, an isolated leader).</summary>
    public TimeSpan ProposeTimeout { get; init; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// N members in one process sharing one ordered log, for testing what sits on an <see cref="IReplicatedLog"/>
/// without consensus: each member has its own state machine and applies the log in order on its own task (so a
/// follower may lag the proposer); any member may propose (a follower's proposal is "forwarded": appended to the
/// shared log) and returns once its own machine applied it. <see cref="SetLeader"/> moves leadership (raising
/// <see cref="IReplicatedLog.LeadershipChanged"/> on the old and the new leader), <see cref="Isolate"/> cuts a
/// member off (its proposals fail with <see cref="StoreErrorCode.Unavailable"/> after
/// <see cref="InMemoryLogGroupOptions.ProposeTimeout"/>, it applies nothing new; while the leader is isolated nobody
/// can propose) and <see cref="Heal"/> reconnects it, after which it catches up. The log is never compacted.
/// Thread-safety: all members may be called concurrently.
/// </summary>
public sealed class InMemoryLogGroup : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly List<byte[]> _entries = [];
    private readonly Member[] _members; // replaced only by RestartAsync
    private int _leader;

    private InMemoryLogGroup(int n, InMemoryLogGroupOptions options)
    {
        Options = options;
        _members = [.. Enumerable.Range(0, n).Select(i => new Member(this, i))];
    }

    /// <summary>A group of <paramref name="n"/> members; member 0 leads.</summary>
    public static InMemoryLogGroup Create(int n, InMemoryLogGroupOptions? options = null)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "a group has at least one member");
        return new InMemoryLogGroup(n, options ?? new InMemoryLogGroupOptions());
    }

    /// <summary>The settings.</summary>
    public InMemoryLogGroupOptions Options { get; }

    /// <summary>The members' logs, by number.</summary>
    public IReadOnlyList<IReplicatedLog> Members => _members;

    /// <summary>The leader's number.</summary>
    public int LeaderIndex { get { lock (_lock) return _leader; } }

    /// <summary>How many entries the log holds (the last committed index).</summary>
    public long CommittedIndex { get { lock (_lock) return _entries.Count; } }

    /// <summary>The index member <paramref name="i"/> has applied up to.</summary>
    public long AppliedIndex(int i) => Volatile.Read(ref _members[i].Applied);

    /// <summary>Makes member <paramref name="i"/> the leader.</summary>
    public void SetLeader(int i)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, _members.Length);
        int old;
        lock (_lock)
        {
            old = _leader;
            if (old == i) return;
            _leader = i;
        }
        _members[old].RaiseLeadership(false);
        _members[i].RaiseLeadership(true);
    }

    /// <summary>Cuts member <paramref name="i"/> off the others.</summary>
    public void Isolate(int i)
    {
        lock (_lock) _members[i].Isolated = true;
    }

    /// <summary>Reconnects member <paramref name="i"/>; it catches up with the log.</summary>
    public void Heal(int i)
    {
        lock (_lock) _members[i].Isolated = false;
        _members[i].Wake();
    }

    /// <summary>
    /// Replaces member <paramref name="i"/> (stopping the old one) with a fresh member that, when started, rebuilds its
    /// machine from the whole log, as a restarted replica replays its log; it keeps its leadership and isolation.
    /// </summary>
    public async ValueTask<IReplicatedLog> RestartAsync(int i)
    {
        var old = _members[i];
        await old.DisposeAsync().ConfigureAwait(false);
        var fresh = new Member(this, i) { Isolated = old.Isolated };
        lock (_lock) _members[i] = fresh;
        return fresh;
    }

    private bool CanPropose(Member m)
    {
        lock (_lock) return !m.Isolated && !_members[_leader].Isolated;
    }

    private long Append(byte[] command)
    {
        long index;
        lock (_lock)
        {
            _entries.Add(command);
            index = _entries.Count;
        }
        foreach (var m in _members) m.Wake();
        return index;
    }

    private byte[]? Entry(long index)
    {
        lock (_lock) return index <= _entries.Count ? _entries[(int)index - 1] : null;
    }

    /// <summary>Stops every member.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var m in _members) await m.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class Member(InMemoryLogGroup group, int number) : IReplicatedLog
    {
        private readonly SemaphoreSlim _wake = new(0);
        private readonly Lock _applyLock = new();
        private readonly CancellationTokenSource _stop = new();
        private IReplicatedStateMachine? _machine;
        private Task _applier = Task.CompletedTask;
        private TaskCompletionSource _applied = NewSignal();
        private int _state; // 0 new, 1 started, 2 disposed
        public long Applied;
        public bool Isolated;

        public string Location => $"memory-group:{number}";

        public bool IsLeader => group.LeaderIndex == number;

        public string? Leader => $"memory-group:{group.LeaderIndex}";

        public event Action<bool>? LeadershipChanged;

        public void RaiseLeadership(bool leader)
        {
            if (Volatile.Read(ref _state) == 1) LeadershipChanged?.Invoke(leader);
        }

        public void Wake()
        {
            if (Volatile.Read(ref _state) == 1) _wake.Release();
        }

        public ValueTask StartAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(machine);
            if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) throw new InvalidOperationException($"{Location}: started already or disposed");
            _machine = machine;
            CatchUp();
            _applier = Task.Run(ApplyLoopAsync, CancellationToken.None);
            if (IsLeader) LeadershipChanged?.Invoke(true);
            return ValueTask.CompletedTask;
        }

        private async Task ApplyLoopAsync()
        {
            while (true)
            {
                try { await _wake.WaitAsync(_stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                CatchUp();
            }
        }

        private void CatchUp()
        {
            bool any = false;
            lock (_applyLock)
            {
                while (!Volatile.Read(ref Isolated) && group.Entry(Applied + 1) is { } entry)
                {
                    _machine!.Apply(Applied + 1, entry);
                    Volatile.Write(ref Applied, Applied + 1);
                    any = true;
                }
            }
            if (any) Interlocked.Exchange(ref _applied, NewSignal()).TrySetResult();
        }

        public async ValueTask ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default)
        {
            switch (Volatile.Read(ref _state))
            {
                case 0: throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: not started");
                case 2: throw new StoreException(StoreErrorCode.Closed, $"{Location}: closed");
            }
            var timeout = group.Options.ProposeTimeout;
            if (!group.CanPropose(this))
            {
                await Task.Delay(timeout, cancellationToken).ConfigureAwait(false);
                throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: no leader answered within {timeout.TotalMilliseconds} ms");
            }
            long index = group.Append(command.ToArray());
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            deadline.CancelAfter(timeout);
            while (Volatile.Read(ref Applied) < index)
            {
                var signal = Volatile.Read(ref _applied).Task;
                if (Volatile.Read(ref Applied) >= index) break;
                try { await signal.WaitAsync(deadline.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    if (_stop.IsCancellationRequested) throw new StoreException(StoreErrorCode.Closed, $"{Location}: closed");
                    throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: entry {index} was not applied here within {timeout.TotalMilliseconds} ms (it may be later)");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _state, 2) == 2) return;
            _stop.Cancel();
            await _applier.ConfigureAwait(false);
        }

        private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
