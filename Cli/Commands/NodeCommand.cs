using System.CommandLine;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay node ls|rm|promote|demote</c>: Docker's <c>docker node</c> (routes /v1/nodes…); managers only.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var cmd = new Command("node", "List the cluster's nodes, remove them, and change their roles (on a manager).");
        var host = HostOption.AddTo(cmd, recursive: true);
        cmd.Add(LsCommand(host));
        cmd.Add(RmCommand(host));
        cmd.Add(RoleCommand(host, "promote", "manager", "Make workers managers."));
        cmd.Add(RoleCommand(host, "demote", "worker", "Make managers workers (the last manager cannot be demoted)."));
        return cmd;
    }

    private static Command LsCommand(HostOption host)
    {
        var json = new Option<bool>("--json") { Description = "Print the router's JSON." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the ids." };
        var cmd = new Command("ls", "List the cluster's nodes.") { json, quiet };
        cmd.Aliases.Add("list");
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/nodes");
            if (p.GetValue(json))
            {
                s.Out.WriteLine(body.TrimEnd());
                return ExitCodes.Ok;
            }
            var nodes = JsonSerializer.Deserialize(body, ControlJson.Default.IReadOnlyListNodeView) ?? [];
            if (p.GetValue(quiet))
            {
                foreach (var n in nodes) s.Out.WriteLine(n.Id);
                return ExitCodes.Ok;
            }
            s.Out.Write(TextTable.Format(["ID", "HOSTNAME", "STATUS", "MANAGER STATUS", "CONTROL ADDRESS", "DATA PATH ADDRESS"], nodes.Select(n => (IReadOnlyList<string>)
            [
                ObjectIds.Short(n.Id) + (n.Self ? " *" : ""),
                n.Hostname,
                n.Reachable switch { true => "Ready", false => "Down", null => "Unknown" },
                n.Role == "manager" ? "Reachable" : "",
                n.ControlAddress,
                n.DataPathAddress,
            ])));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command RmCommand(HostOption host)
    {
        var force = new Option<bool>("--force", "-f") { Description = "Remove a manager without demoting it first." };
        var nodes = new Argument<string[]>("NODE") { Description = "Ids, unique id prefixes or names.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("rm", "Remove nodes from the cluster; their addresses are released.") { force, nodes };
        cmd.Aliases.Add("remove");
        cmd.SetAction(p => ClientSession.Run(p, host, s => s.ForEach(p.GetValue(nodes)!, n =>
        {
            s.Delete($"v1/nodes/{ClientSession.Segment(n)}?force={(p.GetValue(force) ? "true" : "false")}");
            s.Out.WriteLine(n);
        })));
        return cmd;
    }

    private static Command RoleCommand(HostOption host, string name, string role, string description)
    {
        var nodes = new Argument<string[]>("NODE") { Description = "Ids, unique id prefixes or names.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command(name, description) { nodes };
        cmd.SetAction(p => ClientSession.Run(p, host, s => s.ForEach(p.GetValue(nodes)!, n =>
        {
            var v = s.Post($"v1/nodes/{ClientSession.Segment(n)}/role", new NodeRoleRequest(role), ControlJson.Default.NodeRoleRequest, ControlJson.Default.NodeView);
            s.Out.WriteLine($"Node {v.Hostname} is now a {v.Role}.");
        })));
        return cmd;
    }
}
