using System.Net.Http;
using System.Net.Sockets;
using UserOverlay.Cli.Client;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>Talks to a running router's control socket (HTTP + JSON over the Unix socket).</summary>
public sealed class ControlClient : IDisposable
{
    private readonly HttpClient _http;

    /// <summary>The socket this client talks to.</summary>
    public string SocketPath { get; }

    public ControlClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://useroverlay/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>True when something accepts connections on the socket.</summary>
    public static bool IsLive(string path)
    {
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>GETs a path and returns the body; an error answer becomes a <see cref="DaemonErrorException"/> with the daemon's message.</summary>
    public Task<string> GetAsync(string path, CancellationToken ct = default) => SendAsync(HttpMethod.Get, path, null, ct);

    /// <summary>
    /// Sends a request (with a JSON body when <paramref name="json"/> is not null) and returns the answer's body.
    /// A socket that cannot be reached becomes a <see cref="RouterException"/> saying what to do; an error answer
    /// becomes a <see cref="DaemonErrorException"/> carrying the daemon's code and sentence.
    /// </summary>
    public async Task<string> SendAsync(HttpMethod method, string path, string? json, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        HttpResponseMessage resp;
        try
        {
            resp = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException se)
        {
            throw new RouterException(se.SocketErrorCode == SocketError.AccessDenied ? RouterErrorCode.PermissionDenied : RouterErrorCode.SystemError,
                se.SocketErrorCode == SocketError.AccessDenied
                    ? $"permission denied on {SocketPath}: the control socket is for root and its group; run this as root (sudo)"
                    : $"cannot reach the router at {SocketPath}: {se.Message} (is it still running?)");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new RouterException(RouterErrorCode.SystemError, $"the router at {SocketPath} did not answer {method} /{path} within {_http.Timeout.TotalSeconds:0} s");
        }
        using (resp)
        {
            string body = await resp.Content.ReadAsStringAsync(ct);
            if (resp.IsSuccessStatusCode) return body;
            ApiError? error = null;
            try { error = System.Text.Json.JsonSerializer.Deserialize(body, ControlJson.Default.ApiError); } catch (System.Text.Json.JsonException) { }
            throw error is { Message.Length: > 0 }
                ? new DaemonErrorException(resp.StatusCode, error.Code, error.Message)
                : new DaemonErrorException(resp.StatusCode, $"http_{(int)resp.StatusCode}",
                    $"the router answered {method} /{path} with {(int)resp.StatusCode} {resp.ReasonPhrase}{(body.Length == 0 ? "" : ": " + body.Trim())}");
        }
    }

    public void Dispose() => _http.Dispose();
}
