using System.Collections.Concurrent;

namespace UserOverlay.Router.Testing;

/// <summary>
/// A platform made of test doubles: <see cref="ChannelTap"/>s (looked up by namespace and name
/// with <see cref="Tap"/>) and underlays on one <see cref="InMemoryUnderlayNetwork"/>. Like the kernel, it refuses a
/// second live TAP of one name in one namespace (<see cref="RouterErrorCode.InterfaceExists"/>). Failure injection:
/// <see cref="FailCreateTap"/> makes TAP creation throw, <see cref="UnpollableTaps"/> makes created TAPs that epoll
/// refuses; <see cref="LiveTaps"/> counts the TAPs created and not yet disposed. Thread-safe.
/// </summary>
public sealed class InMemoryPlatform(InMemoryUnderlayNetwork network) : IRouterPlatform
{
    private readonly ConcurrentDictionary<(string Netns, string Name), ChannelTap> _taps = new();
    private readonly ConcurrentDictionary<ChannelTap, TapRequest> _live = new();

    /// <summary>The underlay network the platform's underlays attach to.</summary>
    public InMemoryUnderlayNetwork Network { get; } = network;

    /// <summary>The last underlay this platform opened.</summary>
    public InMemoryUnderlay? Underlay { get; private set; }

    /// <summary>When set, called before each TAP is created: an exception it returns is thrown instead (nothing is created).</summary>
    public Func<TapRequest, Exception?>? FailCreateTap { get; set; }

    /// <summary>When true, created TAPs have a readiness handle epoll refuses, so the router cannot register them.</summary>
    public bool UnpollableTaps { get; set; }

    /// <summary>TAPs created and not yet disposed.</summary>
    public int LiveTaps => _live.Count;

    /// <summary>The requests of the TAPs created and not yet disposed.</summary>
    public IReadOnlyCollection<TapRequest> LiveRequests => _live.Values.ToList();

    /// <summary>Every TAP request the platform was given (also those that failed), in order.</summary>
    public ConcurrentQueue<TapRequest> Requests { get; } = new();

    public ITapDevice CreateTap(TapRequest request)
    {
        Requests.Enqueue(request);
        if (FailCreateTap?.Invoke(request) is { } failure) throw failure;
        if (_taps.TryGetValue((request.Netns, request.Name), out var existing) && !existing.IsDisposed)
            throw new RouterException(RouterErrorCode.InterfaceExists,
                $"cannot create interface {request.Name} in namespace '{request.Netns}': an interface with that name already exists there");
        var tap = new ChannelTap(request.Name, UnpollableTaps, t => _live.TryRemove(t, out _));
        _live[tap] = request;
        _taps[(request.Netns, request.Name)] = tap;
        return tap;
    }

    public IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize) => Underlay = Network.Attach(local);

    /// <summary>The last ESP underlay this platform opened (attached at port 0 for transport mode, else the ESP-in-UDP port).</summary>
    public InMemoryUnderlay? EspUnderlay { get; private set; }

    public IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize) =>
        EspUnderlay = Network.Attach(local with { Port = (ushort)udpPort });

    /// <summary>The TAP created last for an endpoint.</summary>
    public ChannelTap Tap(string netns, string name = "eth0") => _taps[(netns, name)];
}
