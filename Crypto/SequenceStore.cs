using System.Globalization;
using System.Text;

namespace UserOverlay.Crypto;

/// <summary>One durable reservation: SA <paramref name="RecordId"/> of <paramref name="Epoch"/> may use numbers up to <paramref name="Through"/>.</summary>
public readonly record struct SequenceReservation(string RecordId, long Epoch, ulong Through);

/// <summary>
/// Durable memory of outbound sequence numbers, so that a restarted host never seals two packets with the same
/// (key, sequence number) — hence never reuses a GCM nonce. SA keys are derived deterministically, so a restart
/// within an epoch yields the same key; the store tells the new run where the old one may have got to.
/// </summary>
/// <remarks>
/// The same records also hold, per inbound SA, the highest sequence number accepted
/// (<see cref="EspOptions.ReplayStateSaveInterval"/>), so a restarted receiver does not accept old packets again.
/// Protocol: before sealing with numbers up to N the database calls <see cref="Reserve"/>(id, epoch, N) and waits
/// for it to return; a later run starts at <see cref="GetReserved"/>(id) + 1. Blocks are large (see
/// <see cref="EspOptions.SequenceReservationBlock"/>), so a busy SA writes rarely; a restart skips the unused rest of
/// its last block, which is harmless. Implementations must be thread-safe (called from the rotation thread and from
/// thread-pool reservation work) and must make <see cref="Reserve"/> durable before returning.
/// </remarks>
public interface ISequenceStore
{
    /// <summary>Highest sequence number ever reserved for SA <paramref name="recordId"/>, or 0.</summary>
    ulong GetReserved(string recordId);

    /// <summary>Records durably that numbers up to <paramref name="through"/> may be used by SA <paramref name="recordId"/> of <paramref name="epoch"/>.</summary>
    void Reserve(string recordId, long epoch, ulong through);

    /// <summary>Several reservations made durable together (one write for all the SAs a rotation or a membership
    /// change creates). The default makes them one by one.</summary>
    void ReserveMany(IReadOnlyList<SequenceReservation> reservations)
    {
        foreach (SequenceReservation r in reservations)
            Reserve(r.RecordId, r.Epoch, r.Through);
    }

    /// <summary>Forgets SAs of epochs before <paramref name="minEpoch"/> and raises <see cref="Floor"/> to it.</summary>
    void Prune(long minEpoch);

    /// <summary>Epochs below this were pruned: their reservations are forgotten, so no SA of theirs may seal again
    /// (the database never sends with an epoch below the floor, even if the clock goes back).</summary>
    long Floor { get; }
}

/// <summary>
/// The record keeping both stores share: reservations by SA record id, the epoch floor, and the rule that a
/// reservation only ever grows. A derived store makes each change durable in <see cref="Persist"/>, which runs under
/// the store's lock after every call that changed something.
/// </summary>
public abstract class SequenceStoreBase : ISequenceStore
{
    private readonly Lock _lock = new();

    /// <summary>The reservations: record id → (epoch, reserved through). Touch only under the lock (in <see cref="Persist"/> or the constructor).</summary>
    protected Dictionary<string, (long Epoch, ulong Through)> Records { get; } = new(StringComparer.Ordinal);

    /// <summary>The pruned-epoch floor (<see cref="long.MinValue"/> until the first prune).</summary>
    protected long FloorValue { get; set; } = long.MinValue;

    /// <summary>Number of changes made durable so far (each <see cref="Persist"/> call).</summary>
    public int Writes { get; private set; }

    /// <inheritdoc/>
    public long Floor
    {
        get
        {
            lock (_lock)
                return FloorValue;
        }
    }

    /// <inheritdoc/>
    public ulong GetReserved(string recordId)
    {
        lock (_lock)
            return Records.TryGetValue(recordId, out var r) ? r.Through : 0;
    }

    /// <inheritdoc/>
    public void Reserve(string recordId, long epoch, ulong through) => ReserveMany([new SequenceReservation(recordId, epoch, through)]);

    /// <inheritdoc/>
    public void ReserveMany(IReadOnlyList<SequenceReservation> reservations)
    {
        lock (_lock)
        {
            bool changed = false;
            foreach (SequenceReservation r in reservations)
            {
                if (Records.TryGetValue(r.RecordId, out var old) && old.Through >= r.Through)
                    continue;
                Records[r.RecordId] = (r.Epoch, r.Through);
                changed = true;
            }
            if (changed)
                Commit();
        }
    }

    /// <inheritdoc/>
    public void Prune(long minEpoch)
    {
        lock (_lock)
        {
            bool changed = minEpoch > FloorValue;
            FloorValue = Math.Max(FloorValue, minEpoch);
            foreach (var (id, r) in Records.ToArray())
            {
                if (r.Epoch < minEpoch)
                {
                    Records.Remove(id);
                    changed = true;
                }
            }
            if (changed)
                Commit();
        }
    }

    private void Commit()
    {
        Writes++;
        Persist();
    }

    /// <summary>Makes the current <see cref="Records"/> and <see cref="FloorValue"/> durable before returning; called under the lock.</summary>
    protected abstract void Persist();
}

/// <summary>
/// A store that lives as long as the object: enough for tests (share one instance between two database instances to
/// simulate a restart) and for embedders whose keys are random per process. It does <b>not</b> survive a process
/// restart; the daemon uses <see cref="FileSequenceStore"/>.
/// </summary>
public sealed class InMemorySequenceStore : SequenceStoreBase
{
    /// <inheritdoc/>
    protected override void Persist()
    {
    }
}

/// <summary>
/// A store in one small text file (for the daemon, e.g. /var/lib/useroverlay/NAME/esp-sequence): one line per SA,
/// <c>&lt;record id&gt; &lt;epoch&gt; &lt;reserved through&gt;</c>, after a header line and an optional <c>floor &lt;epoch&gt;</c> line. Every change rewrites the file
/// to a temporary file, flushes it to disk (fsync) and renames it over the old one, so a crash leaves either the old
/// or the new content. A file that exists but cannot be parsed is an error (the constructor throws): starting without
/// it could reuse nonces.
/// </summary>
public sealed class FileSequenceStore : SequenceStoreBase
{
    private const string Header = "# UserOverlay ESP sequence reservations v1: <sa record id> <epoch> <reserved through>";
    private readonly string _path;

    /// <summary>Opens (or prepares to create) the store at <paramref name="path"/>; its directory is created if missing.</summary>
    /// <exception cref="InvalidDataException">the file exists and is not a store.</exception>
    public FileSequenceStore(string path)
    {
        _path = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(_path);
        if (dir is not null)
            Directory.CreateDirectory(dir);
        if (!File.Exists(_path))
            return;
        int lineNo = 0;
        foreach (string line in File.ReadAllLines(_path))
        {
            lineNo++;
            if (line.Length == 0 || line[0] == '#')
                continue;
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && f[0] == "floor" && long.TryParse(f[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long floor))
            {
                FloorValue = floor;
                continue;
            }
            if (f.Length != 3
                || !long.TryParse(f[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long epoch)
                || !ulong.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong through))
            {
                throw new InvalidDataException(
                    $"{_path}:{lineNo}: not an ESP sequence store line. Starting without it could reuse GCM nonces; " +
                    "restore the file, or delete it only when no encrypted traffic was sent by this host within the last two rekey intervals.");
            }
            Records[f[0]] = (epoch, through);
        }
    }

    /// <summary>Path of the file.</summary>
    public string FilePath => _path;

    /// <inheritdoc/>
    protected override void Persist()
    {
        var sb = new StringBuilder(Header).Append('\n');
        if (FloorValue != long.MinValue)
            sb.Append("floor ").Append(FloorValue.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var (id, r) in Records)
            sb.Append(id).Append(' ').Append(r.Epoch.ToString(CultureInfo.InvariantCulture)).Append(' ')
              .Append(r.Through.ToString(CultureInfo.InvariantCulture)).Append('\n');
        string tmp = _path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            byte[] bytes = Encoding.ASCII.GetBytes(sb.ToString());
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, _path, overwrite: true);
    }
}
