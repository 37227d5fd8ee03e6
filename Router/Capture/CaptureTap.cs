using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Capture;

/// <summary>
/// Where the pipeline hands frames to the running captures. The data path calls these only after one volatile read
/// found captures (<see cref="NetworkState.Captures"/>, <see cref="ForwardingState.UnderlayCaptures"/>), so with none
/// running a frame costs that read and a branch. They are kept out of line (NoInlining) so the hot methods stay small.
/// Called on pipeline worker <c>worker</c> only, which is the producer of ring <c>worker</c> of every session.
/// Nothing here allocates.
/// </summary>
internal static class CaptureTap
{
    /// <summary>A frame read from local endpoint <paramref name="from"/>'s TAP.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void FromEndpoint(CaptureSession[] sessions, LocalPort from, ReadOnlySpan<byte> frame, int worker)
    {
        long now = Stopwatch.GetTimestamp();
        ulong dst = frame.Length >= Constants.EthernetHeaderLength ? EthernetFrame.Destination(frame) : 0;
        foreach (var s in sessions)
        {
            if (s.Port is null || s.Port == from)
            {
                if (s.Out) s.Rings[worker].Write(default, frame, CaptureDirection.Out, now);
            }
            else if (s.In && (dst == s.PortMac || EthernetFrame.IsMulticast(dst)))
                s.Rings[worker].Write(default, frame, CaptureDirection.In, now); // another local endpoint's frame for this one
        }
    }

    /// <summary>An inner frame received from the underlay (decapsulated, decrypted).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void FromUnderlay(CaptureSession[] sessions, ReadOnlySpan<byte> frame, int worker)
    {
        long now = Stopwatch.GetTimestamp();
        ulong dst = frame.Length >= Constants.EthernetHeaderLength ? EthernetFrame.Destination(frame) : 0;
        foreach (var s in sessions)
            if (s.In && (s.Port is null || dst == s.PortMac || EthernetFrame.IsMulticast(dst)))
                s.Rings[worker].Write(default, frame, CaptureDirection.In, now);
    }

    /// <summary>
    /// An outer datagram received or sent: <paramref name="payload"/> is the UDP payload (VXLAN or ESP-in-UDP), or the ESP
    /// packet of transport mode (<paramref name="udp"/> false); the capture gets it behind an IPv4 (and UDP) header made
    /// from the addresses, as it was on the wire.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Datagram(CaptureSession[] sessions, CaptureDirection direction, ReadOnlySpan<byte> payload, uint localAddress, ushort localPort,
        VtepEndpoint peer, bool udp, int worker)
    {
        long now = Stopwatch.GetTimestamp();
        Span<byte> prefix = stackalloc byte[28];
        bool outbound = direction == CaptureDirection.Out;
        uint src = outbound ? localAddress : peer.Address, dst = outbound ? peer.Address : localAddress;
        int headers = udp ? 28 : 20;
        CaptureRing.WriteIpv4(prefix, headers + payload.Length, udp ? (byte)17 : (byte)50, src, dst);
        if (udp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(prefix[20..], outbound ? localPort : peer.Port);
            BinaryPrimitives.WriteUInt16BigEndian(prefix[22..], outbound ? peer.Port : localPort);
            BinaryPrimitives.WriteUInt16BigEndian(prefix[24..], (ushort)Math.Min(8 + payload.Length, ushort.MaxValue));
            BinaryPrimitives.WriteUInt16BigEndian(prefix[26..], 0);
        }
        foreach (var s in sessions)
            if (direction == CaptureDirection.Out ? s.Out : s.In)
                s.Rings[worker].Write(prefix[..headers], payload, direction, now);
    }

    /// <summary>Each datagram of a send batch (a UDP GSO send is split into its datagrams).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Sent(CaptureSession[] sessions, ReadOnlySpan<UnderlayDatagram> batch, uint localAddress, ushort localPort, bool udp, int worker)
    {
        foreach (ref readonly var d in batch)
        {
            ReadOnlySpan<byte> all = d.Buffer.Span.Slice(d.Offset, d.Length);
            int step = d.SegmentSize > 0 ? d.SegmentSize : d.Length;
            for (int at = 0; at < all.Length; at += step)
                Datagram(sessions, CaptureDirection.Out, all.Slice(at, Math.Min(step, all.Length - at)), localAddress, localPort, d.Peer, udp, worker);
        }
    }
}
