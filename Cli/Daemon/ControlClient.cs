using System.Net.Http;
using System.Net.Sockets;
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
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://useroverlay/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>
    /// Finds the socket of the router named <paramref name="name"/>; with no name, the only running
    /// router. Throws <see cref="RouterException"/> with a sentence saying what to do otherwise.
    /// </summary>
    public static string Resolve(string? name)
    {
        if (name is not null)
        {
            string p = ControlApi.SocketPath(name);
            if (!File.Exists(p))
                throw new RouterException(RouterErrorCode.SystemError, $"no router named '{name}' is running (no control socket {p})");
            return p;
        }
        string[] sockets = Directory.Exists(ControlApi.SocketDirectory)
            ? Directory.GetFiles(ControlApi.SocketDirectory, "*.sock").Where(IsLive).ToArray() : []; // stale sockets of killed routers don't count
        return sockets.Length switch
        {
            0 => throw new RouterException(RouterErrorCode.SystemError,
                $"no router is running (no control socket in {ControlApi.SocketDirectory}; start one with `useroverlay up --config FILE`, and run this as root)"),
            1 => sockets[0],
            _ => throw new RouterException(RouterErrorCode.SystemError,
                $"several routers are running ({string.Join(", ", sockets.Select(s => Path.GetFileNameWithoutExtension(s)).Order())}); choose one with --name"),
        };
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

    /// <summary>GETs a path and returns the body; non-success becomes a <see cref="RouterException"/> with the daemon's message.</summary>
    public async Task<string> GetAsync(string path, CancellationToken ct = default)
    {
        HttpResponseMessage resp;
        try
        {
            resp = await _http.GetAsync(path, ct);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException se)
        {
            throw new RouterException(RouterErrorCode.SystemError,
                se.SocketErrorCode == SocketError.AccessDenied
                    ? $"permission denied on {SocketPath} (run as root)"
                    : $"cannot reach the router at {SocketPath}: {se.Message} (is it still running?)");
        }
        string body = await resp.Content.ReadAsStringAsync(ct);
        if (!resp.IsSuccessStatusCode)
        {
            string msg = body;
            try { msg = ControlJson.Read(body, ControlJson.Default.ApiError).Message; } catch (System.Text.Json.JsonException) { }
            throw new RouterException(RouterErrorCode.SystemError, $"the router answered {(int)resp.StatusCode}: {msg}");
        }
        return body;
    }

    public void Dispose() => _http.Dispose();
}
