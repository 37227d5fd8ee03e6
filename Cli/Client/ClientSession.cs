using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using UserOverlay.Cli.Commands;
using UserOverlay.Cli.Daemon;

namespace UserOverlay.Cli.Client;

/// <summary>
/// One client command's conversation with its router: <see cref="Run"/> resolves the host (-H, $USEROVERLAY_HOST,
/// discovery), opens the control socket, runs the command's body and turns any failure into one sentence on stderr
/// and an exit code (<see cref="ExitCodes"/>). Bodies call the typed helpers below and print to <see cref="Out"/>.
/// Synchronous on purpose: a CLI process makes one request after another.
/// </summary>
public sealed class ClientSession : IDisposable
{
    private readonly Lazy<ControlClient> _client;

    private ClientSession(Func<string> socket, TextWriter output, TextWriter error)
    {
        _client = new Lazy<ControlClient>(() => new ControlClient(socket()));
        Out = output;
        Error = error;
    }

    /// <summary>Where results go (the invocation's output; Console.Out in the binary).</summary>
    public TextWriter Out { get; }

    /// <summary>Where errors and warnings go.</summary>
    public TextWriter Error { get; }

    /// <summary>The control socket in use (resolved on first use).</summary>
    public string SocketPath => _client.Value.SocketPath;

    /// <summary>
    /// Runs <paramref name="body"/> against the router <paramref name="host"/> selects and returns its exit code, or
    /// the code of the error it throws (printed as one sentence). The socket is resolved lazily, on the first request,
    /// so a body may fail a usage check before any router is needed.
    /// </summary>
    public static int Run(ParseResult p, HostOption host, Func<ClientSession, int> body)
    {
        var error = p.InvocationConfiguration.Error;
        try
        {
            string? value = host.Value(p);
            using var session = new ClientSession(() => RouterHost.Resolve(value), p.InvocationConfiguration.Output, error);
            return body(session);
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, error);
        }
    }

    /// <summary>GET; the raw body.</summary>
    public string Get(string path) => _client.Value.GetAsync(path).GetAwaiter().GetResult();

    /// <summary>GET; the body read as <typeparamref name="T"/>.</summary>
    public T Get<T>(string path, JsonTypeInfo<T> type) => Read(Get(path), type);

    /// <summary>POST <paramref name="request"/>; the answer read as <typeparamref name="TAnswer"/>.</summary>
    public TAnswer Post<TRequest, TAnswer>(string path, TRequest request, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TAnswer> answerType) =>
        Read(_client.Value.SendAsync(HttpMethod.Post, path, JsonSerializer.Serialize(request, requestType)).GetAwaiter().GetResult(), answerType);

    /// <summary>DELETE.</summary>
    public void Delete(string path) => _client.Value.SendAsync(HttpMethod.Delete, path, null).GetAwaiter().GetResult();

    /// <summary>A path segment from user text (a name, an id), escaped.</summary>
    public static string Segment(string s) => Uri.EscapeDataString(s);

    private static T Read<T>(string body, JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(body, type) ?? throw new InvalidDataException("the router sent an empty answer");

    /// <summary>Runs <paramref name="each"/> for every item, printing each failure and going on (docker rm's way); 1 if any failed.</summary>
    public int ForEach(IEnumerable<string> items, Action<string> each)
    {
        _ = _client.Value; // an unknown router fails once, not once per item
        int code = ExitCodes.Ok;
        foreach (string item in items)
        {
            try
            {
                each(item);
            }
            catch (Exception e) when (e is not UsageException)
            {
                code = Math.Max(code, ExitCodes.Report(e, Error));
            }
        }
        return code;
    }

    public void Dispose()
    {
        if (_client.IsValueCreated) _client.Value.Dispose();
    }
}
