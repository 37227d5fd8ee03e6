using System.Globalization;
using System.Text;

namespace UserOverlay.Crypto;
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
