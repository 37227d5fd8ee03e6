using System.Reflection;

namespace UserOverlay.Cli.Tests;

/// <summary>samples/systemd/useroverlay.service: a notify service whose command line the CLI accepts.</summary>
public class SystemdUnitTests
{
    private static string RepoRoot => typeof(SystemdUnitTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    private static Dictionary<string, List<string>> Service()
    {
        var d = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string? section = null;
        foreach (string raw in File.ReadLines(Path.Combine(RepoRoot, "samples", "systemd", "useroverlay.service")))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            if (line[0] == '[') { section = line; continue; }
            if (section != "[Service]") continue;
            int eq = line.IndexOf('=');
            (d.TryGetValue(line[..eq], out var l) ? l : d[line[..eq]] = []).Add(line[(eq + 1)..]);
        }
        return d;
    }

    [Fact]
    public void The_unit_is_a_notify_service_restarted_on_failure_with_the_capabilities_the_router_uses()
    {
        var s = Service();
        Assert.Equal(["notify"], s["Type"]);
        Assert.Equal(["on-failure"], s["Restart"]);
        Assert.Equal(["CAP_BPF", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], s["CapabilityBoundingSet"].Single().Split(' ').Order());
        Assert.Equal(["0755"], s["RuntimeDirectoryMode"]); // the daemon keeps it 0755 and each socket 0660
        Assert.Equal(["-/run/netns -/run/docker/plugins"], s["ReadWritePaths"]); // workloads' namespaces (`useroverlay run`); the Docker plugin's socket
        Assert.Equal(["useroverlay"], s["RuntimeDirectory"]); // the control socket's directory, /run/useroverlay
        Assert.Equal(["/dev/net/tun rw"], s["DeviceAllow"]);
    }

    [Fact]
    public void Its_command_line_is_one_the_cli_accepts()
    {
        string[] exec = Service()["ExecStart"].Single().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("/usr/local/bin/useroverlay", exec[0]);
        var parsed = UserOverlay.Cli.Program.CreateRootCommand().Parse(exec[1..]);
        Assert.Empty(parsed.Errors);
        Assert.Equal("up", parsed.CommandResult.Command.Name);
        Assert.Equal(["up", "--config", "/etc/useroverlay/host.yaml", "--name", "host"], exec[1..]);
    }
}
