using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Replication;

/// <summary>Settings of a <see cref="LocalLog"/>.</summary>
public sealed record LocalLogOptions
{
    /// <summary>Entries between snapshots (after one, the write-ahead log is emptied).</summary>
    public int SnapshotEvery { get; init; } = 10_000;

    /// <summary>The largest command accepted, in bytes (a store transaction is at most <see cref="StoreLimits.MaxTxnBytes"/> plus framing).</summary>
    public int MaxEntryBytes { get; init; } = 8 << 20;

    /// <summary>The most proposals written with one fsync.</summary>
    public int MaxBatch { get; init; } = 1024;
}

/// <summary>
/// An <see cref="IReplicatedLog"/> of one member, always the leader: for a single manager, embedders and tests.
/// <para>
/// Without a directory it lives in memory: a proposal is applied at once, under a lock. With a directory it is
/// durable: proposals are appended to <c>wal</c> as frames
/// <c>length:u32 crc32c:u32 index:i64 command</c> (little-endian; the CRC-32C covers index and command), and a
/// proposal returns only after the frame is fsynced and the machine has applied it; proposals that arrive together
/// share one fsync. Every <see cref="LocalLogOptions.SnapshotEvery"/> entries the machine's state is written to
/// <c>snapshot</c> (through <c>snapshot.tmp</c>, fsync, rename, fsync of the directory) and the WAL is emptied.
/// At start the snapshot is loaded and the WAL replayed; a torn last frame (a crash mid-write: cut short, or with a
/// bad CRC and nothing after it, or zeros to the end) is cut off, while a damaged frame with more after it stops the
/// start with a message naming the file and offset. A <c>lock</c> file (an exclusive lock) keeps a second process
/// from opening the same directory.
/// </para>
/// <para>Thread-safety: <see cref="ProposeAsync"/> may be called concurrently; the machine is applied from one thread at a time.</para>
/// </summary>
public sealed partial class LocalLog : IReplicatedLog
{
    private const int FrameHeader = 16;
    private static ReadOnlySpan<byte> SnapshotMagic => "UOLS"u8;
    private const int SnapshotHeader = 4 + 4 + 8 + 8 + 4;

    private readonly string? _directory;
    private readonly LocalLogOptions _options;
    private readonly Lock _applyLock = new();
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private IReplicatedStateMachine? _machine;
    private FileStream? _lockFile, _wal;
    private Task _writer = Task.CompletedTask;
    private long _index, _snapshotIndex;
    private int _state; // 0 new, 1 started, 2 disposed

    private sealed record Pending(byte[] Command, TaskCompletionSource Done);

    /// <summary>A log in <paramref name="directory"/> (created, mode 0700), or in memory when it is null.</summary>
    public LocalLog(string? directory, LocalLogOptions? options = null)
    {
        _options = options ?? new LocalLogOptions();
        if (_options.SnapshotEvery < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.SnapshotEvery, "SnapshotEvery: at least 1");
        if (_options.MaxBatch < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.MaxBatch, "MaxBatch: at least 1");
        if (directory is not null && directory.Length == 0) throw new ArgumentException("directory: empty (pass null for a log in memory)", nameof(directory));
        _directory = directory is null ? null : Path.GetFullPath(directory);
    }

    /// <inheritdoc/>
    public string Location => _directory is null ? "memory" : "local:" + _directory;

    /// <inheritdoc/>
    public bool IsLeader => Volatile.Read(ref _state) == 1;

    /// <inheritdoc/>
    public string? Leader => IsLeader ? "local" : null;

    /// <inheritdoc/>
    public event Action<bool>? LeadershipChanged;

    /// <summary>The index of the last applied entry.</summary>
    public long Index { get { lock (_applyLock) return _index; } }

    /// <summary>The index the last snapshot covers (0: none).</summary>
    public long SnapshotIndex { get { lock (_applyLock) return _snapshotIndex; } }

    /// <summary>Torn frames cut off the WAL's end at the last start.</summary>
    public int TornEntriesRecovered { get; private set; }

    /// <summary>What the last start cut off the WAL, for the log (null: nothing).</summary>
    public string? Recovery { get; private set; }

    /// <summary>Times proposals were written with one fsync (durable logs only).</summary>
    public long Fsyncs { get; private set; }

    private string WalPath => Path.Combine(_directory!, "wal");

    private string SnapshotPath => Path.Combine(_directory!, "snapshot");

    /// <inheritdoc/>
    /// <exception cref="IOException">The directory is in use by another process, or cannot be read or written.</exception>
    /// <exception cref="InvalidDataException">The snapshot or a WAL frame before the last is damaged (the message names file and offset).</exception>
    public ValueTask StartAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
            throw new InvalidOperationException($"{Location}: started already or disposed");
        _machine = machine;
        if (_directory is not null)
        {
            try { OpenDirectory(machine); }
            catch
            {
                _wal?.Dispose();
                _lockFile?.Dispose();
                Volatile.Write(ref _state, 2);
                throw;
            }
            _writer = Task.Run(WriteLoopAsync, CancellationToken.None);
        }
        LeadershipChanged?.Invoke(true);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public async ValueTask ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default)
    {
        switch (Volatile.Read(ref _state))
        {
            case 0: throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: the log is not started");
            case 2: throw new StoreException(StoreErrorCode.Closed, $"{Location}: the log is closed");
        }
        if (command.Length > _options.MaxEntryBytes)
            throw new StoreException(StoreErrorCode.TooLarge, $"command: {command.Length} bytes exceed the log's {_options.MaxEntryBytes}");
        cancellationToken.ThrowIfCancellationRequested();
        if (_directory is null)
        {
            lock (_applyLock)
            {
                if (Volatile.Read(ref _state) != 1) throw new StoreException(StoreErrorCode.Closed, $"{Location}: the log is closed");
                _machine!.Apply(++_index, command.Span);
            }
            return;
        }
        var pending = new Pending(command.ToArray(), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending)) throw new StoreException(StoreErrorCode.Closed, $"{Location}: the log is closed");
        await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Pending>();
        var header = new byte[FrameHeader];
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _options.MaxBatch && _queue.Reader.TryRead(out var p)) batch.Add(p);
            long start = _wal!.Length;
            try
            {
                long index = _index;
                foreach (var p in batch)
                {
                    index++;
                    WriteFrameHeader(header, index, p.Command);
                    _wal.Write(header);
                    _wal.Write(p.Command);
                }
                _wal.Flush(flushToDisk: true);
                Fsyncs++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                var error = new StoreException(StoreErrorCode.Unavailable, $"{WalPath}: cannot write the log: {e.Message}", e);
                try { _wal.SetLength(start); _wal.Flush(flushToDisk: true); }
                catch (IOException) { }
                foreach (var p in batch) p.Done.TrySetException(error);
                continue;
            }
            foreach (var p in batch)
            {
                try
                {
                    lock (_applyLock) _machine!.Apply(++_index, p.Command);
                    p.Done.TrySetResult();
                }
                catch (Exception e) { p.Done.TrySetException(new StoreException(StoreErrorCode.Unavailable, $"{Location}: the state machine failed at index {_index}: {e.Message}", e)); }
            }
            if (_index - _snapshotIndex >= _options.SnapshotEvery)
            {
                try { TakeSnapshot(); }
                catch (IOException) { } // the WAL still holds every entry: the next round tries again
            }
        }
    }

    private static void WriteFrameHeader(Span<byte> header, long index, ReadOnlySpan<byte> command)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)command.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], index);
        uint crc = Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Start, header[8..16]), command));
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], crc);
    }

    /// <summary>Writes the machine's state as the snapshot and empties the WAL (on the writer, between batches).</summary>
    private void TakeSnapshot()
    {
        using var payload = new MemoryStream();
        _machine!.WriteSnapshot(payload);
        var data = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        var header = new byte[SnapshotHeader];
        SnapshotMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), _index);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), Crc32C.Compute(data));
        string tmp = SnapshotPath + ".tmp";
        using (var f = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
            f.Write(header);
            f.Write(data);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, SnapshotPath, overwrite: true);
        FsyncDirectory(_directory!);
        lock (_applyLock) _snapshotIndex = _index;
        _wal!.SetLength(0);
        _wal.Flush(flushToDisk: true);
    }

    private void OpenDirectory(IReplicatedStateMachine machine)
    {
        Directory.CreateDirectory(_directory!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string lockPath = Path.Combine(_directory!, "lock");
        try
        {
            _lockFile = new FileStream(lockPath, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None, // an exclusive flock on Unix
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException e)
        {
            throw new IOException($"{_directory} is in use by another process (its lock file {lockPath} is held): stop it first", e);
        }
        File.Delete(SnapshotPath + ".tmp"); // a snapshot a crash interrupted; the WAL still has its entries
        if (File.Exists(SnapshotPath)) LoadSnapshot(machine);
        _wal = new FileStream(WalPath, new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        Replay(machine);
        _wal.Seek(0, SeekOrigin.End);
        FsyncDirectory(_directory!); // the WAL's (and the lock's) directory entries, when they were just created
    }

    private void LoadSnapshot(IReplicatedStateMachine machine)
    {
        var bytes = File.ReadAllBytes(SnapshotPath);
        string Damaged(string why) => $"{SnapshotPath}: the snapshot is damaged ({why}); restore the directory from a backup";
        if (bytes.Length < SnapshotHeader || !bytes.AsSpan(0, 4).SequenceEqual(SnapshotMagic))
            throw new InvalidDataException(Damaged("not a snapshot file"));
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4));
        if (version != 1) throw new InvalidDataException(Damaged($"version {version} is not 1"));
        long index = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8));
        long length = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16));
        if (length != bytes.Length - SnapshotHeader) throw new InvalidDataException(Damaged($"{bytes.Length - SnapshotHeader} bytes where the header says {length}"));
        var data = bytes.AsMemory(SnapshotHeader);
        if (Crc32C.Compute(data.Span) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)))
            throw new InvalidDataException(Damaged("CRC mismatch"));
        try { machine.ReadSnapshot(new MemoryStream(bytes, SnapshotHeader, bytes.Length - SnapshotHeader, writable: false)); }
        catch (InvalidDataException e) { throw new InvalidDataException(Damaged(e.Message), e); }
        _index = _snapshotIndex = index;
    }

    private void Replay(IReplicatedStateMachine machine)
    {
        var wal = _wal!;
        long length = wal.Length, at = 0;
        var header = new byte[FrameHeader];
        wal.Seek(0, SeekOrigin.Begin);
        long? previous = null;
        while (at < length)
        {
            if (length - at < FrameHeader)
            {
                Torn(at, "a frame header cut short");
                return;
            }
            wal.ReadExactly(header);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(header);
            long index = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
            if (size > (uint)_options.MaxEntryBytes)
            {
                if (ZerosFrom(at)) { Torn(at, "zeros to the end"); return; }
                throw Corrupt(at, $"a frame claims {size} bytes, more than the {_options.MaxEntryBytes} allowed");
            }
            long end = at + FrameHeader + size;
            if (end > length)
            {
                Torn(at, "a frame cut short");
                return;
            }
            var command = new byte[size];
            wal.ReadExactly(command);
            uint crc = Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Start, header.AsSpan(8, 8)), command));
            if (crc != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)))
            {
                if (end == length || ZerosFrom(at)) { Torn(at, "a bad CRC on the last frame"); return; }
                throw Corrupt(at, $"CRC mismatch on the frame of index {index}, with {length - end} bytes after it");
            }
            if (previous is { } p && index != p + 1)
                throw Corrupt(at, $"index {index} follows {p}");
            previous = index;
            if (index > _index)
            {
                if (index != _index + 1) throw Corrupt(at, $"index {index} follows {_index} (entries are missing)");
                machine.Apply(index, command);
                _index = index;
            }
            at = end;
            wal.Seek(at, SeekOrigin.Begin);
        }
    }

    private bool ZerosFrom(long at)
    {
        var wal = _wal!;
        long keep = wal.Position;
        wal.Seek(at, SeekOrigin.Begin);
        var buffer = new byte[64 * 1024];
        bool zeros = true;
        int n;
        while (zeros && (n = wal.Read(buffer)) > 0)
            zeros = !buffer.AsSpan(0, n).ContainsAnyExcept((byte)0);
        wal.Seek(keep, SeekOrigin.Begin);
        return zeros;
    }

    private void Torn(long at, string why)
    {
        TornEntriesRecovered++;
        Recovery = $"{WalPath}: cut at offset {at} ({why})";
        _wal!.SetLength(at);
        _wal.Flush(flushToDisk: true);
    }

    private InvalidDataException Corrupt(long at, string why) =>
        new($"{WalPath}: the write-ahead log is damaged at offset {at}: {why}. This is not a torn write from a crash (more follows); " +
            "restore the directory from a backup, or move it away to start with an empty store");

    private static void FsyncDirectory(string directory)
    {
        int fd = Open(directory, ORdOnly);
        if (fd < 0) throw new IOException($"{directory}: cannot open the directory to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"{directory}: fsync failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally { _ = Close(fd); }
    }

    private const int ORdOnly = 0; // a directory opens read-only for fsync

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    /// <summary>Stops the log: waits for the proposals already queued to be written and applied, then releases the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        int was = Interlocked.Exchange(ref _state, 2);
        if (was == 2) return;
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        lock (_applyLock) { }
        _wal?.Dispose();
        _lockFile?.Dispose();
        if (was == 1) LeadershipChanged?.Invoke(false);
    }
}
