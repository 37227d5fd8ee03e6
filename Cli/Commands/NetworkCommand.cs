using System.CommandLine;
using System.Text;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay network create|ls|inspect|rm|connect|disconnect</c>: Docker's <c>docker network</c> against a
/// running router (routes /v1/networks…). -H applies to every subcommand.
/// </summary>
internal static class NetworkCommand
{
    public static Command Create()
    {
        var cmd = new Command("network", "Create, list, inspect and remove networks, and attach namespaces to them, on a running router.");
        var host = HostOption.AddTo(cmd, recursive: true);
        cmd.Add(CreateCommand(host));
        cmd.Add(LsCommand(host));
        cmd.Add(InspectCommand(host));
        cmd.Add(RmCommand(host));
        cmd.Add(ConnectCommand(host));
        cmd.Add(DisconnectCommand(host));
        return cmd;
    }

    private static Command CreateCommand(HostOption host)
    {
        var driver = new Option<string?>("--driver", "-d") { Description = "The driver: overlay (the only one).", HelpName = "DRIVER" };
        var subnet = new Option<string?>("--subnet") { Description = "IPv4 subnet (CIDR); required (there is no default address pool).", HelpName = "CIDR" };
        var gateway = new Option<string?>("--gateway") { Description = "The router's own address on the network; default: the subnet's first usable one.", HelpName = "IP" };
        var ipRange = new Option<string?>("--ip-range") { Description = "Allocate endpoint addresses from this part of the subnet.", HelpName = "CIDR" };
        var aux = ClientOptions.KeyValues("--aux-address", "", "Reserve an address under a name (repeatable).");
        var vni = new Option<uint?>("--vni") { Description = "VXLAN id, 1 to 16777215; default: the lowest free from 4096. In static mode give the same on every host.", HelpName = "N" };
        var mtu = new Option<int?>("--mtu") { Description = "The endpoints' MTU; default: the underlay's minus the overhead.", HelpName = "N" };
        var opt = ClientOptions.KeyValues("--opt", "-o", "Driver option (repeatable): encrypted (with key_file=PATH: an absolute path to the key, base64 of 16/32 bytes or 16/32 raw bytes, the same file on every host, read by the daemon; the configuration file's `encryption:` section is needed), com.docker.network.driver.mtu=N, com.docker.network.driver.overlay.vxlanid_list=N.", valueOptional: true);
        var @internal = new Option<bool>("--internal") { Description = "No route beyond the network (recorded; there is no NAT either way)." };
        var attachable = new Option<bool>("--attachable") { Description = "Standalone workloads may attach (recorded, as Docker does outside swarm)." };
        var label = ClientOptions.KeyValues("--label", "", "Set a label (repeatable).");
        var name = new Argument<string>("NAME") { Description = "The network's name." };
        var cmd = new Command("create", "Create a network and print its id.") { driver, subnet, gateway, ipRange, aux, vni, mtu, opt, @internal, attachable, label, name };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            var request = new NetworkCreateRequest
            {
                Name = p.GetValue(name)!,
                Driver = p.GetValue(driver),
                Subnet = p.GetValue(subnet),
                Gateway = p.GetValue(gateway),
                IpRange = p.GetValue(ipRange),
                AuxAddresses = p.GetValue(aux)!,
                Vni = p.GetValue(vni),
                Mtu = p.GetValue(mtu),
                Internal = p.GetValue(@internal),
                Attachable = p.GetValue(attachable),
                Labels = p.GetValue(label)!,
                Options = p.GetValue(opt)!,
            };
            s.Out.WriteLine(s.Post("v1/networks", request, ControlJson.Default.NetworkCreateRequest, DockerJson.Default.NetworkInspect).Id);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command LsCommand(HostOption host)
    {
        var json = new Option<bool>("--json") { Description = "Print the router's JSON (an array in `network inspect`'s shape)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the ids." };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Print full ids." };
        var cmd = new Command("ls", "List the networks.") { json, quiet, noTrunc };
        cmd.Aliases.Add("list");
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/networks");
            s.Out.Write(p.GetValue(json) ? body.TrimEnd() + "\n"
                : FormatList(JsonSerializer.Deserialize(body, DockerJson.Default.IReadOnlyListNetworkInspect) ?? [], p.GetValue(quiet), p.GetValue(noTrunc)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary><c>network ls</c>'s table (NETWORK ID NAME DRIVER SCOPE VNI SUBNET), or with <paramref name="quiet"/> one id a line.</summary>
    public static string FormatList(IReadOnlyList<NetworkInspect> networks, bool quiet = false, bool noTrunc = false)
    {
        string Id(NetworkInspect n) => noTrunc ? n.Id : ObjectIds.Short(n.Id);
        if (quiet) return string.Concat(networks.Select(n => Id(n) + "\n"));
        return TextTable.Format(["NETWORK ID", "NAME", "DRIVER", "SCOPE", "VNI", "SUBNET"], networks.Select(n => (IReadOnlyList<string>)
        [
            Id(n), n.Name, n.Driver, n.Scope,
            n.Options.TryGetValue(NetworkValidator.VxlanIdListOption, out string? v) ? v : "-",
            string.Join(",", n.Ipam.Config.Select(c => c.Subnet)) is { Length: > 0 } sn ? sn : "-",
        ]));
    }

    private static Command InspectCommand(HostOption host)
    {
        var names = new Argument<string[]>("NETWORK") { Description = "Names, ids or unique id prefixes.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("inspect", "Print networks as a JSON array in Docker's shape (docker network inspect).") { names };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            var found = new List<string>();
            int code = s.ForEach(p.GetValue(names)!, n => found.Add(s.Get("v1/networks/" + ClientSession.Segment(n))));
            s.Out.Write(JsonArray(found));
            return code;
        }));
        return cmd;
    }

    /// <summary>The daemon's JSON objects, verbatim, as one array indented as <c>docker network inspect</c> prints it.</summary>
    public static string JsonArray(IEnumerable<string> objects)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentSize = 4 }))
        {
            w.WriteStartArray();
            foreach (string o in objects)
            {
                using var doc = JsonDocument.Parse(o);
                doc.RootElement.WriteTo(w);
            }
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static Command RmCommand(HostOption host)
    {
        var names = new Argument<string[]>("NETWORK") { Description = "Names, ids or unique id prefixes.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("rm", "Remove networks (refused while endpoints are attached); prints each one removed.") { names };
        cmd.Aliases.Add("remove");
        cmd.SetAction(p => ClientSession.Run(p, host, s => s.ForEach(p.GetValue(names)!, n =>
        {
            s.Delete("v1/networks/" + ClientSession.Segment(n));
            s.Out.WriteLine(n);
        })));
        return cmd;
    }

    private static Command ConnectCommand(HostOption host)
    {
        var ip = new Option<string?>("--ip") { Description = "A fixed IPv4 address in the subnet; default: the next free one.", HelpName = "IP" };
        var mac = new Option<string?>("--mac") { Description = "The interface's MAC; default: derived from the address.", HelpName = "MAC" };
        var iface = new Option<string?>("--interface") { Description = "The interface's name in the namespace; default eth0.", HelpName = "IFNAME" };
        var alias = ClientOptions.Repeated("--alias", "Another name of the workload on the network (repeatable).", "NAME");
        var network = new Argument<string>("NETWORK") { Description = "Name, id or unique id prefix." };
        var netns = new Argument<string>("NETNS") { Description = "An `ip netns` name or a /proc/PID/ns/net path." };
        var cmd = new Command("connect", "Attach a network namespace to a network: a TAP device appears in it with its address, MTU and route.") { ip, mac, iface, alias, network, netns };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string[] aliases = p.GetValue(alias)!;
            var request = new ConnectRequest(p.GetValue(netns)!, Interface: p.GetValue(iface), Address: p.GetValue(ip), Mac: p.GetValue(mac),
                Aliases: aliases.Length == 0 ? null : aliases);
            var e = s.Post($"v1/networks/{ClientSession.Segment(p.GetValue(network)!)}/connect", request, ControlJson.Default.ConnectRequest, ControlJson.Default.EndpointView);
            s.Out.WriteLine(Describe(e));
            if (ResolvHint(e) is { } hint) s.Out.WriteLine(hint);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command DisconnectCommand(HostOption host)
    {
        var network = new Argument<string>("NETWORK") { Description = "Name, id or unique id prefix." };
        var netns = new Argument<string>("NETNS") { Description = "The namespace given to connect." };
        var cmd = new Command("disconnect", "Detach a network namespace from a network: its TAP device and address go.") { network, netns };
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            var e = s.Post($"v1/networks/{ClientSession.Segment(p.GetValue(network)!)}/disconnect", new DisconnectRequest(p.GetValue(netns)!),
                ControlJson.Default.DisconnectRequest, ControlJson.Default.EndpointView);
            s.Out.WriteLine(Describe(e));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>
    /// What to put in the namespace's resolv.conf for the network's names (the router answers DNS at the gateway), or
    /// null without a gateway.
    /// </summary>
    public static string? ResolvHint(EndpointView e) => e.Gateway is not { } gw ? null
        : e.Netns.Contains('/')
            ? $"names: the router answers DNS for {e.Network} at {gw}; put `nameserver {gw}` in the namespace's /etc/resolv.conf"
            : $"names: the router answers DNS for {e.Network} at {gw}; put `nameserver {gw}` in /etc/netns/{e.Netns}/resolv.conf (ip netns exec {e.Netns} reads it)";

    /// <summary>One line about an endpoint: "c1 on blue: eth0 198.18.0.2/24 02:42:c6:12:00:02".</summary>
    public static string Describe(EndpointView e) => $"{e.Netns} on {e.Network}: {e.Interface} {e.Ipv4Address} {e.MacAddress}";
}
