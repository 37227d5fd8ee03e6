using System.CommandLine;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Cluster.Node;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay swarm init|join|leave|join-token|status</c>: Docker's <c>docker swarm</c> against a running router
/// (routes /v1/swarm…). The router's daemon does the work (certificates, store, the control port 2377); the command
/// only asks it and prints the answer.
/// </summary>
internal static class SwarmCommand
{
    public static Command Create()
    {
        var cmd = new Command("swarm", "Make this host a cluster's first manager, join a cluster, leave it, and show its join tokens.");
        var host = HostOption.AddTo(cmd, recursive: true);
        cmd.Add(InitCommand(host));
        cmd.Add(JoinCommand(host));
        cmd.Add(LeaveCommand(host));
        cmd.Add(JoinTokenCommand(host));
        cmd.Add(StatusCommand(host));
        return cmd;
    }

    private static Command InitCommand(HostOption host)
    {
        var advertise = new Option<string?>("--advertise-addr") { Description = "IP[:PORT] other nodes reach this manager at (default: the router's underlay address, port 2377).", HelpName = "IP[:PORT]" };
        var listen = new Option<string?>("--listen-addr") { Description = "IP[:PORT] the control port binds (default: the advertised address).", HelpName = "IP[:PORT]" };
        var dataAddr = new Option<string?>("--data-path-addr") { Description = "Address of the data path (VXLAN, gossip); default and only choice: the router's underlay address.", HelpName = "IP" };
        var dataPort = new Option<int?>("--data-path-port") { Description = "VXLAN port of the cluster; it must be the router's (default: the router's).", HelpName = "PORT" };
        var pool = ClientOptions.Repeated("--default-addr-pool", "Address pool (CIDR) for networks created without --subnet (repeatable; default 10.0.0.0/8).", "CIDR");
        var mask = new Option<int?>("--default-addr-pool-mask-length") { Description = "Prefix length of subnets taken from the pools (default 24).", HelpName = "N" };
        var rotation = new Option<string?>("--key-rotation-interval") { Description = "How often the managers rotate the network and gossip keys (default 12h).", HelpName = "DURATION" };
        var store = new Option<string?>("--store") { Description = "Where the managers keep the cluster's state: raft (default: embedded, among the managers) or etcd://HOST:PORT[,HOST:PORT...] (an etcd v3 cluster).", HelpName = "raft|etcd://HOST:PORT[,...]" };
        var storePrefix = new Option<string?>("--store-prefix") { Description = "The etcd key prefix of the cluster's keys (default /useroverlay).", HelpName = "PREFIX" };
        var storeCa = new Option<string?>("--store-ca") { Description = "PEM file of the CA of etcd's server certificates (TLS to etcd).", HelpName = "FILE" };
        var storeCert = new Option<string?>("--store-cert") { Description = "PEM file of the client certificate etcd asks for (with --store-key).", HelpName = "FILE" };
        var storeKey = new Option<string?>("--store-key") { Description = "PEM file of the client certificate's private key.", HelpName = "FILE" };
        var cmd = new Command("init", "Make this host the first manager of a new cluster and print the commands that join others.")
            { advertise, listen, dataAddr, dataPort, pool, mask, rotation, store, storePrefix, storeCa, storeCert, storeKey };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string[] pools = p.GetValue(pool)!;
            // The daemon reads the files: their paths as this shell means them.
            static string? Full(string? path) => string.IsNullOrEmpty(path) ? path : Path.GetFullPath(path);
            var request = new SwarmInitRequest(p.GetValue(advertise), p.GetValue(listen), p.GetValue(dataAddr), p.GetValue(dataPort),
                pools.Length == 0 ? null : pools, p.GetValue(mask), p.GetValue(rotation),
                p.GetValue(store), p.GetValue(storePrefix), Full(p.GetValue(storeCa)), Full(p.GetValue(storeCert)), Full(p.GetValue(storeKey)));
            var status = s.Post("v1/swarm/init", request, ControlJson.Default.SwarmInitRequest, ControlJson.Default.SwarmStatus);
            var worker = s.Get("v1/swarm/join-token/worker", ControlJson.Default.JoinTokenResult);
            s.Out.WriteLine($"Swarm initialized: current node ({status.NodeId}) is now a manager.");
            s.Out.WriteLine();
            s.Out.WriteLine("To add a worker to this swarm, run the following command:");
            s.Out.WriteLine();
            s.Out.WriteLine("    " + worker.JoinCommand);
            s.Out.WriteLine();
            s.Out.WriteLine("To add a manager to this swarm, run 'useroverlay swarm join-token manager' and follow the instructions.");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command JoinCommand(HostOption host)
    {
        var token = new Option<string>("--token") { Description = "The join token (swarm join-token on a manager).", Required = true, HelpName = "TOKEN" };
        var advertise = new Option<string?>("--advertise-addr") { Description = "IP[:PORT] other nodes reach this node's control port at (default: the router's underlay address, port 2377).", HelpName = "IP[:PORT]" };
        var listen = new Option<string?>("--listen-addr") { Description = "IP[:PORT] this node's control port binds if it is a manager (default: the advertised address).", HelpName = "IP[:PORT]" };
        var dataAddr = new Option<string?>("--data-path-addr") { Description = "Address of the data path (default and only choice: the router's underlay address).", HelpName = "IP" };
        var manager = new Argument<string>("MANAGER") { Description = "A manager's IP[:PORT] (port 2377 by default)." };
        var cmd = new Command("join", "Join this host to a cluster as a worker or a manager (the token decides).") { token, advertise, listen, dataAddr, manager };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            var request = new SwarmJoinRequest(p.GetValue(token), p.GetValue(manager), p.GetValue(advertise), p.GetValue(listen), p.GetValue(dataAddr));
            var status = s.Post("v1/swarm/join", request, ControlJson.Default.SwarmJoinRequest, ControlJson.Default.SwarmStatus);
            s.Out.WriteLine($"This node joined a swarm as a {status.Role}.");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command LeaveCommand(HostOption host)
    {
        var force = new Option<bool>("--force", "-f") { Description = "Leave although workloads are attached to the cluster's networks (they are detached), or this is the last manager (the cluster ends)." };
        var cmd = new Command("leave", "Leave the cluster: the cluster's networks stop being served here, and this node's keys and certificates are deleted.") { force };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            s.Post("v1/swarm/leave", new SwarmLeaveRequest(p.GetValue(force)), ControlJson.Default.SwarmLeaveRequest, ControlJson.Default.SwarmStatus);
            s.Out.WriteLine("Node left the swarm.");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command JoinTokenCommand(HostOption host)
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the token." };
        var rotate = new Option<bool>("--rotate") { Description = "Make a new token first: the old one no longer admits nodes (joined nodes are unaffected)." };
        var role = new Argument<string>("ROLE") { Description = "worker or manager." };
        role.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is not ("worker" or "manager") and var v) r.AddError($"ROLE: '{v}' is not worker or manager");
        });
        var cmd = new Command("join-token", "Print the command (or with -q the token) that joins a node in a role; managers only.") { quiet, rotate, role };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string path = "v1/swarm/join-token/" + p.GetValue(role);
            var t = p.GetValue(rotate)
                ? s.Post(path, new SwarmLeaveRequest(), ControlJson.Default.SwarmLeaveRequest, ControlJson.Default.JoinTokenResult)
                : s.Get(path, ControlJson.Default.JoinTokenResult);
            if (p.GetValue(quiet))
            {
                s.Out.WriteLine(t.Token);
                return ExitCodes.Ok;
            }
            if (p.GetValue(rotate)) s.Out.WriteLine($"Successfully rotated {t.Role} join token.");
            s.Out.WriteLine($"To add a {t.Role} to this swarm, run the following command:");
            s.Out.WriteLine();
            s.Out.WriteLine("    " + t.JoinCommand);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command StatusCommand(HostOption host)
    {
        var json = new Option<bool>("--json") { Description = "Print the router's JSON." };
        var cmd = new Command("status", "Show whether this host is in a cluster, as what, and whether it reaches the managers.") { json };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/swarm");
            if (p.GetValue(json))
            {
                s.Out.WriteLine(body.TrimEnd());
                return ExitCodes.Ok;
            }
            var st = JsonSerializer.Deserialize(body, ControlJson.Default.SwarmStatus)!;
            if (st.State != "active")
            {
                s.Out.WriteLine("Swarm: inactive");
                return ExitCodes.Ok;
            }
            s.Out.WriteLine("Swarm: active");
            s.Out.WriteLine($" NodeID: {st.NodeId}");
            s.Out.WriteLine($" Name: {st.NodeName}");
            s.Out.WriteLine($" ClusterID: {st.ClusterId}");
            s.Out.WriteLine($" Role: {st.Role}");
            s.Out.WriteLine($" Control address: {st.ControlAddress}");
            s.Out.WriteLine($" Data path address: {st.DataPathAddress}");
            s.Out.WriteLine($" Managers: {string.Join(", ", st.Managers ?? [])}");
            if (st.Leader is not null) s.Out.WriteLine($" Leader: {st.Leader}");
            if (st.Store is not null) s.Out.WriteLine($" Store: {st.Store}");
            s.Out.WriteLine($" Nodes: {st.Nodes}");
            s.Out.WriteLine($" Connected: {(st.Connected == true ? "yes" : "no" + (st.LastError is { } e ? $" ({e})" : ""))}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
