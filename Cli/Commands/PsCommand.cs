using System.CommandLine;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay ps [--json] [-q]</c>: the workloads (of <c>run</c>) on a running router.</summary>
internal static class PsCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the router's JSON." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the names." };
        var cmd = new Command("ps", "List the workloads made by `useroverlay run`: name, namespace, networks with addresses, age.") { json, quiet };
        var host = HostOption.AddTo(cmd);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/workloads");
            s.Out.Write(p.GetValue(json) ? body.TrimEnd() + "\n"
                : Format(JsonSerializer.Deserialize(body, ControlJson.Default.IReadOnlyListWorkloadView) ?? [], DateTimeOffset.UtcNow, p.GetValue(quiet)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>The table (NAME NETNS NETWORKS CREATED; NETWORKS as NET=ADDRESS/PREFIX,…), or one name a line with <paramref name="quiet"/>.</summary>
    public static string Format(IReadOnlyList<WorkloadView> workloads, DateTimeOffset now, bool quiet = false) =>
        quiet ? string.Concat(workloads.Select(w => w.Name + "\n"))
        : TextTable.Format(["NAME", "NETNS", "NETWORKS", "CREATED"], workloads.Select(w => (IReadOnlyList<string>)
        [
            w.Name, w.Netns,
            w.Endpoints.Count == 0 ? "-" : string.Join(",", w.Endpoints.Select(e => $"{e.Network}={e.Ipv4Address}")),
            TextTable.Ago(w.Created, now),
        ]));
}
