using System.CommandLine;
using UserOverlay.Cli.Client;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay rm NAME...</c>: removes workloads (detaches them, deletes their namespaces); prints each removed.</summary>
internal static class RmCommand
{
    public static Command Create()
    {
        var names = new Argument<string[]>("NAME") { Description = "Workload names (see `useroverlay ps`).", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("rm", "Remove workloads: their endpoints are detached and their namespaces deleted.") { names };
        var host = HostOption.AddTo(cmd);
        cmd.SetAction(p => ClientSession.Run(p, host, s => s.ForEach(p.GetValue(names)!, n =>
        {
            s.Delete("v1/workloads/" + ClientSession.Segment(n));
            s.Out.WriteLine(n);
        })));
        return cmd;
    }
}
