namespace UserOverlay.Router;

/// <summary>A local endpoint: a TAP device in a network namespace, attached to one network.</summary>
public sealed record EndpointOptions
{
    /// <summary>Name of the network the endpoint attaches to.</summary>
    public required string Network { get; init; }
    /// <summary>Network namespace: an <c>ip netns</c> name (resolved under /run/netns) or a path such as /proc/PID/ns/net.</summary>
    public required string Netns { get; init; }
    /// <summary>Name of the TAP device inside the namespace. Default eth0.</summary>
    public string Interface { get; init; } = "eth0";
    /// <summary>The endpoint's IPv4 address (host order).</summary>
    public required uint Address { get; init; }
    /// <summary>Prefix length of the address; must equal the network's.</summary>
    public required int PrefixLength { get; init; }
    /// <summary>MAC of the TAP device; when null it is derived from the address (02:00 + the four octets).</summary>
    public MacAddress? Mac { get; init; }

    /// <summary>
    /// True when a container runtime takes the TAP: it is created in the router's own namespace, named
    /// <see cref="Interface"/>, with its MAC and MTU but no address and down, and the runtime moves it into the workload
    /// and configures it (Docker's remote network driver: Join's SrcName). <see cref="Netns"/> then only names the
    /// workload. The device stays attached to the router's descriptor wherever it is moved.
    /// </summary>
    public bool HandOff { get; init; }

    /// <summary>The MAC the endpoint will have.</summary>
    public MacAddress EffectiveMac => Mac ?? MacAddress.FromIPv4(VtepEndpoint.ToIPAddress(Address));
}
