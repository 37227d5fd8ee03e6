namespace UserOverlay.Control.Networks;

/// <summary>
/// Stable codes of <see cref="ControlException"/>, for programs (the daemon maps them to HTTP statuses, a CLI to
/// exit codes). WARNING: only append — the strings cross the control socket and end up in scripts.
/// </summary>
public static class ControlErrorCodes
{
    /// <summary>A field of a request is malformed or out of range.</summary>
    public const string InvalidArgument = "invalid_argument";
    /// <summary>The request collides with something that exists (a name, VNI, subnet, address or MAC in use).</summary>
    public const string Conflict = "conflict";
    /// <summary>No network or endpoint matches the name or id.</summary>
    public const string NotFound = "not_found";
    /// <summary>An id prefix matches more than one network.</summary>
    public const string Ambiguous = "ambiguous";
    /// <summary>The object is still used (a network with attached endpoints).</summary>
    public const string InUse = "in_use";

    /// <summary>The caller may not do this (a wrong join token, a worker asking what only managers do, a network that is not attachable).</summary>
    public const string PermissionDenied = "permission_denied";
    /// <summary>A pool has nothing left to hand out (addresses, VNIs, default subnets).</summary>
    public const string Exhausted = "exhausted";
    /// <summary>The stored state cannot be read or is inconsistent; the message names the file or object.</summary>
    public const string CorruptState = "corrupt_state";
    /// <summary>The store could not write a change (disk full, read-only file system); nothing changed.</summary>
    public const string StorageFailed = "storage_failed";
    /// <summary>An operation failed and undoing its first half failed too; the message says what was left behind.</summary>
    public const string Internal = "internal";
    /// <summary>What the operation needs is not reachable now (no cluster manager answers); retrying later may succeed.</summary>
    public const string Unavailable = "unavailable";
}

/// <summary>
/// A control-plane failure a person can act on: a stable <see cref="Code"/> (see <see cref="ControlErrorCodes"/>),
/// the request <see cref="Field"/> it concerns when there is one, and one sentence that names the field and what is
/// wrong with it.
/// </summary>
public sealed class ControlException(string code, string message, string? field = null, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>What went wrong, for programs: one of <see cref="ControlErrorCodes"/>.</summary>
    public string Code { get; } = code;

    /// <summary>The request field at fault (e.g. "subnet", "aux-address", "ip"), or null.</summary>
    public string? Field { get; } = field;

    /// <summary>An <see cref="ControlErrorCodes.InvalidArgument"/> error about <paramref name="field"/>.</summary>
    public static ControlException Invalid(string field, string sentence) =>
        new(ControlErrorCodes.InvalidArgument, $"{field}: {sentence}", field);

    /// <summary>User text with control characters escaped (\u000a), so that a message stays one line.</summary>
    public static string Printable(string? s) =>
        string.Concat((s ?? "").Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    /// <summary>A <see cref="ControlErrorCodes.Conflict"/> error about <paramref name="field"/>.</summary>
    public static ControlException Conflicting(string field, string sentence) =>
        new(ControlErrorCodes.Conflict, $"{field}: {sentence}", field);
}
