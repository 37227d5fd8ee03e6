using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using UserOverlay.Control.Networks;

namespace UserOverlay.Control.State;

/// <summary>
/// Networks and endpoints as JSON files under a state directory (mode 0700), one file per object, so a change
/// rewrites one small file however many endpoints exist:
/// <code>
/// DIR/networks/ID.json    a NetworkFile
/// DIR/endpoints/ID.json   an EndpointFile
/// </code>
/// A file is written to ID.json.tmp (mode 0600), fsynced and renamed over ID.json, so a reader or a crash sees the old
/// file or the new one, never a torn one; a leftover .tmp is deleted at <see cref="Load"/>. Simplification: the
/// directory is not fsynced after a rename, so a power cut right after an operation may lose that operation (the
/// previous state comes back), never corrupt the state. Not thread-safe (see <see cref="INetworkStore"/>).
/// </summary>
public sealed class FileNetworkStore : INetworkStore
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _networks, _endpoints;

    /// <summary>A store in <paramref name="directory"/>, which is created (mode 0700) or set to mode 0700 if it exists.</summary>
    public FileNetworkStore(string directory)
    {
        Location = Path.GetFullPath(directory);
        _networks = Path.Combine(Location, "networks");
        _endpoints = Path.Combine(Location, "endpoints");
        foreach (string dir in (ReadOnlySpan<string>)[Location, _networks, _endpoints])
        {
            Directory.CreateDirectory(dir, DirectoryMode);
            File.SetUnixFileMode(dir, DirectoryMode);
        }
    }

    /// <summary>The state directory (absolute).</summary>
    public string Location { get; }

    /// <inheritdoc/>
    public StoredState Load()
    {
        var networks = ReadAll(_networks, StateJson.Default.NetworkFile, f => (f.Version, f.Network.Id));
        var endpoints = ReadAll(_endpoints, StateJson.Default.EndpointFile, f => (f.Version, f.Endpoint.Id));
        return new([.. networks.Select(f => f.Network).OrderBy(n => n.Created)],
                   [.. endpoints.Select(f => f.Endpoint).OrderBy(e => e.Created)]);
    }

    /// <inheritdoc/>
    public void PutNetwork(NetworkDefinition network) =>
        Write(PathOf(_networks, network.Id), JsonSerializer.SerializeToUtf8Bytes(new NetworkFile(StateJson.FormatVersion, network), StateJson.Default.NetworkFile));

    /// <inheritdoc/>
    public void DeleteNetwork(string networkId) => Delete(PathOf(_networks, networkId));

    /// <inheritdoc/>
    public void PutEndpoint(EndpointRecord endpoint) =>
        Write(PathOf(_endpoints, endpoint.Id), JsonSerializer.SerializeToUtf8Bytes(new EndpointFile(StateJson.FormatVersion, endpoint), StateJson.Default.EndpointFile));

    /// <inheritdoc/>
    public void DeleteEndpoint(string endpointId) => Delete(PathOf(_endpoints, endpointId));

    private static string PathOf(string dir, string id) =>
        ObjectIds.IsValid(id) ? Path.Combine(dir, id + ".json") : throw new ArgumentException($"'{id}' is not an object id", nameof(id));

    // Reads every DIR/*.json; a file that is not JSON of the type, of another version, or whose id is not its name is corrupt.
    private static List<T> ReadAll<T>(string dir, JsonTypeInfo<T> type, Func<T, (int Version, string Id)> identify)
    {
        foreach (string tmp in Directory.EnumerateFiles(dir, "*.json.tmp")) File.Delete(tmp);
        var result = new List<T>();
        foreach (string path in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            T? item;
            try { item = JsonSerializer.Deserialize(File.ReadAllBytes(path), type); }
            catch (JsonException e) { throw Corrupt(path, $"is not valid: {e.Message}"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot read state file {path}: {e.Message}", inner: e);
            }
            if (item is null) throw Corrupt(path, "holds null");
            var (version, id) = identify(item);
            if (version != StateJson.FormatVersion) throw Corrupt(path, $"has format version {version}; this build reads version {StateJson.FormatVersion}");
            if (id + ".json" != Path.GetFileName(path)) throw Corrupt(path, $"holds the object '{id}', not the one its name says");
            result.Add(item);
        }
        return result;
    }

    private static ControlException Corrupt(string path, string what) =>
        new(ControlErrorCodes.CorruptState, $"state file {path} {what}; restore it from a backup or move it away to forget that object");

    private static void Write(string path, byte[] json)
    {
        string tmp = path + ".tmp";
        try
        {
            File.Delete(tmp);
            using (var f = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode600 }))
            {
                f.Write(json);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (Exception again) when (again is IOException or UnauthorizedAccessException) { }
            throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot write state file {path}: {e.Message}", inner: e);
        }
    }

    private static void Delete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot delete state file {path}: {e.Message}", inner: e);
        }
    }
}
