using System.Buffers.Binary;
using System.CommandLine;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SharpPcap;
using SharpPcap.LibPcap;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay capture [-H ROUTER] --network NET [--endpoint NETNS] [--direction in|out|both] [-c COUNT]
/// [-w FILE|-] [--underlay] [FILTER]</c>: a live capture of one network's inner frames as the router switches them
/// (decrypted on an encrypted network), or with <c>--underlay</c> of the outer datagrams of the router's sockets.
/// The router streams every frame the capture taps (<see cref="CaptureRoute"/>); FILTER (libpcap's syntax) is compiled
/// here by libpcap through SharpPcap and applied to each frame; <c>-w</c> writes pcap with SharpPcap's writer
/// (<see cref="PcapWriter"/>; "-" is standard output, flushed after every frame, for <c>| tshark -r -</c>). Without
/// <c>-w</c>, one line per frame. Ends at COUNT frames, on Ctrl-C, or when the capture ends on the router's side;
/// then says on stderr how many frames it wrote and how many the router dropped because this reader fell behind.
/// </summary>
internal static class CaptureCommand
{
    public static Command Create()
    {
        var network = new Option<string?>("--network") { Description = "The network whose inner frames to capture.", HelpName = "NET" };
        var endpoint = new Option<string?>("--endpoint") { Description = "Only the frames of the endpoint in this network namespace (sent by it, or to it).", HelpName = "NETNS" };
        var direction = new Option<string>("--direction") { Description = "in (towards the endpoints), out (from them) or both.", DefaultValueFactory = _ => "both", HelpName = "in|out|both" };
        direction.AcceptOnlyFromAmong("in", "out", "both");
        var count = new Option<int?>("--count", "-c") { Description = "Stop after COUNT frames (that pass FILTER).", HelpName = "COUNT" };
        var write = new Option<string?>("--write", "-w") { Description = "Write pcap to FILE, or to standard output with -.", HelpName = "FILE|-" };
        var underlay = new Option<bool>("--underlay") { Description = "Capture the outer datagrams of the router's sockets (VXLAN, ESP) instead." };
        var ring = new Option<int?>("--buffer") { Description = "Frames the router holds for this capture per worker before it drops captured ones (default 1024).", HelpName = "FRAMES" };
        var filter = new Argument<string[]>("FILTER") { Description = "A libpcap filter expression (as tcpdump takes), e.g. icmp or tcp port 80.", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("capture", "Capture the decrypted inner frames of a network live, as pcap (root only).")
        { network, endpoint, direction, count, write, underlay, ring, filter };
        var host = HostOption.AddTo(cmd);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            bool outer = p.GetValue(underlay);
            string? net = p.GetValue(network);
            if (!outer && string.IsNullOrEmpty(net)) throw new UsageException("--network: required (the network whose frames to capture), unless --underlay");
            if (outer && p.GetValue(endpoint) is not null) throw new UsageException("--endpoint: not with --underlay (the outer datagrams belong to the host, not to an endpoint)");
            int? limit = p.GetValue(count);
            if (limit is <= 0) throw new UsageException($"--count: {limit} is not a positive number of frames");
            string expression = string.Join(' ', p.GetValue(filter) ?? []);
            using var bpf = Compile(expression, outer ? 101 : 1);

            var query = new List<string>();
            if (!outer) query.Add("network=" + Uri.EscapeDataString(net!));
            if (p.GetValue(endpoint) is { } e) query.Add("endpoint=" + Uri.EscapeDataString(e));
            query.Add("direction=" + p.GetValue(direction));
            if (outer) query.Add("underlay=true");
            if (p.GetValue(ring) is int frames) query.Add("ring=" + frames);
            return Run(s, "v1/capture?" + string.Join('&', query), bpf, limit, p.GetValue(write));
        }));
        return cmd;
    }

    /// <summary>FILTER compiled by libpcap for the capture's link type; null when there is none.</summary>
    private static BpfProgram? Compile(string expression, int linkType)
    {
        if (expression.Length == 0) return null;
        try
        {
            return BpfProgram.Create((PacketDotNet.LinkLayers)linkType, expression);
        }
        catch (PcapException e)
        {
            throw new UsageException($"FILTER: libpcap cannot compile '{expression}': {e.Message}");
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException)
        {
            throw new RouterException(RouterErrorCode.SystemError, $"FILTER needs libpcap, which cannot be loaded ({e.GetBaseException().Message}); on Debian: apt-get install libpcap0.8");
        }
    }

    private static int Run(ClientSession s, string path, BpfProgram? bpf, int? limit, string? file)
    {
        using var cts = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        using var http = Connect(s.SocketPath);
        using var response = Open(http, s.SocketPath, path, cts.Token);
        int linkType = int.Parse(response.Headers.GetValues(CaptureStream.LinkTypeHeader).First(), System.Globalization.CultureInfo.InvariantCulture);
        int snap = int.Parse(response.Headers.GetValues(CaptureStream.SnapLengthHeader).First(), System.Globalization.CultureInfo.InvariantCulture);
        using var stream = response.Content.ReadAsStream(cts.Token);

        PcapWriter? writer = null;
        if (file is not null)
        {
            writer = new PcapWriter(file);
            try { writer.Open(linkType, snap); }
            catch (Exception e) when (e is PcapException or DllNotFoundException or TypeInitializationException)
            {
                writer.Dispose();
                throw new RouterException(RouterErrorCode.SystemError, $"-w: cannot write pcap to '{file}': {e.GetBaseException().Message}");
            }
        }
        // As tcpdump's "listening on": the capture runs from here on (scripts wait for this line).
        s.Error.WriteLine($"capturing {Describe(path)}, link type {(linkType == 1 ? "EN10MB (Ethernet)" : "RAW (IPv4)")}, snapshot length {snap} bytes");
        s.Error.Flush();
        long written = 0, captured = 0, dropped = 0;
        string? endedBy = null;
        var header = new byte[CaptureStream.HeaderLength];
        var data = new byte[Math.Max(snap, 64)];
        try
        {
            while (limit is null || written < limit)
            {
                if (!ReadExactly(stream, header, cts.Token)) { endedBy = "the router closed the capture"; break; }
                byte kind = header[0];
                int length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
                int original = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
                long ns = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(16));
                if ((uint)length > (uint)data.Length) throw new InvalidDataException($"a capture record of {length} bytes (snap length {snap})");
                if (!ReadExactly(stream, data.AsSpan(0, length), cts.Token)) { endedBy = "the router closed the capture"; break; }
                if (kind is CaptureStream.Stats or CaptureStream.Ended)
                {
                    captured = BinaryPrimitives.ReadInt64LittleEndian(data);
                    dropped = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(8));
                    if (kind == CaptureStream.Ended) { endedBy = "the capture ended on the router (its network was removed or the router stopped)"; break; }
                    continue;
                }
                if (kind != CaptureStream.Frame) continue;
                ReadOnlySpan<byte> frame = data.AsSpan(0, length);
                if (bpf is not null && !bpf.Matches(frame)) continue;
                if (writer is not null)
                {
                    writer.Write(frame, original, ns);
                    if (!writer.Flush()) { endedBy = "the output is closed"; break; }
                }
                else s.Out.WriteLine(FrameSummary.Line(frame, original, ns, header[1] == 1 ? "in" : "out", linkType));
                written++;
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested) { LastCounts(stream, header, data, ref captured, ref dropped); }
        catch (IOException) when (cts.IsCancellationRequested) { }
        finally
        {
            writer?.Dispose();
        }
        s.Out.Flush();
        s.Error.WriteLine($"{written} frame(s) {(file is null ? "shown" : "written")}; the router dropped {dropped} of {captured} captured frame(s) because this reader fell behind"
            + (endedBy is null ? "" : $" ({endedBy})"));
        return ExitCodes.Ok;
    }

    /// <summary>
    /// After Ctrl-C: the counts the router has now, from its next stats record (sent every quarter second; the frames
    /// before it are skipped), so the summary tells what a reader that fell behind lost. At most two seconds.
    /// </summary>
    private static void LastCounts(Stream stream, byte[] header, byte[] data, ref long captured, ref long dropped)
    {
        var until = Environment.TickCount64 + 2000;
        try
        {
            while (Environment.TickCount64 < until && ReadExactly(stream, header, CancellationToken.None))
            {
                int length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
                if ((uint)length > (uint)data.Length || !ReadExactly(stream, data.AsSpan(0, length), CancellationToken.None)) return;
                if (header[0] is CaptureStream.Stats or CaptureStream.Ended)
                {
                    captured = BinaryPrimitives.ReadInt64LittleEndian(data);
                    dropped = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(8));
                    return;
                }
            }
        }
        catch (IOException) { }
    }

    private static string Describe(string path)
    {
        var q = System.Web.HttpUtility.ParseQueryString(path[(path.IndexOf('?') + 1)..]);
        return q["underlay"] == "true" ? $"the underlay (outer datagrams, {q["direction"]})"
            : $"network {q["network"]}{(q["endpoint"] is { } e ? $", endpoint {e}" : "")} ({q["direction"]})";
    }

    private static bool ReadExactly(Stream stream, Span<byte> buffer, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        int got = 0;
        while (got < buffer.Length)
        {
            int n = stream.Read(buffer[got..]);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    private static HttpClient Connect(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var sock = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await sock.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(sock, ownsSocket: true);
                }
                catch
                {
                    sock.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://useroverlay/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Starts the capture; an error answer becomes the daemon's sentence (<see cref="DaemonErrorException"/>).</summary>
    private static HttpResponseMessage Open(HttpClient http, string socketPath, string path, CancellationToken ct)
    {
        HttpResponseMessage resp;
        try
        {
            resp = http.Send(new HttpRequestMessage(HttpMethod.Get, path), HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException se)
        {
            throw new RouterException(se.SocketErrorCode == SocketError.AccessDenied ? RouterErrorCode.PermissionDenied : RouterErrorCode.SystemError,
                se.SocketErrorCode == SocketError.AccessDenied
                    ? $"permission denied on {socketPath}: the control socket is for root and its group; capturing is root's (sudo)"
                    : $"cannot reach the router at {socketPath}: {se.Message} (is it still running?)");
        }
        if (resp.IsSuccessStatusCode) return resp;
        using (resp)
        {
            string body = resp.Content.ReadAsStringAsync(ct).GetAwaiter().GetResult();
            ApiError? error = null;
            try { error = System.Text.Json.JsonSerializer.Deserialize(body, ControlJson.Default.ApiError); } catch (System.Text.Json.JsonException) { }
            throw new DaemonErrorException(resp.StatusCode, error?.Code ?? $"http_{(int)resp.StatusCode}",
                error?.Message ?? $"the router answered GET /{path} with {(int)resp.StatusCode} {resp.ReasonPhrase}");
        }
    }
}

/// <summary>One line per frame for a capture shown on the terminal (without -w): time, direction, addresses, protocol.</summary>
internal static class FrameSummary
{
    public static string Line(ReadOnlySpan<byte> f, int original, long unixNs, string direction, int linkType)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(unixNs / 1_000_000).UtcDateTime.AddTicks(unixNs / 100 % 10_000);
        string what;
        if (linkType == 1)
        {
            if (f.Length < 14) what = "truncated Ethernet frame";
            else
            {
                string src = Mac(f[6..12]), dst = Mac(f[..6]);
                ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
                what = $"{src} > {dst}, " + (type == 0x0800 ? Ipv4(f[14..]) : type == 0x0806 ? Arp(f[14..]) : $"ethertype 0x{type:x4}");
            }
        }
        else what = Ipv4(f);
        return $"{t:HH:mm:ss.ffffff} {direction,-3} {what}, length {original}";
    }

    private static string Mac(ReadOnlySpan<byte> m) => $"{m[0]:x2}:{m[1]:x2}:{m[2]:x2}:{m[3]:x2}:{m[4]:x2}:{m[5]:x2}";

    private static string Ip(ReadOnlySpan<byte> a) => $"{a[0]}.{a[1]}.{a[2]}.{a[3]}";

    private static string Ipv4(ReadOnlySpan<byte> p)
    {
        if (p.Length < 20 || p[0] >> 4 != 4) return "IPv4, truncated";
        int ihl = (p[0] & 0xF) * 4;
        string src = Ip(p[12..16]), dst = Ip(p[16..20]);
        var l4 = p.Length > ihl ? p[ihl..] : default;
        return p[9] switch
        {
            1 when l4.Length >= 8 => $"IPv4 {src} > {dst}: ICMP {(l4[0] == 8 ? "echo request" : l4[0] == 0 ? "echo reply" : "type " + l4[0])}, id {BinaryPrimitives.ReadUInt16BigEndian(l4[4..])}, seq {BinaryPrimitives.ReadUInt16BigEndian(l4[6..])}",
            6 when l4.Length >= 4 => $"IPv4 {src}.{BinaryPrimitives.ReadUInt16BigEndian(l4)} > {dst}.{BinaryPrimitives.ReadUInt16BigEndian(l4[2..])}: TCP",
            17 when l4.Length >= 4 => $"IPv4 {src}.{BinaryPrimitives.ReadUInt16BigEndian(l4)} > {dst}.{BinaryPrimitives.ReadUInt16BigEndian(l4[2..])}: UDP",
            50 => $"IPv4 {src} > {dst}: ESP",
            _ => $"IPv4 {src} > {dst}: protocol {p[9]}",
        };
    }

    private static string Arp(ReadOnlySpan<byte> a) =>
        a.Length < 28 ? "ARP, truncated"
        : BinaryPrimitives.ReadUInt16BigEndian(a[6..]) == 1 ? $"ARP, who has {Ip(a[24..28])} tell {Ip(a[14..18])}"
        : $"ARP, {Ip(a[14..18])} is at {Mac(a[8..14])}";
}
