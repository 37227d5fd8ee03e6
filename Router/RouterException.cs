namespace UserOverlay.Router;

/// <summary>A failure with a stable code and a sentence a person can act on. No stack trace needed.</summary>
public class RouterException(RouterErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>What went wrong, for programs.</summary>
    public RouterErrorCode Code { get; } = code;
}
