using UserOverlay.Membership.Testing;

namespace UserOverlay.Membership.Tests;

/// <summary>N members on one <see cref="InMemoryNetwork"/>. Disposes them all.</summary>
public sealed class InMemoryCluster : IAsyncDisposable
{
    public readonly InMemoryNetwork Network;
    public readonly List<Memberlist> Members = [];
    public readonly Dictionary<string, EventRecorder> Events = [];
    public readonly Dictionary<string, TestDelegate> Delegates = [];
    private readonly Func<string, MembershipOptions, MembershipOptions> _configure;

    public InMemoryCluster(Func<string, MembershipOptions, MembershipOptions>? configure = null, int? seed = null)
    {
        Network = new InMemoryNetwork(seed);
        _configure = configure ?? ((_, o) => o);
    }

    /// <summary>Fast Local settings for in-process clusters (<see cref="InMemoryNetwork.FastOptions"/>).</summary>
    public static MembershipOptions Fast(string name) => InMemoryNetwork.FastOptions(name);

    public async Task<Memberlist> AddAsync(string name)
    {
        var ev = new EventRecorder();
        var del = new TestDelegate();
        var opt = _configure(name, Fast(name) with { Transport = Network.CreateTransport(name), Events = ev, Delegate = del });
        var m = await Memberlist.CreateAsync(opt, ConsoleLoggerFactory.FromEnvironment());
        Members.Add(m);
        Events[name] = ev;
        Delegates[name] = del;
        return m;
    }

    public Memberlist this[string name] => Members.First(m => m.Name == name);

    /// <summary>True when every running member in <paramref name="observers"/> sees exactly <paramref name="expected"/> as alive.</summary>
    public static bool AllSee(IEnumerable<Memberlist> observers, IReadOnlyCollection<string> expected) =>
        observers.All(o =>
        {
            var alive = o.AllMembers.Where(m => m.State == MemberState.Alive).Select(m => m.Name).ToHashSet();
            return alive.SetEquals(expected);
        });

    public static MemberState? StateOf(Memberlist observer, string node) => observer.GetMember(node)?.State;

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Members.Select(m => m.DisposeAsync().AsTask()));
    }
}
