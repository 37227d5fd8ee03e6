using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using UserOverlay.Membership.Testing;

namespace UserOverlay.Membership.Tests;

/// <summary>Records membership events, thread-safe.</summary>
public sealed class EventRecorder : IMembershipEvents
{
    public readonly ConcurrentQueue<(string Kind, MemberInfo Member, DateTime At)> Events = new();

    public void OnJoin(MemberInfo member) => Events.Enqueue(("join", member, DateTime.UtcNow));
    public void OnLeave(MemberInfo member) => Events.Enqueue(("leave", member, DateTime.UtcNow));
    public void OnUpdate(MemberInfo member) => Events.Enqueue(("update", member, DateTime.UtcNow));

    public IEnumerable<MemberInfo> Of(string kind, string node) => Events.Where(e => e.Kind == kind && e.Member.Name == node).Select(e => e.Member);
}

/// <summary>Meta and user messages for tests.</summary>
public sealed class TestDelegate : IMembershipDelegate
{
    public volatile byte[] Meta = [];
    public readonly ConcurrentQueue<byte[]> Received = new();

    public int WriteNodeMeta(Span<byte> destination)
    {
        var m = Meta;
        if (m.Length > destination.Length) return m.Length; // lets tests check the size limit
        m.CopyTo(destination);
        return m.Length;
    }

    public void OnUserMessage(ReadOnlySpan<byte> message) => Received.Enqueue(message.ToArray());
}

/// <summary>Logs to the console when UO_TEST_LOG is set (debugging aid; silent otherwise).</summary>
public sealed class ConsoleLoggerFactory : ILoggerFactory, ILogger
{
    public static ILoggerFactory? FromEnvironment() =>
        Environment.GetEnvironmentVariable("UO_TEST_LOG") is { Length: > 0 } ? new ConsoleLoggerFactory() : null;

    public void AddProvider(ILoggerProvider provider) { }
    public ILogger CreateLogger(string categoryName) => this;
    public void Dispose() { }
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
}

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

    /// <summary>Fast Local settings for in-process clusters (still memberlist's formulas).</summary>
    public static MembershipOptions Fast(string name) => MembershipOptions.DefaultLocal() with
    {
        Name = name,
        ProbeInterval = TimeSpan.FromMilliseconds(200),
        ProbeTimeout = TimeSpan.FromMilliseconds(80),
        GossipInterval = TimeSpan.FromMilliseconds(50),
        PushPullInterval = TimeSpan.FromSeconds(3),
        TcpTimeout = TimeSpan.FromMilliseconds(500),
        GossipToTheDeadTime = TimeSpan.FromSeconds(5),
        ReconnectInterval = TimeSpan.FromSeconds(1),
        // A join is one TCP push/pull; on a loaded 2-core CI machine 500 ms can pass before the seed's
        // thread runs, so joins retry (as serf's `-retry-join` does) instead of failing the test.
        JoinMaxAttempts = 5,
        JoinRetryInterval = TimeSpan.FromMilliseconds(200),
    };

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
