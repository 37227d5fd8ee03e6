using System.Net.Sockets;
using System.Text;

namespace UserOverlay.Cli.Tests;

/// <summary>
/// A control socket in a temporary directory that answers HTTP/1.1 requests from a table ("METHOD /path" → status
/// and JSON body) and records what it was sent — enough to check the client's side of the contract (request
/// paths and bodies, error mapping, output) without a router. The real daemon is tested in Integration.Tests.
/// </summary>
public sealed class FakeRouter : IDisposable
{
    private readonly Socket _listener;
    private readonly Dictionary<string, (int Status, string Body)> _answers = new(StringComparer.Ordinal);
    private readonly List<(string Request, string Body)> _received = [];
    private readonly CancellationTokenSource _stop = new();

    private readonly bool _ownsDirectory;

    public string Directory { get; }
    public string SocketPath { get; }

    /// <param name="name">the router's name (its socket is DIRECTORY/NAME.sock)</param>
    /// <param name="listen">false: a socket file nobody listens on (as a killed router's)</param>
    public FakeRouter(string name = "r1", string? directory = null, bool listen = true)
    {
        _ownsDirectory = directory is null;
        Directory = directory ?? System.IO.Directory.CreateTempSubdirectory("uo-cli-").FullName;
        SocketPath = Path.Combine(Directory, name + ".sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        if (!listen) return; // bound, never listening: connecting is refused, as on a killed router's socket file
        _listener.Listen(16);
        _ = Task.Run(AcceptLoop);
    }

    /// <summary>Answers <paramref name="request"/> ("GET /v1/networks") with <paramref name="status"/> and <paramref name="body"/>.</summary>
    public FakeRouter On(string request, int status, string body = "")
    {
        lock (_answers) _answers[request] = (status, body);
        return this;
    }

    /// <summary>The requests received so far ("POST /v1/networks") with their bodies.</summary>
    public IReadOnlyList<(string Request, string Body)> Received { get { lock (_received) return [.. _received]; } }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try { s = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => Serve(s));
        }
    }

    private async Task Serve(Socket s)
    {
        using var _ = s;
        using var stream = new NetworkStream(s);
        var buffer = new List<byte>();
        var chunk = new byte[4096];
        int headerEnd;
        while ((headerEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
        {
            int n = await stream.ReadAsync(chunk);
            if (n == 0) return;
            buffer.AddRange(chunk.AsSpan(0, n));
        }
        string head = Encoding.ASCII.GetString(buffer.GetRange(0, headerEnd).ToArray());
        string[] lines = head.Split("\r\n");
        int length = lines.Skip(1).Select(l => l.Split(':', 2)).Where(kv => kv[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            .Select(kv => int.Parse(kv[1].Trim())).FirstOrDefault();
        while (buffer.Count < headerEnd + 4 + length)
        {
            int n = await stream.ReadAsync(chunk);
            if (n == 0) return;
            buffer.AddRange(chunk.AsSpan(0, n));
        }
        string body = Encoding.UTF8.GetString(buffer.GetRange(headerEnd + 4, length).ToArray());
        string[] first = lines[0].Split(' ');
        string request = first[0] + " " + first[1];
        lock (_received) _received.Add((request, body));
        (int Status, string Body) answer;
        lock (_answers)
            answer = _answers.TryGetValue(request, out var a) ? a : (404, """{"code":"not_found","message":"no such endpoint: """ + request + "\"}");
        byte[] payload = Encoding.UTF8.GetBytes(answer.Body);
        string response = $"HTTP/1.1 {answer.Status} X\r\nContent-Type: application/json\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(response));
        await stream.WriteAsync(payload);
    }

    private static int IndexOf(List<byte> b, ReadOnlySpan<byte> pattern)
    {
        for (int i = 0; i + pattern.Length <= b.Count; i++)
        {
            int j = 0;
            while (j < pattern.Length && b[i + j] == pattern[j]) j++;
            if (j == pattern.Length) return i;
        }
        return -1;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { File.Delete(SocketPath); } catch (IOException) { }
        if (_ownsDirectory) System.IO.Directory.Delete(Directory, recursive: true);
    }
}
