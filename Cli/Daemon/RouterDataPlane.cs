using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Crypto;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The daemon's data plane for <see cref="NetworkManager"/>: the running <see cref="OverlayRouter"/>, and in gossip mode
/// the <see cref="GossipAgent"/> too, so that a network created at run time is served in gossip and an endpoint
/// attached at run time is announced at once (and withdrawn at once on detach).
/// <list type="bullet">
/// <item>AddNetwork: the key of an encrypted network created with <c>key_file</c> (read here, by the daemon, into the
/// router's key source under the network's name), router, then gossip (<see cref="GossipAgent.JoinNetwork"/>);
/// RemoveNetwork: gossip, router, then that key. Only the file's path is stored; the key never leaves this process.</item>
/// <item>AttachEndpoint: router (the TAP appears with its address, MTU and routes), then
/// <see cref="GossipAgent.PublishEndpoint"/>; DetachEndpoint: <see cref="GossipAgent.WithdrawEndpoint"/>, then router.</item>
/// </list>
/// The router's refusals (<see cref="RouterException"/>, <see cref="RouterOptionsException"/>) become
/// <see cref="ControlException"/>s with the API's codes and the request's field named, so the API answers them as the
/// manager's own; a step that fails after the router's undoes the router's, so nothing is left half made.
/// Called under the manager's lock, one call at a time.
/// </summary>
internal sealed class RouterDataPlane(OverlayRouter router, Func<GossipAgent?> gossip, DnsService? dns = null) : INetworkDataPlane
{
    /// <inheritdoc/>
    public void AddNetwork(NetworkDefinition network)
    {
        NetworkKey? replaced = null;
        bool keyAdded = false;
        if (network.Options.TryGetValue(NetworkValidator.KeyFileOption, out string? keyFile))
        {
            if (router.Options.Encryption?.Keys is not StaticNetworkKeySource keys)
                throw new ControlException(ControlErrorCodes.InvalidArgument,
                    $"opt: {NetworkValidator.KeyFileOption} needs ESP on this host, and its configuration file has no `encryption:` section: add one (e.g. `encryption: {{ state_dir: {Config.EncryptionSection.DefaultStateDirectory} }}`) and restart the daemon",
                    "opt");
            var key = ReadKey(network.Name, keyFile);
            keys.TryGetKey(network.Name, out replaced);
            keys.Set(key);
            keyAdded = true;
        }
        // The router's own refusal names its options (Encryption.Keys); a user needs to know where a key comes from.
        else if (network.Encrypted && network.Scope == NetworkManager.SwarmScope && router.Options.Encryption is null)
            throw new ControlException(ControlErrorCodes.InvalidArgument,
                $"opt: the cluster's network '{network.Name}' is encrypted, and this host's configuration file has no `encryption:` section, so its router has no ESP: add one (e.g. `encryption: {{ esp: udp }}`; the cluster hands out the keys) and restart the daemon",
                "opt");
        else if (network.Encrypted && router.Options.Encryption?.Keys.TryGetKey(network.Name, out _) != true)
            throw new ControlException(ControlErrorCodes.InvalidArgument,
                $"opt: encrypted needs a key for '{network.Name}': give -o {NetworkValidator.KeyFileOption}=PATH (the same key file on every host), or declare the network in the configuration file with key: or key_file:",
                "opt");
        try
        {
            Map(() => router.AddNetwork(ToOptions(network)), "network");
            try
            {
                gossip()?.JoinNetwork(new GossipNetwork(network.Name, network.Vni));
                dns?.NetworkAdded(network);
            }
            catch (ArgumentException e)
            {
                router.RemoveNetwork(network.Name);
                throw new ControlException(ControlErrorCodes.Conflict, $"vni: {e.Message}", "vni", e);
            }
        }
        catch when (keyAdded)
        {
            var keys = (StaticNetworkKeySource)router.Options.Encryption!.Keys;
            if (replaced is not null) keys.Set(replaced);
            else keys.Remove(network.Name);
            throw;
        }
    }

    /// <inheritdoc/>
    public void RemoveNetwork(NetworkDefinition network)
    {
        gossip()?.LeaveNetwork(network.Vni);
        dns?.NetworkRemoved(network);
        try { Map(() => router.RemoveNetwork(network.Name), "network"); }
        catch (ControlException e) when (e.Code == ControlErrorCodes.NotFound) { } // already gone: removing succeeds
        // The key this plane read from key_file goes with the network (a configuration file's key stays with the file).
        if (!network.FromConfig && network.Options.ContainsKey(NetworkValidator.KeyFileOption) && router.Options.Encryption?.Keys is StaticNetworkKeySource keys)
            keys.Remove(network.Name);
    }

    // The network's key from its key_file, by the configuration's rules (base64 of 16/32 bytes, or 16/32 raw bytes).
    // The messages name the path and sizes, never the key.
    private static NetworkKey ReadKey(string network, string path)
    {
        try
        {
            return NetworkKey.FromFile(network, path);
        }
        catch (FormatException e)
        {
            throw new ControlException(ControlErrorCodes.InvalidArgument, $"opt: {e.Message}", "opt", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string why = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw new ControlException(ControlErrorCodes.InvalidArgument, $"opt: cannot read {NetworkValidator.KeyFileOption} '{path}' of network '{network}': {why}", "opt", e);
        }
    }

    /// <inheritdoc/>
    public void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint)
    {
        var info = Map(() => router.AttachEndpoint(endpoint.ToEndpointOptions(network)), "netns");
        try
        {
            var names = dns?.EndpointAttached(network, endpoint);
            gossip()?.PublishEndpoint(info, names);
        }
        catch (ArgumentException e)
        {
            dns?.EndpointDetached(network, endpoint);
            router.DetachEndpoint(network.Name, endpoint.Netns, endpoint.Interface);
            throw new ControlException(ControlErrorCodes.Internal, $"network: gossip does not serve '{network.Name}': {e.Message}", "network", e);
        }
    }

    /// <inheritdoc/>
    public void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint)
    {
        gossip()?.WithdrawEndpoint(network.Vni, endpoint.Mac);
        dns?.EndpointDetached(network, endpoint);
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
