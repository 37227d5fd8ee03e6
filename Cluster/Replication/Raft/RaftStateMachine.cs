using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>
/// DotNext's side of the <see cref="IReplicatedStateMachine"/>: DotNext's <see cref="WriteAheadLog"/> calls it in log
/// order, one entry at a time; it unframes each entry (<see cref="RaftEntry"/>), hands commands to the machine, keeps
/// the member records itself, and every <c>snapshotEvery</c> entries lets <see cref="SimpleStateMachine"/> persist a
/// snapshot (its file: <c>RORS | version | member records | the machine's own snapshot</c>). Proposers wait here for
/// their entry (by proposal id).
/// </summary>
internal sealed class RaftStateMachine : SimpleStateMachine
{
    private static ReadOnlySpan<byte> SnapshotMagic => "RORS"u8;
    private const byte SnapshotVersion = 1;

    private readonly IReplicatedStateMachine machine;
    private readonly int snapshotEvery;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<long>> waiters = new();
    private long sinceSnapshot;
    private volatile ImmutableDictionary<string, string> members = ImmutableDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);
    private long malformedEntries, applyFailures, snapshotsTaken, snapshotsRestored;

    /// <summary>Makes the adapter; call <see cref="SimpleStateMachine.RestoreAsync(CancellationToken)"/> before handing it to the log.</summary>
    public RaftStateMachine(DirectoryInfo snapshotDirectory, IReplicatedStateMachine machine, int snapshotEvery)
        : base(snapshotDirectory)
    {
        this.machine = machine;
        this.snapshotEvery = snapshotEvery;
    }

    /// <summary>The member records (node id → Raft address), as of the last applied entry.</summary>
    public ImmutableDictionary<string, string> Members => members;

    /// <summary>Entries that were not in <see cref="RaftEntry"/>'s layout (dropped).</summary>
    public long MalformedEntries => Interlocked.Read(ref malformedEntries);

    /// <summary>Commands whose <see cref="IReplicatedStateMachine.Apply"/> threw (against its contract; counted and passed over).</summary>
    public long ApplyFailures => Interlocked.Read(ref applyFailures);

    /// <summary>Snapshots written.</summary>
    public long SnapshotsTaken => Interlocked.Read(ref snapshotsTaken);

    /// <summary>Snapshots loaded (at start and when the leader sent one).</summary>
    public long SnapshotsRestored => Interlocked.Read(ref snapshotsRestored);

    /// <summary>
    /// Starts waiting for the entry with <paramref name="proposalId"/> (or joins the wait already started for it:
    /// <paramref name="created"/> false); the task yields the entry's index once applied.
    /// </summary>
    public Task<long> Expect(ulong proposalId, out bool created)
    {
        var waiter = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        TaskCompletionSource<long> current = waiters.GetOrAdd(proposalId, waiter);
        created = ReferenceEquals(current, waiter);
        return current.Task;
    }

    /// <summary>Stops waiting for <paramref name="proposalId"/>.</summary>
    public void Forget(ulong proposalId) => waiters.TryRemove(proposalId, out _);

    /// <summary>Fails every waiter (the log is closing).</summary>
    public void FailWaiters(Exception reason)
    {
        foreach (ulong id in waiters.Keys)
            if (waiters.TryRemove(id, out var waiter))
                waiter.TrySetException(reason);
    }

    /// <inheritdoc/>
    protected override ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        if (!entry.IsConfiguration)
        {
            ReadOnlySpan<byte> payload;
            if (entry.TryGetPayload(out ReadOnlySequence<byte> sequence) && sequence.IsSingleSegment)
            {
                payload = sequence.FirstSpan;
            }
            else
            {
                // Not one contiguous segment: gather it (entries are small; this is the rare path).
                var writer = new ArrayBufferWriter<byte>();
                foreach (ReadOnlyMemory<byte> chunk in entry.GetPayload())
                    writer.Write(chunk.Span);
                payload = writer.WrittenSpan;
            }
            if (!payload.IsEmpty) // empty: the leader's no-op at the start of its term
                Apply(entry.Index, payload);
        }
        if (++sinceSnapshot < snapshotEvery)
            return ValueTask.FromResult(false);
        sinceSnapshot = 0;
        Interlocked.Increment(ref snapshotsTaken);
        return ValueTask.FromResult(true);
    }

    private void Apply(long index, ReadOnlySpan<byte> payload)
    {
        if (!RaftEntry.TryReadHeader(payload, out RaftEntryKind kind, out ulong proposalId, out ReadOnlySpan<byte> body))
        {
            Interlocked.Increment(ref malformedEntries);
            return;
        }
        switch (kind)
        {
            case RaftEntryKind.Command:
                try
                {
                    machine.Apply(index, body);
                }
                catch (Exception)
                {
                    // The machine's contract forbids throwing; a throw here would stop DotNext's applier for good.
                    Interlocked.Increment(ref applyFailures);
                }
                break;
            case RaftEntryKind.MemberSet:
                if (RaftEntry.TryReadString(ref body, out string id) && RaftEntry.TryReadString(ref body, out string address))
                    members = members.SetItem(id, address);
                else
                    Interlocked.Increment(ref malformedEntries);
                break;
            case RaftEntryKind.MemberRemove:
                if (RaftEntry.TryReadString(ref body, out string removed))
                    members = members.Remove(removed);
                else
                    Interlocked.Increment(ref malformedEntries);
                break;
        }
        if (waiters.TryRemove(proposalId, out var waiter))
            waiter.TrySetResult(index);
    }

    /// <inheritdoc/>
    protected override async ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token)
    {
        // DotNext runs this between two applies (the next one waits for it), so the machine is quiet meanwhile.
        using var buffer = new MemoryStream();
        buffer.Write(SnapshotMagic);
        buffer.WriteByte(SnapshotVersion);
        ImmutableDictionary<string, string> records = members;
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(count, records.Count);
        buffer.Write(count);
        foreach ((string id, string address) in records.OrderBy(static pair => pair.Key, StringComparer.Ordinal))
        {
            WriteString(buffer, id);
            WriteString(buffer, address);
        }
        machine.WriteSnapshot(buffer);
        await writer.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), null, token).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        await using var stream = new FileStream(snapshotFile.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
        var header = new byte[SnapshotMagic.Length + 1 + 4];
        stream.ReadExactly(header);
        if (!header.AsSpan(0, SnapshotMagic.Length).SequenceEqual(SnapshotMagic) || header[SnapshotMagic.Length] != SnapshotVersion)
            throw new InvalidDataException($"raft snapshot {snapshotFile.FullName}: not a version {SnapshotVersion} snapshot of this log");
        int count = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(SnapshotMagic.Length + 1));
        if (count < 0 || count > 100_000)
            throw new InvalidDataException($"raft snapshot {snapshotFile.FullName}: member count {count} out of range");
        var records = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string id = ReadString(stream, snapshotFile);
            records[id] = ReadString(stream, snapshotFile);
        }
        machine.ReadSnapshot(stream);
        members = records.ToImmutable();
        sinceSnapshot = 0;
        Interlocked.Increment(ref snapshotsRestored);
    }

    private static void WriteString(Stream stream, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)bytes.Length);
        stream.Write(length);
        stream.Write(bytes);
    }

    private static string ReadString(Stream stream, FileInfo file)
    {
        Span<byte> length = stackalloc byte[2];
        stream.ReadExactly(length);
        int n = BinaryPrimitives.ReadUInt16LittleEndian(length);
        if (n == 0 || n > RaftEntry.MaxIdLength * 4)
            throw new InvalidDataException($"raft snapshot {file.FullName}: member record length {n} out of range");
        var bytes = new byte[n];
        stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }
}
