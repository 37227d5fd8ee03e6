using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

// TEMPORARY (deleted when the router's run-time API from wip-rt is merged): stand-ins with the signatures helper A is
// adding to OverlayRouter, so the daemon builds meanwhile. Instance methods win over these extensions once they exist.
internal static class RouterShim
{
    public static void AddNetwork(this OverlayRouter router, NetworkOptions network) =>
        throw new RouterException(RouterErrorCode.SystemError, $"this build's router cannot add network '{network.Name}' at run time yet");

    public static bool RemoveNetwork(this OverlayRouter router, string name) => false;

    public static LocalEndpointInfo AttachEndpoint(this OverlayRouter router, EndpointOptions endpoint) =>
        throw new RouterException(RouterErrorCode.SystemError, $"this build's router cannot attach '{endpoint.Netns}' at run time yet");

    public static bool DetachEndpoint(this OverlayRouter router, string network, string netns, string interfaceName) => false;
}
