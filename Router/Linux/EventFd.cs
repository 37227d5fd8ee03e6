namespace UserOverlay.Router.Linux;

/// <summary>
/// A non-blocking eventfd used as a readiness signal: epoll sees it readable after <see cref="Signal"/>
/// until <see cref="Reset"/>. The test doubles use it as their "device readable" handle, and each
/// pipeline worker to be woken for shutdown. Thread-safe.
/// </summary>
internal sealed unsafe class EventFd : IDisposable
{
    public EventFd()
    {
        int fd = Interop.Libc.eventfd(0, Interop.EFD_CLOEXEC | Interop.EFD_NONBLOCK);
        if (fd < 0) throw Netns.Namespaces.SystemError("eventfd");
        Handle = new SafeFdHandle(fd);
    }

    /// <summary>The descriptor to poll.</summary>
    public SafeFdHandle Handle { get; }

    /// <summary>Makes the descriptor readable.</summary>
    public void Signal()
    {
        ulong one = 1;
        Interop.Libc.write(Handle.Fd, (byte*)&one, 8);
    }

    /// <summary>Makes it not readable again (until the next <see cref="Signal"/>).</summary>
    public void Reset()
    {
        ulong v;
        Interop.Libc.read(Handle.Fd, (byte*)&v, 8);
    }

    public void Dispose() => Handle.Dispose();
}
