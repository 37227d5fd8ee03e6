using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// The daemon as a service runs it: started from the root directory (systemd's default working directory).
/// </summary>
public sealed class DaemonTests
{
    [Fact]
    public async Task A_router_started_from_the_root_directory_watches_no_files_and_serves_its_control_socket_and_metrics()
    {
        Requires.Root();
        using var net = new TestNetwork("dm");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1");
        using var router = new RouterProcess(net, host, $"{net.Prefix}h1", $$"""
            underlay: { address: 192.0.2.1 }
            peers: [192.0.2.2]
            metrics: 127.0.0.1:9464
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: blue, netns: {{c1}}, address: 198.18.0.11/24 } ]
            """) { WorkingDirectory = "/" };
        await router.StartAsync();

        Assert.Equal("/", Path.GetFullPath(new DirectoryInfo($"/proc/{router.Pid}/cwd").ResolveLinkTarget(returnFinalTarget: false)!.FullName));
        // No inotify instance at all: a configuration file watcher on the working directory would watch every
        // directory below it (here the whole filesystem) and wake for every file written on the machine.
        var inotify = Directory.GetFiles($"/proc/{router.Pid}/fd")
            .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
            .Where(t => t == "anon_inode:inotify")
            .ToList();
        Assert.Empty(inotify);

        var status = await router.StatusAsync();
        Assert.Equal("blue", Assert.Single(status.Networks).Name);
        using var socket = NetnsSockets.TcpSocket(host);
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9464), TestContext.Current.CancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler { ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new System.Net.Sockets.NetworkStream(socket, ownsSocket: false)) })
        { Timeout = TimeSpan.FromSeconds(10) };
        string metrics = await http.GetStringAsync("http://127.0.0.1:9464/metrics", TestContext.Current.CancellationToken);
        Assert.Contains("useroverlay_gc_allocated_bytes_total", metrics);
    }
}
