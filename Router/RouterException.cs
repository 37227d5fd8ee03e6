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
}

/// <summary>A failure with a stable code and a sentence a person can act on. No stack trace needed.</summary>
public class RouterException(RouterErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>What went wrong, for programs.</summary>
    public RouterErrorCode Code { get; } = code;
}

/// <summary>Thrown by <see cref="OverlayRouter.Start"/> when <see cref="RouterOptions.Validate"/> finds problems.</summary>
public sealed class RouterOptionsException(IReadOnlyList<OptionError> errors)
    : RouterException(RouterErrorCode.InvalidOptions, "invalid router options:\n  " + string.Join("\n  ", errors))
{
    /// <summary>Every problem found, each with the path of its field.</summary>
    public IReadOnlyList<OptionError> Errors { get; } = errors;
}
