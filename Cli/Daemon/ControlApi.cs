using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The control socket's API, shaped like Docker's daemon API: HTTP/1.1 + JSON over the Unix socket
/// /run/useroverlay/NAME.sock. Request bodies and the API's own responses are snake_case; network inspect bodies are
/// Docker's PascalCase shape (<see cref="UserOverlay.Control.Networks.NetworkInspect"/>).
/// <para>
/// Access: the directory /run/useroverlay is 0755; the socket is 0660 root:GROUP (<c>up --group</c>; default the group
/// "useroverlay" if it exists, else root). Each request's caller is read with SO_PEERCRED: GET routes (except
/// <c>/v1/sa</c>, which holds keys) are open to whoever can connect; every POST and DELETE, and <c>/v1/sa</c>, need uid 0,
/// else 403 <c>permission_denied</c> "this needs root: the router's control socket accepts changes only from uid 0 (you are uid N)".
/// </para>
/// <para>
/// Errors: the status and <see cref="ApiError"/> <c>{"code", "message"}</c>; the message is one sentence that starts with
/// the request field at fault ("subnet: 198.18.4.128/25 overlaps 198.18.4.0/24 of network 'green'"). Codes are
/// <see cref="UserOverlay.Control.Networks.ControlErrorCodes"/> plus <c>permission_denied</c> and <c>bad_request</c>
/// (a body that is not the route's JSON). Statuses: invalid_argument, ambiguous, bad_request 400; permission_denied 403;
/// not_found 404; conflict, in_use, exhausted 409; storage_failed, corrupt_state, internal 500.
/// </para>
/// <list type="bullet">
/// <item><c>GET /_ping</c> → "OK"; <c>GET /v1/version</c> → <see cref="VersionInfo"/>; <c>GET /v1/status</c> → <see cref="RouterStatus"/></item>
/// <item><c>GET /v1/sa</c> → <see cref="SaResponse"/> (root; encrypted networks only, else 404 encryption_disabled)</item>
/// <item><c>GET /v1/members</c> → <see cref="UserOverlay.Control.Gossip.MembersResponse"/> (gossip mode; otherwise 503 gossip_disabled)</item>
/// <item><c>GET /v1/networks</c> → 200 [NetworkInspect, …] sorted by name (the configuration file's networks too)</item>
/// <item><c>POST /v1/networks</c> body <see cref="UserOverlay.Control.Networks.NetworkCreateRequest"/>
/// <c>{"name", "driver"?, "subnet", "gateway"?, "ip_range"?, "aux_addresses"?: {NAME: IP}, "vni"?, "mtu"?, "encrypted"?,
/// "internal"?, "attachable"?, "labels"?: {K: V}, "options"?: {K: V}}</c> → 201 NetworkInspect. The subnet is required
/// (no default address pool); the gateway defaults to the first usable address; the VNI to the lowest free from 4096.</item>
/// <item><c>GET /v1/networks/{name-or-id}</c> → 200 NetworkInspect (full id, name, or unique id prefix; an ambiguous prefix → 400 ambiguous)</item>
/// <item><c>DELETE /v1/networks/{name-or-id}</c> → 204; 409 in_use naming the attached endpoints</item>
/// <item><c>POST /v1/networks/{name-or-id}/connect</c> body <see cref="ConnectRequest"/>
/// <c>{"netns", "name"?, "interface"?, "address"?, "mac"?, "aliases"?: [...]}</c> → 201 Endpoint. netns: an <c>ip netns</c>
/// name or a path such as /proc/PID/ns/net; name defaults to netns, interface to eth0, address to the next free one,
/// mac to 02:00 + the address.</item>
/// <item><c>POST /v1/networks/{name-or-id}/disconnect</c> body <see cref="DisconnectRequest"/> <c>{"netns"}</c> or
/// <c>{"name"}</c> (the endpoint's name or id) → 200 Endpoint (the one removed)</item>
/// <item><c>GET /v1/networks/{name-or-id}/endpoints</c> → 200 [Endpoint, …] sorted by name;
/// <c>GET /v1/networks/{name-or-id}/endpoints/{endpoint-name-or-id}</c> → 200 <see cref="EndpointDetail"/> (the Endpoint's
/// fields and "subnet", "gateway", "mtu", "internal", "netns_present", "interface_mac": the MAC of the interface found in
/// the namespace now, null when it is gone); 404 not_found</item>
/// <item>Endpoint (<see cref="EndpointView"/>) = <c>{"id", "network", "network_id", "name", "netns", "interface",
/// "mac_address", "ipv4_address": "198.18.4.2/24", "aliases": [...]}</c></item>
/// <item><c>GET /v1/workloads</c> → 200 [Workload, …] sorted by name</item>
/// <item><c>POST /v1/workloads</c> body <see cref="WorkloadCreateRequest"/> <c>{"name"?, "networks": [{"network",
/// "address"?, "aliases"?}], "detached": bool, "client_pid"?: int}</c> → 201 Workload. The daemon makes a fresh namespace
/// uo-NAME (as <c>ip netns add</c>, in the caller's mount namespace), attaches it to each network in order (interfaces
/// eth0, eth1, …); any failure undoes everything. name defaults to 12 random hex characters (1 to 60 letters, digits,
/// '_', '.', '-'); client_pid, for a workload that is not detached, defaults to the caller's pid (SO_PEERCRED).</item>
/// <item><c>DELETE /v1/workloads/{name}</c> → 204 (detaches all, deletes the namespace); 404 not_found</item>
/// <item>Workload (<see cref="WorkloadView"/>) = <c>{"name", "netns": "uo-NAME", "netns_path": "/run/netns/uo-NAME",
/// "created": ISO 8601, "detached", "client_pid": int|null, "endpoints": [Endpoint, …]}</c>. A workload that is not
/// detached is removed by the daemon within a second or so of its client_pid exiting.</item>
/// </list>
/// State: networks, endpoints and workloads persist in the state directory (<c>up --state-dir</c>, default
/// /var/lib/useroverlay/NAME) and are restored at start; the configuration file's own are seeded again at every start
/// (<see cref="UserOverlay.Control.Networks.NetworkManager.Seed"/>). Unknown routes → 404 not_found.
/// </summary>
public static class ControlApi
{
    /// <summary>Directory of the control sockets.</summary>
    public const string SocketDirectory = "/run/useroverlay";

    /// <summary>Path of the socket of the router named <paramref name="name"/>.</summary>
    public static string SocketPath(string name) => Path.Combine(SocketDirectory, name + ".sock");

    /// <summary>True when <paramref name="name"/> is usable as a router name (and so as a file name).</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.';
}
