using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The daemon's data plane for <see cref="NetworkManager"/>: the running <see cref="OverlayRouter"/>, and in gossip mode
/// the <see cref="GossipAgent"/> too, so that a network created at run time is served in gossip and an endpoint
/// attached at run time is announced at once (and withdrawn at once on detach).
/// <list type="bullet">
/// <item>AddNetwork: router, then gossip (<see cref="GossipAgent.JoinNetwork"/>); RemoveNetwork: gossip, then router.</item>
/// <item>AttachEndpoint: router (the TAP appears with its address, MTU and routes), then
/// <see cref="GossipAgent.PublishEndpoint"/>; DetachEndpoint: <see cref="GossipAgent.WithdrawEndpoint"/>, then router.</item>
/// </list>
/// The router's refusals (<see cref="RouterException"/>, <see cref="RouterOptionsException"/>) become
/// <see cref="ControlException"/>s with the API's codes and the request's field named, so the API answers them as the
/// manager's own; a step that fails after the router's undoes the router's, so nothing is left half made.
/// Called under the manager's lock, one call at a time.
/// </summary>
internal sealed class RouterDataPlane(OverlayRouter router, Func<GossipAgent?> gossip) : INetworkDataPlane
{
    /// <inheritdoc/>
    public void AddNetwork(NetworkDefinition network)
    {
        // The router's own refusal names its options (Encryption.Keys); a user needs to know where a key comes from.
        if (network.Encrypted && router.Options.Encryption?.Keys.TryGetKey(network.Name, out _) != true)
            throw new ControlException(ControlErrorCodes.InvalidArgument,
                $"opt: encrypted needs a key for '{network.Name}', and on a host outside a cluster only the configuration file gives keys: declare the network there with key: or key_file:",
                "opt");
        Map(() => router.AddNetwork(ToOptions(network)), "network");
        try
        {
            gossip()?.JoinNetwork(new GossipNetwork(network.Name, network.Vni));
        }
        catch (ArgumentException e)
        {
            router.RemoveNetwork(network.Name);
            throw new ControlException(ControlErrorCodes.Conflict, $"vni: {e.Message}", "vni", e);
        }
    }

    /// <inheritdoc/>
    public void RemoveNetwork(NetworkDefinition network)
    {
        gossip()?.LeaveNetwork(network.Vni);
        try { Map(() => router.RemoveNetwork(network.Name), "network"); }
        catch (ControlException e) when (e.Code == ControlErrorCodes.NotFound) { } // already gone: removing succeeds
    }

    /// <inheritdoc/>
    public void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint)
    {
        var info = Map(() => router.AttachEndpoint(endpoint.ToEndpointOptions(network)), "netns");
        try
        {
            gossip()?.PublishEndpoint(info);
        }
        catch (ArgumentException e)
        {
            router.DetachEndpoint(network.Name, endpoint.Netns, endpoint.Interface);
            throw new ControlException(ControlErrorCodes.Internal, $"network: gossip does not serve '{network.Name}': {e.Message}", "network", e);
        }
    }

    /// <inheritdoc/>
    public void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint)
    {
        gossip()?.WithdrawEndpoint(network.Vni, endpoint.Mac);
        Map(() => router.DetachEndpoint(network.Name, endpoint.Netns, endpoint.Interface), "netns"); // false (already gone) is fine
    }

    /// <summary>The router's description of a network (its gateway and internal flag included).</summary>
    public static NetworkOptions ToOptions(NetworkDefinition network) => network.ToNetworkOptions();

    private static T Map<T>(Func<T> call, string defaultField)
    {
        try
        {
            return call();
        }
        catch (RouterOptionsException e)
        {
            var first = e.Errors[0];
            string field = FieldOf(first.Path) ?? defaultField;
            throw new ControlException(ControlErrorCodes.InvalidArgument, $"{field}: {first.Message}", field, e);
        }
        catch (RouterException e)
        {
            // The router's messages start with the options path ("Endpoint.Address: …"): the API names its own field.
            string message = e.Message;
            string? pathField = null;
            int colon = message.IndexOf(": ", StringComparison.Ordinal);
            if (colon > 0 && message[..colon].StartsWith("Endpoint.", StringComparison.Ordinal) || colon > 0 && message[..colon].StartsWith("Network.", StringComparison.Ordinal))
            {
                pathField = FieldOf(message[..colon]);
                message = message[(colon + 2)..];
            }
            var (code, field) = e.Code switch
            {
                RouterErrorCode.NamespaceNotFound => (ControlErrorCodes.NotFound, "netns"),
                RouterErrorCode.InterfaceExists => (ControlErrorCodes.Conflict, "interface"),
                RouterErrorCode.InvalidOptions => (ControlErrorCodes.InvalidArgument, pathField ?? defaultField),
                RouterErrorCode.Conflict => (ControlErrorCodes.Conflict, pathField ?? defaultField),
                RouterErrorCode.NotFound => (ControlErrorCodes.NotFound, pathField ?? defaultField),
                RouterErrorCode.InUse => (ControlErrorCodes.InUse, pathField ?? defaultField),
                _ => (ControlErrorCodes.Internal, pathField ?? defaultField),
            };
            throw new ControlException(code, $"{field}: {message}", field, e);
        }
    }

    private static void Map(Action call, string defaultField) => Map(() => { call(); return 0; }, defaultField);

    // "Networks[0].Mtu" → "mtu", "Endpoints[0].Interface" → "interface", "Endpoints[0].Address" → "ip".
    private static string? FieldOf(string path)
    {
        string last = path[(path.LastIndexOf('.') + 1)..];
        return last switch
        {
            "Address" => "ip",
            "Netns" => "netns",
            "Interface" => "interface",
            "Mac" => "mac",
            "Mtu" => "mtu",
            "Subnet" => "subnet",
            "Gateway" => "gateway",
            "Vni" => "vni",
            "Name" => "name",
            "Key" or "Encrypted" => "opt",
            _ => null,
        };
    }
}
