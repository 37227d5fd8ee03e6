using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using static UserOverlay.Control.Networks.ControlErrorCodes;

namespace UserOverlay.Control.Tests;

/// <summary>The file store: round trips through a restart, file modes, atomic writes and corrupt files.</summary>
public sealed class FileNetworkStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uo-state-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private NetworkManager Manager() => new(new FileNetworkStore(_dir), NoDataPlane.Instance);

    private NetworkManager ManagerWithBlue()
    {
        var m = Manager();
        m.CreateNetwork(new NetworkCreateRequest
        {
            Name = "blue",
            Subnet = "198.18.0.0/24",
            IpRange = "198.18.0.128/25",
            Gateway = "198.18.0.254",
            AuxAddresses = new Dictionary<string, string> { ["router"] = "198.18.0.2" },
            Mtu = 1400,
            Encrypted = true,
            Internal = true,
            Attachable = true,
            Labels = new Dictionary<string, string> { ["team"] = "net" },
        });
        m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-a", Interface = "eth1", Aliases = ["web", "www"] });
        m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-b", Mac = "02:00:00:00:00:0b" });
        return m;
    }

    [Fact]
    public void Networks_and_endpoints_survive_a_restart_unchanged()
    {
        var before = ManagerWithBlue().Snapshot();
        var after = Manager().Snapshot();
        // Records hold collections, compared by reference: compare their JSON instead.
        Assert.Equal(Json(before), Json(after));
        var blue = Assert.Single(after.Networks);
        Assert.Equal(("198.18.0.128/25", "router", 1400, true), (blue.IpRange.ToString(), blue.AuxAddresses[0].Name, blue.Mtu, blue.Encrypted));
        Assert.Equal(["web", "www"], after.Endpoints[0].Aliases);
    }

    private static string Json(StoredState s) => string.Join("\n",
        s.Networks.Select(n => System.Text.Json.JsonSerializer.Serialize(new NetworkFile(1, n), StateJson.Default.NetworkFile))
         .Concat(s.Endpoints.Select(e => System.Text.Json.JsonSerializer.Serialize(new EndpointFile(1, e), StateJson.Default.EndpointFile))));

    [Fact]
    public void The_directory_is_0700_and_the_files_0600_with_readable_json()
    {
        var m = ManagerWithBlue();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        string file = Path.Combine(_dir, "networks", m.GetNetwork("blue").Id + ".json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        string json = File.ReadAllText(file);
        Assert.Contains("\"subnet\": \"198.18.0.0/24\"", json);
        Assert.Contains("\"gateway\": \"198.18.0.254\"", json);
        Assert.Contains("\"version\": 1", json);
        Assert.Empty(Directory.EnumerateFiles(_dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void Detach_and_remove_delete_the_files()
    {
        var m = ManagerWithBlue();
        m.Detach("blue", "ns-a");
        m.Detach("blue", "ns-b");
        m.RemoveNetwork("blue");
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories));
        Assert.Empty(Manager().ListNetworks());
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("{\"version\": 1}")]
    [InlineData("{\"version\": 1, \"endpoint\": null}")]
    [InlineData("{\"version\": 2, \"endpoint\": null}")]
    [InlineData("{\"version\": 1, \"endpoint\": {\"id\": \"x\"}}")]
    [InlineData("null")]
    public void A_corrupt_file_is_refused_naming_the_file(string content)
    {
        var id = ManagerWithBlue().GetEndpoints("blue")[0].Id;
        string file = Path.Combine(_dir, "endpoints", id + ".json");
        File.WriteAllText(file, content);
        var e = Assert.Throws<ControlException>(Manager);
        Assert.Equal(CorruptState, e.Code);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void A_bad_address_in_a_file_and_a_file_named_for_another_object_are_refused()
    {
        var m = ManagerWithBlue();
        string file = Path.Combine(_dir, "networks", m.GetNetwork("blue").Id + ".json");
        string json = File.ReadAllText(file);
        File.WriteAllText(file, json.Replace("\"198.18.0.254\"", "\"198.18.0.999\""));
        Assert.Contains("198.18.0.999", Assert.Throws<ControlException>(Manager).Message);

        File.WriteAllText(file, json);
        File.Move(file, Path.Combine(_dir, "networks", ObjectIds.New() + ".json"));
        Assert.Equal(CorruptState, Assert.Throws<ControlException>(Manager).Code);
    }

    [Fact]
    public void A_leftover_temporary_file_of_a_crashed_write_is_ignored_and_removed()
    {
        ManagerWithBlue();
        string tmp = Path.Combine(_dir, "endpoints", ObjectIds.New() + ".json.tmp");
        File.WriteAllText(tmp, "{ half writ");
        Assert.Equal(2, Manager().GetEndpoints("blue").Count);
        Assert.False(File.Exists(tmp));
    }

    [Fact]
    public void A_write_that_fails_is_a_storage_error_and_the_manager_keeps_nothing()
    {
        var m = ManagerWithBlue();
        // A file where the endpoints directory was: every write under it fails, even for root.
        string endpoints = Path.Combine(_dir, "endpoints");
        Directory.Move(endpoints, endpoints + ".moved");
        File.WriteAllText(endpoints, "");
        var e = Assert.Throws<ControlException>(() => m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-c" }));
        Assert.Equal(StorageFailed, e.Code);
        Assert.Contains(endpoints, e.Message);
        Assert.Equal(2, m.GetEndpoints("blue").Count);
        Assert.Equal(2, m.AddressUsage("blue").Allocated);
    }
}
