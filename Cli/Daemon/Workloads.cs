using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Networks;
using UserOverlay.Router;
using UserOverlay.Router.Netns;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Workloads (<c>useroverlay run</c>): a fresh network namespace uo-NAME, made by the daemon as <c>ip netns add</c>
/// does, attached to networks through the <see cref="NetworkManager"/>. Creating one is all-or-nothing (a failed attach
/// detaches the earlier ones and deletes the namespace); deleting one detaches every endpoint in its namespace and
/// deletes the namespace. A workload that is not detached belongs to its client process: a watcher checks each
/// client once a second (/proc/PID/stat, with the start time recorded at creation so a reused PID does not count) and
/// removes the workload of one that has exited. Workloads persist as STATE/workloads/NAME.json (written atomically);
/// at start a workload whose namespace is gone is released and one whose client has exited is removed.
/// <para>
/// Mount namespaces: a namespace's name is a bind mount on /run/netns/NAME, visible in the mount namespace it is made
/// in and in those that receive its mounts. The daemon often runs in a mount namespace of its own (systemd's
/// ProtectSystem, or <c>ip netns exec</c>), whose mounts its caller never sees; so when the caller's mount namespace
/// (SO_PEERCRED's pid) is not the daemon's, the namespace is made in the caller's with
/// <c>nsenter --mount=… ip netns add NAME</c> (util-linux and iproute2), from where it propagates to the daemon, and
/// deleted there the same way (through a handle on that mount namespace kept while the daemon runs; after a restart,
/// through the creator's or PID 1's if one of them is still in it).
/// </para>
/// Thread-safety: operations run one at a time (one lock), the watcher's removals included.
/// </summary>
internal sealed class Workloads : IDisposable
{
    /// <summary>Prefix of a workload's namespace name.</summary>
    public const string NetnsPrefix = "uo-";

    private readonly NetworkManager _networks;
    private readonly string _directory;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, WorkloadRecord> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Microsoft.Win32.SafeHandles.SafeFileHandle> _mountRefs = new(StringComparer.Ordinal);
    private readonly Timer _watch;

    public Workloads(NetworkManager networks, string stateDirectory, ILogger log)
    {
        _networks = networks;
        _log = log;
        _directory = Path.Combine(stateDirectory, "workloads");
        Directory.CreateDirectory(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (string tmp in Directory.EnumerateFiles(_directory, "*.json.tmp")) File.Delete(tmp);
        foreach (string path in Directory.EnumerateFiles(_directory, "*.json").Order(StringComparer.Ordinal))
        {
            WorkloadRecord? w;
            try { w = JsonSerializer.Deserialize(File.ReadAllBytes(path), ControlJson.Default.WorkloadRecord); }
            catch (JsonException e)
            {
                throw new ControlException(ControlErrorCodes.CorruptState, $"state file {path} is not valid: {e.Message}; move it away to forget that workload");
            }
            if (w is null || w.Name + ".json" != Path.GetFileName(path))
                throw new ControlException(ControlErrorCodes.CorruptState, $"state file {path} does not hold the workload its name says; move it away to forget that workload");
            if (!Namespaces.Exists(w.Netns))
            {
                File.Delete(path);
                DaemonLog.WorkloadReleased(log, w.Name, $"its namespace {w.Netns} is gone");
                continue;
            }
            _byName[w.Name] = w;
        }
        foreach (var w in _byName.Values.ToList())
            if (!w.Detached && !IsAlive(w)) Remove(w, $"its client (pid {w.ClientPid}) has exited");
        _watch = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>Every workload, by name.</summary>
    public IReadOnlyList<WorkloadView> List()
    {
        lock (_lock) return [.. _byName.Values.OrderBy(w => w.Name, StringComparer.Ordinal).Select(View)];
    }

    /// <summary>Creates a workload for the caller <paramref name="callerPid"/>; throws <see cref="ControlException"/> naming the field.</summary>
    public WorkloadView Create(WorkloadCreateRequest request, int callerPid)
    {
        lock (_lock)
        {
            string name = request.Name ?? RandomNumberGenerator.GetHexString(12, lowercase: true);
            if (!IsValidName(name))
                throw new ControlException(ControlErrorCodes.InvalidArgument,
                    $"name: '{ControlNames.Printable(name)}' is not a valid workload name (1 to 60 letters, digits, '_', '.' or '-', starting with a letter or digit)", "name");
            string netns = NetnsPrefix + name;
            if (_byName.ContainsKey(name))
                throw new ControlException(ControlErrorCodes.Conflict, $"name: a workload named '{name}' already exists", "name");
            if (Namespaces.Exists(netns))
                throw new ControlException(ControlErrorCodes.Conflict, $"name: a network namespace '{netns}' already exists (not a workload of this router); choose another name", "name");
            var nets = request.Networks ?? [];
            for (int i = 0; i < nets.Count; i++)
            {
                if (string.IsNullOrEmpty(nets[i]?.Network))
                    throw new ControlException(ControlErrorCodes.InvalidArgument, $"networks: entry {i} names no network", "networks");
                _networks.GetNetwork(nets[i].Network!); // not_found before anything is made
            }
            int? pid = null;
            ulong? start = null;
            if (!request.Detached)
            {
                pid = request.ClientPid ?? callerPid;
                start = StartTime(pid.Value)
                    ?? throw new ControlException(ControlErrorCodes.InvalidArgument, $"client_pid: there is no process {pid}", "client_pid");
            }

            string? foreignMount = MakeNamespace(netns, callerPid);
            var attached = new List<string>();
            try
            {
                for (int i = 0; i < nets.Count; i++)
                {
                    var n = nets[i];
                    var ep = _networks.Attach(new EndpointAttachRequest
                    {
                        Network = n.Network!,
                        Netns = netns,
                        Name = name,
                        Interface = $"eth{i.ToString(CultureInfo.InvariantCulture)}", // eth0 on the first network, eth1 on the second…
                        Address = n.Address,
                        Aliases = n.Aliases ?? [],
                    });
                    attached.Add(ep.NetworkId);
                }
                var gateways = nets.Select(n => _networks.GetNetwork(n.Network!).Gateway).OfType<uint>().ToList();
                if (WorkloadResolvConf.Write(netns, gateways) is { } resolvError) DaemonLog.WorkloadResolvConfFailed(_log, name, resolvError);
                var record = new WorkloadRecord(name, netns, DateTimeOffset.UtcNow, request.Detached, pid, start, foreignMount, callerPid > 0 ? callerPid : null);
                Write(record);
                _byName[name] = record;
                return View(record);
            }
            catch
            {
                foreach (string network in attached) TryDetach(network, netns);
                DeleteNamespace(name, netns, foreignMount, callerPid);
                throw;
            }
        }
    }

    /// <summary>Removes a workload: detaches its endpoints and deletes its namespace. Throws not_found for an unknown name.</summary>
    public void Delete(string name)
    {
        lock (_lock)
        {
            if (!_byName.TryGetValue(name, out var w))
                throw new ControlException(ControlErrorCodes.NotFound, $"name: no workload is named '{ControlNames.Printable(name)}'", "name");
            Remove(w, null);
        }
    }

    private void Remove(WorkloadRecord w, string? why)
    {
        foreach (var def in _networks.ListNetworks())
            if (_networks.GetEndpoints(def.Id).Any(e => e.Netns == w.Netns)) TryDetach(def.Id, w.Netns);
        DeleteNamespace(w.Name, w.Netns, w.MountNamespace, w.CreatorPid);
        try { File.Delete(PathOf(w.Name)); }
        catch (IOException e) { throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot delete state file {PathOf(w.Name)}: {e.Message}", inner: e); }
        _byName.Remove(w.Name);
        if (why is not null) DaemonLog.WorkloadRemoved(_log, w.Name, why);
    }

    // Makes the namespace where the caller sees it; returns the mount namespace used when it is not the daemon's.
    private string? MakeNamespace(string netns, int callerPid)
    {
        string? mine = MountNamespaceOf("self");
        string? theirs = callerPid > 0 ? MountNamespaceOf(callerPid.ToString(CultureInfo.InvariantCulture)) : null;
        try
        {
            if (theirs is null || theirs == mine)
            {
                Namespaces.Create(netns);
                return null;
            }
            var handle = File.OpenHandle($"/proc/{callerPid.ToString(CultureInfo.InvariantCulture)}/ns/mnt");
            _mountRefs[netns] = handle;
            RunTool("nsenter", [$"--mount={FdPath(handle)}", "--", "ip", "netns", "add", netns]);
            try
            {
                Namespaces.SetLoopbackUp(netns); // through the propagated mount: the router will reach it the same way
            }
            catch (RouterException e)
            {
                DeleteNamespace(netns[NetnsPrefix.Length..], netns, theirs, callerPid);
                throw new RouterException(e.Code, $"the namespace was made in the caller's mount namespace, but this daemon cannot reach it there ({e.Message}); its /run/netns must propagate to the daemon");
            }
            return theirs;
        }
        catch (Exception e) when (e is RouterException or IOException or UnauthorizedAccessException)
        {
            throw new ControlException(ControlErrorCodes.Internal, $"netns: cannot create the namespace {netns}: {e.Message}", "netns", e);
        }
    }

    private void DeleteNamespace(string name, string netns, string? mountNamespace, int? creatorPid)
    {
        if (mountNamespace is not null)
        {
            string? target = _mountRefs.TryGetValue(netns, out var h) ? FdPath(h)
                : new[] { creatorPid?.ToString(CultureInfo.InvariantCulture), "1" }.FirstOrDefault(p => p is not null && MountNamespaceOf(p) == mountNamespace) is { } pid
                    ? $"/proc/{pid}/ns/mnt" : null;
            if (target is null) DaemonLog.WorkloadSweepFailed(_log, $"cannot reach mount namespace {mountNamespace} to delete {netns} of workload '{name}'; delete it with `ip netns del {netns}` there");
            else
            {
                try { RunTool("nsenter", [$"--mount={target}", "--", "ip", "netns", "del", netns]); }
                catch (RouterException e) { DaemonLog.WorkloadSweepFailed(_log, e.Message); }
            }
            if (_mountRefs.Remove(netns, out var held)) held.Dispose();
        }
        WorkloadResolvConf.Delete(netns);
        Namespaces.Delete(netns); // this daemon's view (the whole namespace when it was made here)
    }

    private static string FdPath(Microsoft.Win32.SafeHandles.SafeFileHandle h) =>
        $"/proc/{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}/fd/{h.DangerousGetHandle().ToInt64().ToString(CultureInfo.InvariantCulture)}";

    private static string? MountNamespaceOf(string pid)
    {
        try { return new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static void RunTool(string file, string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        System.Diagnostics.Process p;
        try { p = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException("no process"); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new RouterException(RouterErrorCode.SystemError, $"cannot run {file} (util-linux) to reach the caller's mount namespace: {e.Message}");
        }
        using (p)
        {
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(10_000)) { p.Kill(); throw new RouterException(RouterErrorCode.SystemError, $"{file} {string.Join(' ', args)} did not finish in 10 s"); }
            if (p.ExitCode != 0) throw new RouterException(RouterErrorCode.SystemError, $"{file} {string.Join(' ', args)} failed: {err.Trim()}");
        }
    }

    private void TryDetach(string network, string netns)
    {
        try { _networks.Detach(network, netns); }
        catch (ControlException e) when (e.Code == ControlErrorCodes.NotFound) { }
    }

    private void Sweep()
    {
        try
        {
            lock (_lock)
            {
                foreach (var w in _byName.Values.Where(w => !w.Detached && !IsAlive(w)).ToList())
                    Remove(w, $"its client (pid {w.ClientPid}) has exited");
            }
        }
        catch (Exception e) when (e is ControlException or IOException or RouterException)
        {
            DaemonLog.WorkloadSweepFailed(_log, e.Message);
        }
    }

    private WorkloadView View(WorkloadRecord w)
    {
        var eps = new List<EndpointView>();
        foreach (var def in _networks.ListNetworks())
            foreach (var e in _networks.GetEndpoints(def.Id).Where(e => e.Netns == w.Netns)) eps.Add(EndpointView.From(def, e));
        return new WorkloadView(w.Name, w.Netns, Namespaces.ResolvePath(w.Netns), w.Created, w.Detached, w.ClientPid, eps);
    }

    private static bool IsValidName(string name) =>
        name.Length is > 0 and <= 60 && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    private static bool IsAlive(WorkloadRecord w) => w.ClientPid is { } pid && StartTime(pid) is { } t && t == w.ClientStartTime;

    // Field 22 of /proc/PID/stat (after the command in parentheses, which may hold spaces); null for no process or a zombie.
    private static ulong? StartTime(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        if (rest.Length < 20 || rest[0] is "Z" or "X") return null;
        return ulong.TryParse(rest[19], CultureInfo.InvariantCulture, out ulong t) ? t : null;
    }

    private string PathOf(string name) => Path.Combine(_directory, name + ".json");

    private void Write(WorkloadRecord w)
    {
        string path = PathOf(w.Name), tmp = path + ".tmp";
        try
        {
            using (var f = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                f.Write(JsonSerializer.SerializeToUtf8Bytes(w, ControlJson.Default.WorkloadRecord));
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw new ControlException(ControlErrorCodes.StorageFailed, $"cannot write state file {path}: {e.Message}", inner: e);
        }
    }

    public void Dispose()
    {
        _watch.Dispose();
        lock (_lock)
        {
            foreach (var h in _mountRefs.Values) h.Dispose();
            _mountRefs.Clear();
        }
    }
}

/// <summary>Helpers for names in messages.</summary>
internal static class ControlNames
{
    /// <summary>User text with control characters escaped, so a message stays one line.</summary>
    public static string Printable(string? s) => string.Concat((s ?? "").Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
