namespace UserOverlay.Router;

/// <summary>Thrown by <see cref="OverlayRouter.Start"/> when <see cref="RouterOptions.Validate"/> finds problems.</summary>
public sealed class RouterOptionsException(IReadOnlyList<OptionError> errors)
    : RouterException(RouterErrorCode.InvalidOptions, "invalid router options:\n  " + string.Join("\n  ", errors))
{
    /// <summary>Every problem found, each with the path of its field.</summary>
    public IReadOnlyList<OptionError> Errors { get; } = errors;
}
