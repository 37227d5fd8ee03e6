using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// A workload's resolv.conf: <c>/etc/netns/NETNS/resolv.conf</c>, which <c>ip netns exec NETNS</c> bind-mounts over
/// /etc/resolv.conf (and <c>useroverlay run</c> starts its command that way when the file exists), pointing at the
/// gateways of the workload's networks, where the router answers DNS. Written by the daemon when it makes the
/// workload, removed with the namespace. A daemon that cannot write /etc/netns (a read-only /etc) logs it and goes on:
/// the workload then resolves as the host does.
/// </summary>
internal static class WorkloadResolvConf
{
    /// <summary>The directory ip-netns(8) reads per namespace.</summary>
    public const string EtcNetns = "/etc/netns";

    /// <summary>What a resolv.conf pointing at <paramref name="gateways"/> says (the first three: glibc reads no more).</summary>
    public static string Text(IEnumerable<uint> gateways) =>
        "# useroverlay: the router answers DNS at the gateway of each network (names of the network's workloads; the rest is forwarded)\n"
        + string.Concat(gateways.Distinct().Take(3).Select(g => $"nameserver {VtepEndpoint.FormatAddress(g)}\n"))
        + "options ndots:0\n";

    /// <summary>Writes the file for <paramref name="netns"/>; returns the error text when it cannot (nothing is left half made).</summary>
    public static string? Write(string netns, IReadOnlyList<uint> gateways)
    {
        if (gateways.Count == 0) return null;
        string dir = Path.Combine(EtcNetns, netns);
        try
        {
            Directory.CreateDirectory(dir);
            string tmp = Path.Combine(dir, ".resolv.conf.tmp");
            File.WriteAllText(tmp, Text(gateways));
            File.Move(tmp, Path.Combine(dir, "resolv.conf"), overwrite: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Delete(netns);
            return e.Message;
        }
    }

    /// <summary>Removes the file and its directory (what <see cref="Write"/> made; anything else there stays).</summary>
    public static void Delete(string netns)
    {
        string dir = Path.Combine(EtcNetns, netns);
        try
        {
            File.Delete(Path.Combine(dir, "resolv.conf"));
            File.Delete(Path.Combine(dir, ".resolv.conf.tmp"));
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
