using System.Text.Json;
using UserOverlay.Cli.Daemon;

namespace UserOverlay.Cli.Cni;

/// <summary>
/// <c>useroverlay-cni</c>: the CNI plugin (containernetworking/cni SPEC.md, versions 0.4.0, 1.0.0 and 1.1.0) — the same
/// binary as <c>useroverlay</c>, run under that name (a symlink or copy in a CNI bin directory), or as
/// <c>useroverlay --cni-plugin</c> from a wrapper. It is a thin client of the router's control socket: the daemon makes
/// the TAP in the container's namespace and takes its address (<see cref="CniCommands"/>).
/// <para>
/// Contract: the command and the container come from CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and
/// CNI_PATH; the network configuration (<see cref="CniNetConf"/>) from stdin. ADD prints the result; VERSION the versions;
/// DEL, CHECK, GC and STATUS print nothing. A failure prints <c>{"cniVersion", "code", "msg", "details"}</c> on stdout and
/// exits 1 (codes in <see cref="CniException"/>).
/// </para>
/// </summary>
public static class CniPlugin
{
    /// <summary>The plugin's file name (the <c>type</c> a conflist names).</summary>
    public const string ProgramName = "useroverlay-cni";

    /// <summary>The argument that runs the plugin from a wrapper whose argv[0] is not <see cref="ProgramName"/>.</summary>
    public const string WrapperFlag = "--cni-plugin";

    /// <summary>The CNI versions spoken, oldest first.</summary>
    public static readonly IReadOnlyList<string> SupportedVersions = ["0.4.0", "1.0.0", "1.1.0"];

    /// <summary>True when the process was started as the plugin: argv[0]'s file name, or <see cref="WrapperFlag"/> alone.</summary>
    public static bool IsInvocation(string? argv0, IReadOnlyList<string> args) =>
        Path.GetFileName(argv0) == ProgramName || args is [WrapperFlag];

    /// <summary>
    /// <see cref="IsInvocation(string?, IReadOnlyList{string})"/> for this process: argv[0] as .NET reports it, and as
    /// the kernel recorded it (/proc/self/cmdline), since a symlink's name is all that tells the plugin apart.
    /// </summary>
    public static bool IsInvocation(IReadOnlyList<string> args) =>
        IsInvocation(Environment.GetCommandLineArgs()[0], args) || (args.Count == 0 && IsInvocation(KernelArgv0(), args));

    private static string? KernelArgv0()
    {
        try
        {
            byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
            int end = Array.IndexOf(cmdline, (byte)0);
            return System.Text.Encoding.UTF8.GetString(cmdline, 0, end < 0 ? cmdline.Length : end);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Runs the plugin on this process's environment, stdin and stdout.</summary>
    public static int RunProcess()
    {
        using var stdin = Console.OpenStandardInput();
        return Run(Environment.GetEnvironmentVariable, stdin, Console.Out, ControlApi.SocketDirectory);
    }

    /// <summary>
    /// Runs one plugin call: <paramref name="environment"/> gives the CNI_* variables, <paramref name="stdin"/> the
    /// configuration; the answer goes to <paramref name="stdout"/>. <paramref name="socketDirectory"/> is where routers
    /// put their sockets (tests pass their own). Returns the exit code (0, or 1 with the error printed).
    /// </summary>
    public static int Run(Func<string, string?> environment, Stream stdin, TextWriter stdout, string socketDirectory)
    {
        string version = SupportedVersions[^1];
        try
        {
            string command = environment("CNI_COMMAND") is { Length: > 0 } c ? c
                : throw new CniException(CniException.InvalidEnvironment, "CNI_COMMAND is not set (ADD, DEL, CHECK, VERSION, STATUS or GC)");
            byte[] input = ReadAll(stdin);
            if (command == "VERSION")
            {
                string? asked = input.AsSpan().Trim(" \t\r\n"u8).IsEmpty ? null : Parse(input).CniVersion;
                stdout.WriteLine(JsonSerializer.Serialize(new CniVersionOutput(asked is not null && SupportedVersions.Contains(asked) ? asked : version, SupportedVersions),
                    CniJson.Output.CniVersionOutput));
                return 0;
            }
            var conf = Parse(input);
            if (conf.CniVersion is { } v && SupportedVersions.Contains(v)) version = v;
            var call = new CniCommands(environment, conf, input, socketDirectory);
            switch (command)
            {
                case "ADD":
                    stdout.WriteLine(JsonSerializer.Serialize(call.Add(), CniJson.Output.CniResult));
                    break;
                case "DEL": call.Delete(); break;
                case "CHECK": call.Check(); break;
                case "GC": call.CollectGarbage(); break;
                case "STATUS": call.Status(); break;
                default:
                    throw new CniException(CniException.InvalidEnvironment, $"CNI_COMMAND '{Printable(command)}' is not ADD, DEL, CHECK, VERSION, STATUS or GC");
            }
            return 0;
        }
        catch (CniException e)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new CniErrorOutput(version, e.Code, e.Message, e.Details), CniJson.Output.CniErrorOutput));
            return 1;
        }
    }

    /// <summary>The configuration, or code 6 (not JSON) / 7 (a field of the wrong type, named).</summary>
    private static CniNetConf Parse(byte[] input)
    {
        try
        {
            using var doc = JsonDocument.Parse(input);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CniException(CniException.InvalidConfig, $"the network configuration on stdin is a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object");
        }
        catch (JsonException e)
        {
            throw new CniException(CniException.DecodeFailure, $"the network configuration on stdin is not JSON: {e.Message}");
        }
        try
        {
            return JsonSerializer.Deserialize(input, CniJson.Default.CniNetConf)!;
        }
        catch (JsonException e)
        {
            string field = e.Path is { Length: > 2 } p ? p[2..] : "the configuration";
            throw new CniException(CniException.InvalidConfig, $"{field}: has the wrong type for this plugin ({e.Message})");
        }
    }

    private static byte[] ReadAll(Stream stdin)
    {
        try
        {
            using var buffer = new MemoryStream();
            stdin.CopyTo(buffer);
            return buffer.ToArray();
        }
        catch (IOException e)
        {
            throw new CniException(CniException.IoFailure, $"cannot read the network configuration from stdin: {e.Message}");
        }
    }

    /// <summary>User text with control characters escaped, so a message stays one line.</summary>
    internal static string Printable(string? s) => ControlNames.Printable(s);
}
