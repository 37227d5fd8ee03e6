using Microsoft.Win32.SafeHandles;

namespace UserOverlay.Router.Linux;

/// <summary>A Linux file descriptor (TAP, socket, epoll, eventfd) whose release closes it.</summary>
internal sealed class SafeFdHandle : SafeHandleMinusOneIsInvalid
{
    public SafeFdHandle(int fd) : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>The raw descriptor. Valid while the handle is neither closed nor released.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Libc.close((int)handle) == 0;
}
