namespace UserOverlay.Router.Tests;

/// <summary>A test class over in-memory hosts (<see cref="InMemoryHosts"/>): the hosts, disposed after each test, and the two waits.</summary>
public abstract class InMemoryHostsTest : IDisposable
{
    /// <summary>How long a frame or a table change may take to appear.</summary>
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    /// <summary>How long to watch for a frame that must not arrive.</summary>
    protected static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    /// <summary>Every datagram the underlay sent, after a moment for the workers to finish.</summary>
    protected static List<(VtepEndpoint To, byte[] Payload)> Drain(UserOverlay.Router.Testing.InMemoryUnderlay u)
    {
        Thread.Sleep(100);
        var l = new List<(VtepEndpoint, byte[])>();
        while (u.Sent.TryDequeue(out var x)) l.Add(x);
        return l;
    }

    /// <summary>The hosts of this test.</summary>
    protected InMemoryHosts Hosts { get; } = new();

    /// <inheritdoc/>
    public void Dispose()
    {
        Hosts.Dispose();
        GC.SuppressFinalize(this);
    }
}
