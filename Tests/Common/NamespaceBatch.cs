namespace UserOverlay.Testing.Common;

/// <summary>
/// Many plain network namespaces at once, for scale tests: one `ip -batch` run creates them (IPv6 off in each, so a new
/// interface sends no router solicitations or DAD probes), another deletes them. Faster by far than one `ip` process per
/// namespace. Names must carry the caller's unique prefix; <see cref="DeleteWithPrefix"/> removes whatever of that
/// prefix exists, so a run that failed half way leaves nothing behind.
/// </summary>
public static class NamespaceBatch
{
    /// <summary>Creates <paramref name="names"/> (none may exist yet); throws naming the first that failed.</summary>
    public static void Create(IReadOnlyList<string> names)
    {
        var lines = names.SelectMany(n => new[]
        {
            $"netns add {n}",
            $"netns exec {n} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        });
        RunBatch(lines);
    }

    /// <summary>Deletes every namespace whose name starts with <paramref name="prefix"/> (at least 6 characters, so never someone else's).</summary>
    public static int DeleteWithPrefix(string prefix)
    {
        if (prefix.Length < 6) throw new ArgumentException($"'{prefix}' is too short a prefix to delete namespaces by", nameof(prefix));
        var names = Existing(prefix);
        if (names.Count > 0) RunBatch(names.Select(n => $"netns del {n}"), force: true);
        return names.Count;
    }

    /// <summary>The namespaces (ip netns names) that start with <paramref name="prefix"/>.</summary>
    public static List<string> Existing(string prefix) =>
        Directory.Exists("/run/netns")
            ? [.. Directory.EnumerateFiles("/run/netns").Select(Path.GetFileName).OfType<string>().Where(n => n.StartsWith(prefix, StringComparison.Ordinal))]
            : [];

    private static void RunBatch(IEnumerable<string> lines, bool force = false)
    {
        string[] args = force ? ["-force", "-batch", "-"] : ["-batch", "-"];
        Shell.Run("ip", args, TimeSpan.FromMinutes(5), stdin: string.Join('\n', lines) + "\n").EnsureSuccess();
    }
}
