// Embedding UserOverlay's router: the configuration is built in code, no YAML, no CLI; networks and endpoints
// can also be added and removed while the router runs (AddNetwork, AttachEndpoint, DetachEndpoint, RemoveNetwork).
//
//   dotnet run --project samples/embed                 two routers in this process, wired through the
//                                                      library's in-memory doubles (no root needed)
//   sudo dotnet run --project samples/embed -- real NETNS
//                                                      one real router: a TAP in namespace NETNS, VXLAN on
//                                                      192.0.2.1:4789 towards peer 192.0.2.2 (run it inside a
//                                                      namespace that has 192.0.2.1, as samples/quickstart.sh builds)
//   dotnet run --project samples/embed -- libraries    the other libraries on their own (CryptoExample.cs,
//                                                      MembershipExample.cs, ControlExample.cs, ClusterExample.cs)
using System.Runtime.Versioning;
using UserOverlay.Router;
using UserOverlay.Router.Testing;
using UserOverlay.Samples.Embed;

[assembly: SupportedOSPlatform("linux")]

if (args is ["libraries"])
{
    bool ok = CryptoExample.Run() & await MembershipExample.RunAsync() & ControlExample.Run() & ClusterExample.Run();
    return ok ? 0 : 1;
}

var blue = new NetworkOptions { Name = "blue", Vni = 4097, Subnet = Prefix("198.18.0.0/24"), Mtu = 1450 };

if (args is ["real", var netns])
{
    var options = new RouterOptions
    {
        Underlay = new VtepEndpoint(Address("192.0.2.1"), 4789),
        Peers = [new VtepEndpoint(Address("192.0.2.2"), 4789)],
        Networks = [blue],
        Endpoints = [new EndpointOptions { Network = "blue", Netns = netns, Address = Address("198.18.0.11"), PrefixLength = 24 }],
    };
    try
    {
        using var router = OverlayRouter.Start(options);
        Console.WriteLine($"router up: TAP eth0 in '{netns}' as 198.18.0.11/24; Ctrl-C to stop");
        using var stop = new ManualResetEventSlim();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Set(); };
        while (!stop.Wait(TimeSpan.FromSeconds(5)))
        {
            var c = router.GetStatus().Networks[0].Counters;
            Console.WriteLine($"blue: tx {c.TxFrames} frames, rx {c.RxFrames} frames, delivered {c.DeliveredFrames}");
        }
        return 0;
    }
    catch (RouterException e)
    {
        Console.Error.WriteLine(e.Message); // one sentence a person can act on, with e.Code for programs
        return 1;
    }
}

// In-memory mode: two hosts connected by an in-memory underlay. Host 1 starts with network blue and endpoint c1;
// host 2 starts with nothing and is given the network and endpoint c2 at run time.
var underlay = new InMemoryUnderlayNetwork();
EndpointOptions Endpoint(int i) => new() { Network = "blue", Netns = $"c{i}", Address = Address($"198.18.0.1{i}"), PrefixLength = 24 };
RouterOptions Host(int i) => new()
{
    Underlay = new VtepEndpoint(Address($"192.0.2.{i}"), 4789),
    Peers = [new VtepEndpoint(Address($"192.0.2.{3 - i}"), 4789)],
    Networks = i == 1 ? [blue] : [],
    Endpoints = i == 1 ? [Endpoint(1)] : [],
};
var p1 = new InMemoryPlatform(underlay);
var p2 = new InMemoryPlatform(underlay);
using var r1 = OverlayRouter.Start(Host(1), p1);
using var r2 = OverlayRouter.Start(Host(2), p2);
r2.AddNetwork(blue with { Gateway = Address("198.18.0.1") }); // each host answers ARP and ping for its gateway itself
var attached = r2.AttachEndpoint(Endpoint(2));               // a TAP (here: in memory) with its address and MAC
Console.WriteLine($"host 2 attached c2 at run time: {attached.Mac} on {attached.Network} (VNI {attached.Vni})");

// Endpoint c1 broadcasts a frame; the router floods it to host 2, whose endpoint c2 receives it.
var c1 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11"));
byte[] frame = new byte[60];
MacAddress.Broadcast.Write(frame);
c1.Write(frame.AsSpan(6));
frame[12] = 0x88; frame[13] = 0xB5; // local experimental EtherType
"hello from c1"u8.CopyTo(frame.AsSpan(14));
p1.Tap("c1").Inject(frame);

var got = p2.Tap("c2").WaitTake(TimeSpan.FromSeconds(5));
Console.WriteLine(got is null ? "c2 received nothing" : $"c2 received {got.Length} bytes: \"{System.Text.Encoding.ASCII.GetString(got, 14, 13)}\"");
var fdb = r2.GetStatus().Networks[0].Fdb;
Console.WriteLine("host 2 learned: " + string.Join(", ", fdb.Select(e => $"{e.Mac} → {e.Destination} ({e.Source})")));

// Detach and remove at run time: the TAP goes, its FDB entries with it; a network with endpoints is refused.
try { r2.RemoveNetwork("blue"); }
catch (RouterException e) { Console.WriteLine($"remove refused ({e.Code}): {e.Message}"); }
bool detached = r2.DetachEndpoint("blue", "c2", "eth0");
r2.RemoveNetwork("blue");
Console.WriteLine($"host 2 detached c2 ({detached}) and removed blue: {r2.GetStatus().Networks.Count} networks left");
return got is null || !detached ? 1 : 0;

static uint Address(string s) => Ipv4Prefix.TryParseAddress(s, out uint a) ? a : throw new ArgumentException(s);
static Ipv4Prefix Prefix(string s) => Ipv4Prefix.TryParse(s, out var p, out string e) ? p : throw new ArgumentException(e);
