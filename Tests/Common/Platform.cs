// The project is Linux-only (TAP, namespaces, epoll); its tests are too.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
