// The data path is Linux's: TAP devices, network namespaces, epoll, recvmmsg/sendmmsg.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
