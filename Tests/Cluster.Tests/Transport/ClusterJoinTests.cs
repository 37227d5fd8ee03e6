using System.Net;
using System.Net.Http.Json;
using System.Text;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Transport;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Transport;

/// <summary>Joining through a real cluster port on 127.0.0.1: both tokens, and every way a join is refused.</summary>
public sealed class ClusterJoinTests : IAsyncLifetime
{
    private ClusterPort _port = null!;
    private readonly ClusterClient _client = new();

    public async ValueTask InitializeAsync() => _port = await ClusterPort.StartAsync();

    public ValueTask DisposeAsync() => _port.DisposeAsync();

    [Fact]
    public async Task A_worker_token_joins_a_worker_that_then_calls_node_routes()
    {
        using var id = await _client.JoinAsync(_port.Address, _port.Authority.WorkerToken, "host-w1", "192.0.2.11:2377", "192.0.2.11");
        Assert.Equal(NodeRole.Worker, id.Role);
        Assert.Equal("cluster-a", id.ClusterId);
        Assert.Equal(NodeRole.Worker, _port.Authority.Roles[id.NodeId]);
        Assert.Contains("OU=swarm-worker", id.Certificate.Subject, StringComparison.Ordinal);
        Assert.True(id.Certificate.HasPrivateKey);
        Assert.Equal(_port.Ca.CertificatePem, id.RootPem);
        Assert.Equal(1, _port[ClusterServerEvent.JoinedWorker]);
        Assert.Equal(0, _port[ClusterServerEvent.JoinedManager]);

        var call = Assert.Single(_port.Authority.Calls);
        Assert.Equal(("host-w1", "192.0.2.11:2377", "192.0.2.11"), (call.Hostname, call.AdvertiseAddress, call.DataPathAddress));
        Assert.Equal(IPAddress.Loopback, call.RemoteAddress?.IsIPv4MappedToIPv6 == true ? call.RemoteAddress.MapToIPv4() : call.RemoteAddress);

        using var http = _client.CreateHttpClient(id, _port.Address);
        Assert.Equal($"{id.NodeId} Worker cluster-a", await http.GetStringAsync("/v1/test/whoami"));
    }

    [Fact]
    public async Task A_manager_token_joins_a_manager_that_may_call_manager_routes()
    {
        using var id = await _client.JoinAsync(_port.Address, _port.Authority.ManagerToken, "host-m1", "192.0.2.12:2377", "192.0.2.12");
        Assert.Equal(NodeRole.Manager, id.Role);
        Assert.Contains("OU=swarm-manager", id.Certificate.Subject, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.JoinedManager]);
        using var http = _client.CreateHttpClient(id, _port.Address);
        Assert.Equal($"manager {id.NodeId}", await http.GetStringAsync("/v1/test/manager"));
    }

    [Fact]
    public async Task A_wrong_secret_is_refused_counted_and_gets_no_certificate()
    {
        var wrong = JoinToken.Create(_port.Ca.CertificatePem); // right digest, unknown secret
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.JoinAsync(_port.Address, wrong, "h", "192.0.2.13:2377", "192.0.2.13"));
        Assert.Equal("bad_token", e.Code);
        Assert.Equal(403, e.Status);
        Assert.Contains($"the manager at {_port.Address} refused: the join token is not valid", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.BadToken]);
        Assert.Equal(0, _port[ClusterServerEvent.JoinedWorker] + _port[ClusterServerEvent.JoinedManager]);
        Assert.Equal(["m0"], _port.Authority.Roles.Keys);
    }

    [Fact]
    public async Task A_rotated_token_is_refused_and_the_new_one_works()
    {
        var old = _port.Authority.WorkerToken;
        var fresh = _port.Authority.Rotate(NodeRole.Worker);
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.JoinAsync(_port.Address, old, "h", "192.0.2.14:2377", "192.0.2.14"));
        Assert.Equal("bad_token", e.Code);
        Assert.Equal(1, _port[ClusterServerEvent.BadToken]);
        using var id = await _client.JoinAsync(_port.Address, fresh, "h", "192.0.2.14:2377", "192.0.2.14");
        Assert.Equal(NodeRole.Worker, id.Role);
    }

    [Fact]
    public async Task A_token_for_another_ca_is_refused_by_the_client_before_anything_is_sent()
    {
        using var other = ClusterCa.Create("cluster-a");
        var foreign = JoinToken.Create(other.CertificatePem);
        var e = await Assert.ThrowsAsync<ClusterClientException>(() => _client.JoinAsync(_port.Address, foreign, "h", "192.0.2.15:2377", "192.0.2.15"));
        Assert.Equal("ca_mismatch", e.Code);
        Assert.Contains($"the manager at {_port.Address} presents a CA whose digest does not match the token", e.Message, StringComparison.Ordinal);
        Assert.Contains(foreign.Digest, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(foreign.Secret, e.Message, StringComparison.Ordinal);
        // The server saw the CA fetched and nothing else.
        Assert.Equal(1, _port[ClusterServerEvent.CaServed]);
        Assert.Equal(0, _port[ClusterServerEvent.JoinRequests]);
        Assert.Empty(_port.Authority.Calls);
    }

    [Fact]
    public async Task The_pinned_root_is_the_served_pem_verbatim()
    {
        var pinned = await _client.FetchAndPinRootAsync(_port.Address, _port.Authority.WorkerToken);
        Assert.Equal(_port.Ca.CertificatePem, pinned.Pem);
        Assert.Equal("cluster-a", pinned.ClusterId);
        Assert.Equal(_port.Ca.Certificate.Thumbprint, pinned.Certificate.Thumbprint);
    }

    public static TheoryData<string, string> MalformedTokens => new()
    {
        { "SWMTKN-2-1-" + new string('0', 50) + "-" + new string('0', 25), "token: the join token's version is '2'" },
        { "nonsense", "token: the join token must start with 'SWMTKN-'" },
        { "SWMTKN-1-" + new string('0', 49) + "-" + new string('0', 25), "token: the join token's digest is 49 characters" },
    };

    [Theory]
    [MemberData(nameof(MalformedTokens))]
    public async Task Malformed_tokens_are_refused_by_the_server_with_the_reason(string token, string expected)
    {
        using var raw = _port.RawClient();
        var response = await raw.PostAsJsonAsync("/v1/cluster/join", Body(token), ClusterWireJson.Default.JoinRequestBody);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var error = await ClusterPort.ErrorOf(response);
        Assert.Equal("bad_token", error.Code);
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.BadToken]);
        Assert.Empty(_port.Authority.Calls);
    }

    [Fact]
    public async Task A_well_formed_token_of_another_cluster_is_refused_by_the_server()
    {
        using var other = ClusterCa.Create("cluster-b");
        using var raw = _port.RawClient();
        var response = await raw.PostAsJsonAsync("/v1/cluster/join", Body(JoinToken.Create(other.CertificatePem).ToString()), ClusterWireJson.Default.JoinRequestBody);
        var error = await ClusterPort.ErrorOf(response);
        Assert.Equal(("bad_token", HttpStatusCode.Forbidden), (error.Code, response.StatusCode));
        Assert.Contains("another cluster", error.Message, StringComparison.Ordinal);
        Assert.Empty(_port.Authority.Calls);
    }

    public static TheoryData<string, string> MalformedBodies => new()
    {
        { "{not json", "the request body is not the route's JSON" },
        { "null", "the request body is not a JSON object" },
        { "[1,2]", "the request body is not the route's JSON" },
        { """{"token":"WORKER","hostname":"h","advertise_addr":"192.0.2.1:2377","data_path_addr":"192.0.2.1"}""", "csr_pem: missing" },
        { """{"token":"WORKER","csr_pem":"CSR","advertise_addr":"192.0.2.1:2377","data_path_addr":"192.0.2.1"}""", "hostname: missing" },
        { """{"token":"WORKER","csr_pem":"CSR","hostname":"a\nb","advertise_addr":"192.0.2.1:2377","data_path_addr":"192.0.2.1"}""", "hostname: 'a\\u000ab' is not a host name" },
        { """{"token":"WORKER","csr_pem":"CSR","hostname":"h","advertise_addr":"192.0.2.1","data_path_addr":"192.0.2.1"}""", "advertise_addr: '192.0.2.1' is not IP:PORT" },
        { """{"token":"WORKER","csr_pem":"CSR","hostname":"h","advertise_addr":"192.0.2.1:2377","data_path_addr":"eth0"}""", "data_path_addr: 'eth0' is not an IP address" },
        { """{"token":"WORKER","csr_pem":"garbage","hostname":"h","advertise_addr":"192.0.2.1:2377","data_path_addr":"192.0.2.1"}""", "csr_pem: this is not a signed certificate request in PEM" },
        { """{"token":"WORKER","csr_pem":"RSA","hostname":"h","advertise_addr":"192.0.2.1:2377","data_path_addr":"192.0.2.1"}""", "csr_pem: the certificate request's key is RSA" },
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task Malformed_bodies_are_refused_naming_the_field_and_never_reach_the_authority(string json, string expected)
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        string csr = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=x", key, System.Security.Cryptography.HashAlgorithmName.SHA256).CreateSigningRequestPem();
        json = json.Replace("WORKER", _port.Authority.WorkerToken.ToString(), StringComparison.Ordinal)
            .Replace("\"CSR\"", System.Text.Json.JsonSerializer.Serialize(csr, Json.Default.String), StringComparison.Ordinal);
        if (json.Contains("\"RSA\"", StringComparison.Ordinal))
        {
            using var rsa = System.Security.Cryptography.RSA.Create(2048);
            string rsaCsr = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=x", rsa, System.Security.Cryptography.HashAlgorithmName.SHA256,
                System.Security.Cryptography.RSASignaturePadding.Pkcs1).CreateSigningRequestPem();
            json = json.Replace("\"RSA\"", System.Text.Json.JsonSerializer.Serialize(rsaCsr, Json.Default.String), StringComparison.Ordinal);
        }
        using var raw = _port.RawClient();
        var response = await raw.PostAsync("/v1/cluster/join", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await ClusterPort.ErrorOf(response);
        Assert.Equal("malformed_request", error.Code);
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _port[ClusterServerEvent.MalformedRequest]);
        Assert.Empty(_port.Authority.Calls);
        Assert.Equal(["m0"], _port.Authority.Roles.Keys);
    }

    [Fact]
    public async Task Bodies_over_the_cap_are_refused_whether_announced_or_chunked()
    {
        // The server answers 413 and closes; a client still writing the body may see the close first (a broken pipe):
        // refused either way, and counted.
        static async Task Refused(Func<Task<HttpResponseMessage>> send)
        {
            try
            {
                var response = await send();
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
                Assert.Equal("too_large", (await ClusterPort.ErrorOf(response)).Code);
            }
            catch (HttpRequestException e) when (e.InnerException is IOException) { }
        }
        using var raw = _port.RawClient();
        var big = new string('x', 100_000);
        await Refused(() => raw.PostAsync("/v1/cluster/join", new StringContent(big, Encoding.UTF8, "application/json")));

        // No Content-Length: the cap applies while reading.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("{\"token\":\"" + big + "\"}")));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/cluster/join") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var raw2 = _port.RawClient();
        await Refused(() => raw2.SendAsync(request));
        await Eventually.True(() => _port[ClusterServerEvent.TooLarge] == 2, TimeSpan.FromSeconds(10), "both refusals counted");

        // And it still serves.
        using var id = await _client.JoinAsync(_port.Address, _port.Authority.WorkerToken, "after", "192.0.2.16:2377", "192.0.2.16");
        Assert.Equal(NodeRole.Worker, id.Role);
    }

    [Fact]
    public async Task Unknown_routes_answer_a_json_404()
    {
        using var raw = _port.RawClient();
        var response = await raw.GetAsync("/v1/nothing");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", (await ClusterPort.ErrorOf(response)).Code);
    }

    private JoinRequestBody Body(string token) => new()
    {
        Token = token,
        CsrPem = "unused: the token is checked first",
        Hostname = "h",
        AdvertiseAddr = "192.0.2.1:2377",
        DataPathAddr = "192.0.2.1",
    };
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class Json : System.Text.Json.Serialization.JsonSerializerContext;
