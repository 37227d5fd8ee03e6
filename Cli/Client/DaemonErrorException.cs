using System.Net;
using UserOverlay.Router;

namespace UserOverlay.Cli.Client;

/// <summary>
/// The router answered a request with an error: its stable <see cref="ApiCode"/> (Control/Networks/ControlErrorCodes,
/// "permission_denied", "bad_request", …) and its one-sentence <see cref="Exception.Message"/>, printed as is.
/// </summary>
public sealed class DaemonErrorException(HttpStatusCode status, string apiCode, string message)
    : RouterException(status == HttpStatusCode.Forbidden ? RouterErrorCode.PermissionDenied : RouterErrorCode.SystemError, message)
{
    /// <summary>The HTTP status of the answer.</summary>
    public HttpStatusCode Status { get; } = status;

    /// <summary>The daemon's error code, e.g. "not_found" or "in_use".</summary>
    public string ApiCode { get; } = apiCode;
}
