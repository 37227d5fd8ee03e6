namespace UserOverlay.Testing.Common;

public static partial class Requires
{
    /// <summary>Requires a file a Debian package installs off PATH (a CNI plugin in /usr/lib/cni, …). Fails in CI, skips elsewhere.</summary>
    public static string Installed(string path, string debianPackage)
    {
        if (!System.IO.File.Exists(path))
            Unavailable($"this test needs {path} (Debian package '{debianPackage}': apt-get install {debianPackage}; .ci/run installs it)");
        return path;
    }
}
