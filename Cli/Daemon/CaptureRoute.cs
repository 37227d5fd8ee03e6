using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using UserOverlay.Router;
using UserOverlay.Router.Capture;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// <c>GET /v1/capture?network=NET[&amp;endpoint=NETNS][&amp;direction=in|out|both][&amp;underlay=true][&amp;ring=FRAMES]</c>:
/// streams a live capture (<see cref="OverlayRouter.StartCapture"/>) as <see cref="CaptureStream"/> records until the
/// client goes away (the capture then stops) or the capture ends. Root only (<see cref="ControlServer"/>): it shows
/// decrypted traffic. The stream is drained every few milliseconds; a client that reads slowly holds the route's
/// writes back, its rings fill and the router drops captured frames (counted, reported in the stats records), never
/// forwarded ones — Kestrel's minimum response rate is off for this route, so a slow reader is not cut off.
/// </summary>
internal static class CaptureRoute
{
    private const int BufferBytes = 256 * 1024;
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(5);
    private const long StatsEveryMilliseconds = 250;

    public static void Map(WebApplication app, RouterService router) =>
        app.MapGet("/v1/capture", (HttpContext ctx) => ServeAsync(ctx, router.Router));

    private static async Task ServeAsync(HttpContext ctx, OverlayRouter router)
    {
        var q = ctx.Request.Query;
        string? network = q["network"], endpoint = q["endpoint"], direction = q["direction"], underlay = q["underlay"], ring = q["ring"];
        CaptureDirection dir;
        switch (direction ?? "both")
        {
            case "both": dir = CaptureDirection.Both; break;
            case "in": dir = CaptureDirection.In; break;
            case "out": dir = CaptureDirection.Out; break;
            default: await Error(ctx, 400, "invalid_argument", $"direction: '{direction}' is not in, out or both"); return;
        }
        bool outer = underlay is "true" or "1";
        if (underlay is not (null or "true" or "1" or "false" or "0")) { await Error(ctx, 400, "invalid_argument", $"underlay: '{underlay}' is not true or false"); return; }
        if (!outer && string.IsNullOrEmpty(network)) { await Error(ctx, 400, "invalid_argument", "network: is required (the network whose frames to capture), unless underlay=true"); return; }
        int frames = CaptureOptions.DefaultRingFrames;
        if (ring is not null && (!int.TryParse(ring, out frames) || frames < 1 || frames > CaptureOptions.MaxRingFrames))
        { await Error(ctx, 400, "invalid_argument", $"ring: '{ring}' is not a number of frames from 1 to {CaptureOptions.MaxRingFrames}"); return; }

        CaptureSession session;
        try
        {
            session = router.StartCapture(new CaptureOptions(outer ? null : network, outer ? null : endpoint, dir, outer, frames));
        }
        catch (RouterException e) when (e.Code == RouterErrorCode.NotFound)
        {
            await Error(ctx, 404, "not_found", e.Message);
            return;
        }
        using (session)
        {
            // A slow reader must not be disconnected: it is the case the rings and their drop counters are for.
            if (ctx.Features.Get<IHttpMinResponseDataRateFeature>() is { } rate) rate.MinDataRate = null;
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            ctx.Response.ContentType = CaptureStream.ContentType;
            ctx.Response.Headers[CaptureStream.LinkTypeHeader] = session.LinkType.ToString(System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.Headers[CaptureStream.SnapLengthHeader] = session.SnapLength.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var ct = ctx.RequestAborted;
            var body = ctx.Response.Body;
            byte[] buf = new byte[Math.Max(BufferBytes, 4 * (session.SnapLength + CaptureStream.HeaderLength))];
            long lastStats = 0;
            try
            {
                await ctx.Response.StartAsync(ct);
                await body.FlushAsync(ct);
                while (!ct.IsCancellationRequested)
                {
                    bool ended = session.Ended; // read before draining: whatever was captured before the end is sent
                    int used = 0;
                    while (used + CaptureStream.HeaderLength + session.SnapLength + 64 <= buf.Length
                        && session.TryRead(buf.AsSpan(used + CaptureStream.HeaderLength, session.SnapLength), out var r))
                    {
                        CaptureStream.WriteHeader(buf.AsSpan(used), CaptureStream.Frame, r.Direction == CaptureDirection.In ? (byte)1 : (byte)2,
                            r.Length, r.OriginalLength, r.UnixTimeNanoseconds);
                        used += CaptureStream.HeaderLength + r.Length;
                    }
                    bool full = used + CaptureStream.HeaderLength + session.SnapLength + 64 > buf.Length;
                    long now = Environment.TickCount64;
                    if (ended && !full) used += CaptureStream.WriteCounts(buf.AsSpan(used), CaptureStream.Ended, session.Captured, session.Dropped);
                    else if (now - lastStats >= StatsEveryMilliseconds)
                    {
                        used += CaptureStream.WriteCounts(buf.AsSpan(used), CaptureStream.Stats, session.Captured, session.Dropped);
                        lastStats = now;
                    }
                    if (used > 0)
                    {
                        await body.WriteAsync(buf.AsMemory(0, used), ct);
                        await body.FlushAsync(ct);
                    }
                    if (ended && !full) break;
                    if (!full) await Task.Delay(Poll, ct);
                }
            }
            catch (OperationCanceledException) { } // the client went away
            catch (IOException) { }
            catch (InvalidOperationException) { } // the connection was aborted while writing
        }
    }

    private static Task Error(HttpContext ctx, int status, string code, string message) =>
        Results.Json(new ApiError(code, message), ControlJson.Default.ApiError, statusCode: status).ExecuteAsync(ctx);
}
