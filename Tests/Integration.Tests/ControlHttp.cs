using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// HTTP over a router's control socket (the run-time network API of Cli/Daemon/ControlApi.cs), for tests that make many
/// calls, concurrently: one pooled client, answers as (status, parsed JSON, raw body).
/// </summary>
internal sealed class ControlHttp(string socketPath) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            }
            catch
            {
                s.Dispose();
                throw;
            }
            return new NetworkStream(s, ownsSocket: true);
        },
    })
    { BaseAddress = new Uri("http://useroverlay/"), Timeout = TimeSpan.FromSeconds(60) };

    public async Task<(int Status, JsonElement Json, string Body)> Send(HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (json is not null) req.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var resp = await _http.SendAsync(req);
        string body = await resp.Content.ReadAsStringAsync();
        var parsed = body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone();
        return ((int)resp.StatusCode, parsed, body);
    }

    public Task<(int Status, JsonElement Json, string Body)> Get(string path) => Send(HttpMethod.Get, path);
    public Task<(int Status, JsonElement Json, string Body)> Post(string path, string json) => Send(HttpMethod.Post, path, json);
    public Task<(int Status, JsonElement Json, string Body)> Delete(string path) => Send(HttpMethod.Delete, path);

    /// <summary>Sends and asserts the status; returns the JSON.</summary>
    public async Task<JsonElement> Expect(int status, HttpMethod method, string path, string? json = null)
    {
        var (s, j, body) = await Send(method, path, json);
        Assert.True(s == status, $"{method} {path} {json}: expected {status}, got {s}: {body}");
        return j;
    }

    /// <summary>POST /v1/networks/NETWORK/connect for <paramref name="netns"/> (the address given or the next free); the Endpoint.</summary>
    public Task<(int Status, JsonElement Json, string Body)> Connect(string network, string netns, string? address = null) =>
        Send(HttpMethod.Post, $"v1/networks/{network}/connect",
            address is null ? $$"""{"netns":"{{netns}}"}""" : $$"""{"netns":"{{netns}}","address":"{{address}}"}""");

    /// <summary>POST /v1/networks/NETWORK/disconnect for <paramref name="netns"/>.</summary>
    public Task<(int Status, JsonElement Json, string Body)> Disconnect(string network, string netns) =>
        Send(HttpMethod.Post, $"v1/networks/{network}/disconnect", $$"""{"netns":"{{netns}}"}""");

    public void Dispose() => _http.Dispose();
}
