using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>TCP transfers between namespaces, checked end to end with SHA-256.</summary>
public static class Tcp
{
    /// <summary>Sends <paramref name="bytes"/> of random data over TCP from <paramref name="clientNs"/> to a listener in <paramref name="serverNs"/>; returns the SHA-256 of what was sent and of what arrived.</summary>
    public static async Task<(string Sent, string Received)> Transfer(string serverNs, string serverIp, string clientNs, int bytes)
    {
        var data = RandomNumberGenerator.GetBytes(bytes);
        var listener = NetnsSockets.TcpListener(serverNs, new IPEndPoint(IPAddress.Parse(serverIp), 0));
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            var server = Task.Run(async () =>
            {
                using var conn = await listener.AcceptTcpClientAsync(cts.Token);
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buf = new byte[64 << 10];
                var stream = conn.GetStream();
                int n;
                while ((n = await stream.ReadAsync(buf, cts.Token)) > 0) sha.AppendData(buf, 0, n);
                return Convert.ToHexString(sha.GetHashAndReset());
            }, cts.Token);
            using (var client = NetnsSockets.TcpSocket(clientNs))
            {
                await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(serverIp), port), cts.Token);
                await client.SendAsync(data, cts.Token);
                client.Shutdown(SocketShutdown.Send);
                var received = await server;
                return (Convert.ToHexString(SHA256.HashData(data)), received);
            }
        }
        finally
        {
            listener.Stop();
        }
    }
}
