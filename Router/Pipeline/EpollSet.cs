using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// An epoll instance plus an eventfd that wakes its waiter: the readiness loop of one outbound
/// worker over all TAP devices (level-triggered, so a device drained only partly in one round is
/// reported again in the next). Add/Remove may be called from any thread; Wait from one.
/// </summary>
internal sealed unsafe class EpollSet : IDisposable
{
    /// <summary>The data value Wait reports for the wake eventfd.</summary>
    public const ulong WakeToken = ulong.MaxValue;

    private readonly SafeFdHandle _epoll;
    private readonly EventFd _wake;

    public EpollSet()
    {
        int ep = Interop.Libc.epoll_create1(Interop.EPOLL_CLOEXEC);
        if (ep < 0) throw Netns.Namespaces.SystemError("epoll_create1");
        _epoll = new SafeFdHandle(ep);
        try { _wake = new EventFd(); }
        catch { _epoll.Dispose(); throw; }
        Add(_wake.Handle, WakeToken);
    }

    /// <summary>Watches <paramref name="handle"/> for readability, reporting <paramref name="token"/>.</summary>
    public void Add(SafeHandle handle, ulong token)
    {
        Interop.EpollEvent e = new() { Events = Interop.EPOLLIN, Data = token };
        if (Interop.Libc.epoll_ctl(_epoll.Fd, Interop.EPOLL_CTL_ADD, (int)handle.DangerousGetHandle(), &e) != 0)
            throw Netns.Namespaces.SystemError("epoll_ctl(ADD)");
    }

    /// <summary>Stops watching <paramref name="handle"/>.</summary>
    public void Remove(SafeHandle handle)
    {
        Interop.EpollEvent e = default;
        Interop.Libc.epoll_ctl(_epoll.Fd, Interop.EPOLL_CTL_DEL, (int)handle.DangerousGetHandle(), &e);
    }

    /// <summary>Blocks until something is ready (or <paramref name="timeoutMs"/>, -1 = forever); returns the number of events.</summary>
    public int Wait(Span<Interop.EpollEvent> events, int timeoutMs)
    {
        fixed (Interop.EpollEvent* p = events)
        {
            while (true)
            {
                int n = Interop.Libc.epoll_wait(_epoll.Fd, p, events.Length, timeoutMs);
                if (n >= 0) return n;
                if (Marshal.GetLastPInvokeError() != Interop.EINTR) throw Netns.Namespaces.SystemError("epoll_wait");
            }
        }
    }

    /// <summary>Wakes the waiter (it sees <see cref="WakeToken"/> until <see cref="ClearWake"/>).</summary>
    public void Wake() => _wake.Signal();

    /// <summary>Resets the wake eventfd.</summary>
    public void ClearWake() => _wake.Reset();

    public void Dispose()
    {
        _wake.Dispose();
        _epoll.Dispose();
    }
}
