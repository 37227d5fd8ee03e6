using System.Text.Json;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cli.Docker;

/// <summary>
/// What the Docker plugin remembers across restarts (STATE/docker/plugin.json, written atomically after every change):
/// how Docker's ids map to UserOverlay's, the pools Docker holds and the addresses promised but not yet attached.
/// </summary>
public sealed record DockerPluginState
{
    /// <summary>Pools Docker holds, by PoolID.</summary>
    public Dictionary<string, DockerPool> Pools { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Docker networks, by Docker's network id.</summary>
    public Dictionary<string, DockerNetworkRecord> Networks { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Docker endpoints, by Docker's endpoint id.</summary>
    public Dictionary<string, DockerEndpointRecord> Endpoints { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>A pool Docker requested: a subnet, and the addresses it was given that no endpoint holds yet.</summary>
/// <param name="Subnet">The subnet, CIDR.</param>
/// <param name="Pending">Address (dotted) → the id an endpoint will take it with (the cluster's reservation is made under that id).</param>
public sealed record DockerPool(string Subnet, Dictionary<string, string> Pending);

/// <summary>A Docker network bound to a UserOverlay network.</summary>
/// <param name="NetworkId">The UserOverlay network's id.</param>
/// <param name="Created">True when the plugin created it (DeleteNetwork removes it); false when it existed (it stays).</param>
public sealed record DockerNetworkRecord(string NetworkId, bool Created);

/// <summary>A Docker endpoint: a UserOverlay endpoint, and where Docker put its TAP.</summary>
/// <param name="DockerNetworkId">Docker's network id.</param>
/// <param name="EndpointId">The UserOverlay endpoint's id.</param>
/// <param name="SandboxKey">The container's namespace once joined (Join's SandboxKey); null before Join and after Leave.</param>
/// <param name="ContainerInterface">The TAP's name inside the container, once seen there (for restoring it after a restart).</param>
public sealed record DockerEndpointRecord(string DockerNetworkId, string EndpointId, string? SandboxKey, string? ContainerInterface);

/// <summary>Reads and writes <see cref="DockerPluginState"/>.</summary>
internal sealed class DockerPluginStore(string directory)
{
    /// <summary>The state file.</summary>
    public string Path { get; } = System.IO.Path.Combine(directory, "plugin.json");

    /// <summary>The stored state, or an empty one; a file that does not parse is a <see cref="ControlException"/> naming it.</summary>
    public DockerPluginState Load()
    {
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (!File.Exists(Path)) return new DockerPluginState();
        try
        {
            var s = JsonSerializer.Deserialize(File.ReadAllBytes(Path), DockerPluginJson.Default.DockerPluginState) ?? new DockerPluginState();
            // Dictionaries read back are case-sensitive already (System.Text.Json's default comparer is ordinal).
            return s;
        }
        catch (JsonException e)
        {
            throw new ControlException(ControlErrorCodes.CorruptState, $"the Docker plugin's state file {Path} is not valid: {e.Message}; move it away to forget Docker's networks");
        }
    }

    /// <summary>Writes the state atomically (a temporary file renamed over the old one).</summary>
    public void Save(DockerPluginState state)
    {
        string tmp = Path + ".tmp";
        try
        {
            using (var f = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                f.Write(JsonSerializer.SerializeToUtf8Bytes(state, DockerPluginJson.Default.DockerPluginState));
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot write the Docker plugin's state {Path}: {e.Message}", inner: e);
        }
    }
}
