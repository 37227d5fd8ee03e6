using Microsoft.Extensions.Logging;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>
/// A TAP that goes away under a running router: its interface deleted in the endpoint's namespace (the driver detaches
/// the device: poll reports EPOLLERR for ever and reads fail with EBADFD), or the namespace's name deleted (the namespace
/// lives on, held by the TAP's descriptor). Either way the router's workers must not spin on it, must keep forwarding for
/// the other endpoints, and must leave the endpoint for the control plane to detach.
/// </summary>
[Collection(LinuxDeviceCollection.Name)]
public class TapGoneTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_TAP_gone_under_the_router_costs_its_workers_no_CPU_and_the_others_still_forward(bool deleteInterface)
    {
        Requires.Root();
        using var net = new TestNetwork("tg");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1"), c2 = net.AddNamespace("c2"), c3 = net.AddNamespace("c3");
        var logs = new CapturingLoggerFactory();
        using var r = Netns.Namespaces.RunIn(host, () => OverlayRouter.Start(new RouterOptions
        {
            Underlay = InMemoryHosts.Vtep(1),
            Peers = [InMemoryHosts.Vtep(2)],
            Networks = [InMemoryHosts.Blue],
            Queues = 2, // both workers watch a queue of every TAP: both must let go of the gone one
            Endpoints = [InMemoryHosts.Endpoint("blue", c1, "198.18.0.11"), InMemoryHosts.Endpoint("blue", c2, "198.18.0.12"),
                InMemoryHosts.Endpoint("blue", c3, "198.18.0.13")],
        }, loggerFactory: logs));
        Assert.True(TestNetwork.Ping(c1, "198.18.0.13", count: 2, minReplies: 1), "the endpoint answers before it goes");

        if (deleteInterface) Shell.Must($"ip -n {c3} link del eth0");
        else Shell.Must($"ip netns del {c3}");
        // Each worker sees its queue fail on its next wait (the deletion wakes them): both stop watching it.
        if (deleteInterface) SpinWait.SpinUntil(() => Blue(r).Counters.TapQueuesGone == 2, TimeSpan.FromSeconds(5));
        else Thread.Sleep(300);

        // CPU time of the router's pipeline threads over 3 s (utime + stime of each, /proc/self/task/TID/stat): a worker
        // spinning on a readiness that never clears uses a whole core.
        double before = WorkerCpuSeconds(r);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Thread.Sleep(3000);
        double ratio = (WorkerCpuSeconds(r) - before) / clock.Elapsed.TotalSeconds;
        TestContext.Current.TestOutputHelper?.WriteLine($"pipeline threads: {ratio:P1} of one core over {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(ratio < 0.10, $"the pipeline threads used {ratio:P0} of a core over 3 s with nothing to forward");
        Assert.Equal(deleteInterface ? 2 : 0, Blue(r).Counters.TapQueuesGone); // one per queue, and only for a device gone

        Assert.True(TestNetwork.Ping(c1, "198.18.0.12", count: 3, minReplies: 2), "the others still forward");
        Assert.True(TestNetwork.Ping(c2, "198.18.0.11", count: 3, minReplies: 2), "the others still forward, the other way");

        // The endpoint stays attached, marked, until the control plane detaches it; the log says so once.
        var gone = Blue(r).Endpoints.Single(e => e.Netns == c3);
        Assert.Equal(deleteInterface, gone.TapGone);
        Assert.All(Blue(r).Endpoints.Where(e => e.Netns != c3), e => Assert.False(e.TapGone));
        Assert.Equal(deleteInterface ? 1 : 0, logs.Messages.Count(m => m.Contains("went away under the router", StringComparison.Ordinal)));
        if (deleteInterface) Assert.Contains(logs.Messages, m => m.Contains($"namespace '{c3}'", StringComparison.Ordinal));
        Assert.True(r.DetachEndpoint("blue", c3, "eth0"));
        Assert.Equal(2, r.Endpoints.Count);
        Assert.Equal(0, Blue(r).Counters.Drops["internal_error"]);
        Assert.True(TestNetwork.Ping(c1, "198.18.0.12", count: 2, minReplies: 1), "and after the detach");
    }

    [Fact]
    public void A_device_that_reports_itself_gone_is_no_longer_read_and_the_others_still_forward()
    {
        using var hosts = new InMemoryHosts();
        var (r, platform) = hosts.Add(1, [2], [InMemoryHosts.Blue],
            [InMemoryHosts.Endpoint("blue", "c1", "198.18.0.11"), InMemoryHosts.Endpoint("blue", "c2", "198.18.0.12"),
             InMemoryHosts.Endpoint("blue", "c3", "198.18.0.13")]);
        var gone = platform.Tap("c3");
        gone.Vanish(); // polls readable for ever, reads return nothing: without the worker letting go, it spins on it
        Assert.True(SpinWait.SpinUntil(() => Blue(r).Counters.TapQueuesGone == 1, TimeSpan.FromSeconds(5)),
            $"tap_queues_gone: {Blue(r).Counters.TapQueuesGone}; reads so far {gone.ReadCalls}");
        long reads = gone.ReadCalls;
        Thread.Sleep(200);
        Assert.Equal(reads, gone.ReadCalls); // no longer read
        Assert.True(Blue(r).Endpoints.Single(e => e.Netns == "c3").TapGone);

        // c1 → c2 still forwards.
        MacAddress MacOf(string ns) => MacAddress.Parse(Blue(r).Endpoints.Single(e => e.Netns == ns).Mac);
        platform.Tap("c1").Inject(Packets.Udp4(MacOf("c1"), MacOf("c2"), "198.18.0.11", "198.18.0.12"));
        var frame = platform.Tap("c2").WaitTake(TimeSpan.FromSeconds(5));
        Assert.NotNull(frame);
        Assert.Equal(Packets.Phys(MacOf("c2")), Packets.Parse(frame).DestinationHardwareAddress);
        Assert.True(r.DetachEndpoint("blue", "c3", "eth0"));
    }

    private static NetworkStatus Blue(OverlayRouter r) => r.GetStatus().Networks.Single(n => n.Name == "blue");

    /// <summary>
    /// utime + stime, in seconds, of <paramref name="r"/>'s pipeline threads (only this router's: other tests' routers
    /// run in this process at the same time, with threads of the same names).
    /// </summary>
    internal static double WorkerCpuSeconds(OverlayRouter r)
    {
        long ticks = 0;
        foreach (int tid in r.WorkerThreadIds)
        {
            string stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // from field 3 (state) on: utime is field 14, stime 15
            ticks += long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
                + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
        }
        return ticks / 100.0; // USER_HZ
    }

    /// <summary>Collects every message logged (formatted), from any thread.</summary>
    private sealed class CapturingLoggerFactory : ILoggerFactory, ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IReadOnlyCollection<string> Messages => _messages;

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider) { }

        public void Dispose() { }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));
    }
}
