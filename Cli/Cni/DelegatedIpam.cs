using System.Diagnostics;
using System.Text.Json;

namespace UserOverlay.Cli.Cni;

/// <summary>
/// The IPAM plugin a configuration delegates to (<c>"ipam": {"type": "host-local", …}</c>), run as the specification
/// says: the executable named by its type, found in a CNI_PATH directory, with this call's environment (CNI_COMMAND
/// replaced) and the same configuration on its stdin. Its error keeps its code, its message prefixed with its name.
/// </summary>
internal sealed class DelegatedIpam
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly string[] Passed = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

    private readonly Func<string, string?> _environment;
    private readonly byte[] _config;

    /// <summary>The plugin's type (its file name).</summary>
    public string Type { get; }

    /// <summary>Its executable.</summary>
    public string Executable { get; }

    private DelegatedIpam(string type, string executable, Func<string, string?> environment, byte[] config)
    {
        Type = type;
        Executable = executable;
        _environment = environment;
        _config = config;
    }

    /// <summary>The delegate the configuration names, or null for none; code 7 for a malformed "ipam" or a type not in CNI_PATH.</summary>
    public static DelegatedIpam? From(CniNetConf conf, Func<string, string?> environment, byte[] config)
    {
        if (conf.Ipam is not { } ipam || ipam.ValueKind == JsonValueKind.Null) return null;
        if (ipam.ValueKind != JsonValueKind.Object)
            throw new CniException(CniException.InvalidConfig, "ipam: must be an object with a \"type\" (an IPAM plugin such as host-local), or be left out for UserOverlay's own addresses");
        if (!ipam.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String || t.GetString() is not { Length: > 0 } type)
            throw new CniException(CniException.InvalidConfig, "ipam.type: is required (the IPAM plugin's file name, e.g. \"host-local\")");
        if (type.Contains('/') || type is "." or "..")
            throw new CniException(CniException.InvalidConfig, $"ipam.type: '{CniPlugin.Printable(type)}' is not a plugin name (a file name in CNI_PATH)");
        string path = environment("CNI_PATH") ?? "";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, type);
            if (File.Exists(candidate)) return new DelegatedIpam(type, candidate, environment, config);
        }
        throw new CniException(CniException.InvalidConfig, $"ipam.type: no plugin '{CniPlugin.Printable(type)}' in CNI_PATH ({path})");
    }

    /// <summary>Runs <paramref name="command"/>; returns ADD's result (null for the other commands); throws its error.</summary>
    public CniResult? Run(string command)
    {
        var psi = new ProcessStartInfo(Executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string name in Passed)
            if (_environment(name) is { } value) psi.Environment[name] = value;
            else psi.Environment.Remove(name);
        psi.Environment["CNI_COMMAND"] = command;
        Process process;
        try { process = Process.Start(psi) ?? throw new InvalidOperationException("no process"); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new CniException(CniException.IoFailure, $"ipam.type {Type}: cannot run {Executable}: {e.Message}");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                process.StandardInput.BaseStream.Write(_config);
                process.StandardInput.Close();
            }
            catch (IOException) { } // it exited without reading: its exit code and output say why
            if (!process.WaitForExit(Timeout))
            {
                process.Kill();
                throw new CniException(CniException.TryAgainLater, $"ipam.type {Type}: {command} did not finish in {Timeout.TotalSeconds:0} s");
            }
            string output = stdout.GetAwaiter().GetResult(), errors = stderr.GetAwaiter().GetResult().Trim();
            if (process.ExitCode != 0)
            {
                CniErrorOutput? error = null;
                try { error = JsonSerializer.Deserialize(output, CniJson.Default.CniErrorOutput); } catch (JsonException) { }
                throw error is { Msg.Length: > 0 }
                    ? new CniException(error.Code, $"ipam.type {Type}: {error.Msg}", error.Details)
                    : new CniException(CniException.IoFailure, $"ipam.type {Type}: {command} exited with {process.ExitCode}{(errors.Length == 0 ? "" : ": " + errors)}");
            }
            if (command != "ADD") return null;
            try { return JsonSerializer.Deserialize(output, CniJson.Default.CniResult); }
            catch (JsonException e)
            {
                throw new CniException(CniException.DecodeFailure, $"ipam.type {Type}: its ADD result is not a CNI result: {e.Message}");
            }
        }
    }
}
