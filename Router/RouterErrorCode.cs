namespace UserOverlay.Router;

/// <summary>Stable codes of errors a user or embedder can act on.</summary>
public enum RouterErrorCode
{
    /// <summary>The options are invalid (see <see cref="RouterOptionsException.Errors"/>).</summary>
    InvalidOptions,
    /// <summary>Creating TAP devices or entering namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).</summary>
    PermissionDenied,
    /// <summary>/dev/net/tun does not exist.</summary>
    TunUnavailable,
    /// <summary>The data-path address and port are already bound by another socket.</summary>
    PortInUse,
    /// <summary>The underlay address is not assigned to any interface of this namespace.</summary>
    AddressNotAvailable,
    /// <summary>An endpoint's network namespace does not exist.</summary>
    NamespaceNotFound,
    /// <summary>An interface of that name already exists in the endpoint's namespace.</summary>
    InterfaceExists,
    /// <summary>Any other failure of the operating system.</summary>
    SystemError,
    /// <summary>The platform is not Linux.</summary>
    PlatformNotSupported,
    /// <summary>Something of that identity is already there: a network's name or VNI, or an endpoint's MAC or address on its network.</summary>
    Conflict,
    /// <summary>No such thing: the network an operation names is not on this router.</summary>
    NotFound,
    /// <summary>The thing is still used: a network with endpoints attached cannot be removed.</summary>
    InUse,
}
