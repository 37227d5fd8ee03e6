// Answered on the router's TAPs: Linux only, as the router.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
