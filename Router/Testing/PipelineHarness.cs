using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Pipeline;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Testing;

/// <summary>
/// One network's forwarding state with local ports on <see cref="CountingTap"/>s and remote peers
/// with known MACs, plus the pipeline halves bound to a <see cref="CountingUnderlay"/>: the fixture
/// of the zero-allocation tests and the micro-benchmarks, so both measure the same path.
/// Single-threaded use.
/// </summary>
internal sealed class PipelineHarness : IDisposable
{
    public const uint Vni = 4097;
    public readonly ForwardingState State;
    public readonly NetworkState Network;
    public readonly LocalPort[] Ports;
    public readonly VtepEndpoint[] Peers;
    public readonly ulong[] RemoteMacs;
    public readonly CountingUnderlay Underlay;
    public readonly CountingUnderlay? EspUnderlay;
    public readonly UserOverlay.Crypto.EspSecurityDatabase? Esp;
    public readonly UserOverlay.Crypto.EspSecurityDatabase? RemoteEsp;
    public readonly UserOverlay.Crypto.EspPeer? RemotePeer;
    public readonly Outbound Outbound;
    public readonly Inbound Inbound;

    /// <summary>With <paramref name="encrypted"/>, the network is encrypted and <see cref="Esp"/> holds this host's SAs;
    /// <see cref="RemoteEsp"/> holds peer 0's, to make inbound ESP packets. With <paramref name="gateway"/> (host order) the
    /// network has that gateway.</summary>
    public PipelineHarness(int localPorts = 2, int peers = 3, bool encrypted = false, uint? gateway = null)
    {
        State = new ForwardingState(workers: 1, learning: true, Constants.DefaultFdbAging) { DataPort = Constants.VxlanPort };
        long now = Environment.TickCount64;
        Peers = new VtepEndpoint[peers];
        RemoteMacs = new ulong[peers];
        var netOptions = new NetworkOptions { Name = "blue", Vni = Vni, Subnet = new Ipv4Prefix(0xC612_0000, 24), Encrypted = encrypted, Gateway = gateway }; // 198.18.0.0/24
        Network = new NetworkState(netOptions, encrypted ? 1416 : Constants.DefaultMtu, 1);
        State.Networks.Set(Vni, Network);
        for (int i = 0; i < peers; i++)
        {
            Peers[i] = new VtepEndpoint(0xC000_0202u + (uint)i, 4789); // 192.0.2.2…
            State.Peers.Set(Peers[i].Address, new PeerState(Peers[i]));
            RemoteMacs[i] = 0x0200_C612_0064UL + (ulong)i; // 02:00:c6:12:00:64… (198.18.0.100…)
            Network.Fdb.Set(RemoteMacs[i], new FdbEntry(RemoteMacs[i], EntrySource.Static, null, Peers[i], now));
            Network.Neighbors.Set(0xC612_0064u + (uint)i, new NeighborEntry(0xC612_0064u + (uint)i, RemoteMacs[i], EntrySource.Static, now));
        }
        Network.FloodList = Peers;
        Ports = new LocalPort[localPorts];
        for (int i = 0; i < localPorts; i++)
        {
            var e = new EndpointOptions { Network = "blue", Netns = $"c{i}", Address = 0xC612_000Bu + (uint)i, PrefixLength = 24 };
            Ports[i] = new LocalPort(i, Network, e, new CountingTap());
            State.AddPort(Ports[i], now);
        }
        Underlay = new CountingUnderlay(new VtepEndpoint(0xC000_0201, 4789));
        if (encrypted)
        {
            var keys = new UserOverlay.Crypto.StaticNetworkKeySource([new UserOverlay.Crypto.NetworkKey("blue", new byte[16])]);
            UserOverlay.Crypto.EspOptions Opts() => new() { SequenceStore = new UserOverlay.Crypto.InMemorySequenceStore(), CipherLanes = 1 };
            Esp = new UserOverlay.Crypto.EspSecurityDatabase(VtepEndpoint.ToIPAddress(0xC000_0201), keys, Opts(), DateTimeOffset.UtcNow);
            foreach (var p in Peers) Network.EspPeers.Set(p.Address, Esp.AddPeer("blue", p.IPAddress));
            State.Esp = Esp;
            RemoteEsp = new UserOverlay.Crypto.EspSecurityDatabase(Peers[0].IPAddress, keys, Opts(), DateTimeOffset.UtcNow);
            RemotePeer = RemoteEsp.AddPeer("blue", VtepEndpoint.ToIPAddress(0xC000_0201));
            EspUnderlay = new CountingUnderlay(new VtepEndpoint(0xC000_0201, 0));
        }
        Outbound = new Outbound(State, Underlay, 0, EspUnderlay);
        Inbound = new Inbound(State, 0);
    }

    /// <summary>Writes <paramref name="frame"/> into <paramref name="buf"/> at <see cref="Constants.Headroom"/>.</summary>
    public static void Load(PacketBuffer buf, ReadOnlySpan<byte> frame) => frame.CopyTo(buf.Span[Constants.Headroom..]);

    /// <summary>An Ethernet/IPv4/UDP frame of <paramref name="length"/> bytes from <paramref name="src"/> to <paramref name="dst"/>.</summary>
    public static byte[] Frame(ulong src, ulong dst, int length)
    {
        var f = new byte[length];
        EthernetFrame.WriteMac(f, dst);
        EthernetFrame.WriteMac(f.AsSpan(6), src);
        f[12] = 0x08; // IPv4
        f[14] = 0x45;
        for (int i = 34; i < length; i++) f[i] = (byte)i;
        return f;
    }

    /// <summary>An ARP request from port 0 for <paramref name="targetIp"/>.</summary>
    public byte[] ArpRequestFromPort0(uint targetIp)
    {
        var f = new byte[42];
        EthernetFrame.WriteMac(f, MacAddress.Broadcast.Value);
        EthernetFrame.WriteMac(f.AsSpan(6), Ports[0].Mac);
        f[12] = 0x08; f[13] = 0x06;
        f[14] = 0; f[15] = 1; f[16] = 8; f[17] = 0; f[18] = 6; f[19] = 4; f[20] = 0; f[21] = 1;
        EthernetFrame.WriteMac(f.AsSpan(22), Ports[0].Mac);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(28), Ports[0].Address);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(38), targetIp);
        return f;
    }

    /// <summary>Places a VXLAN datagram (header + <paramref name="inner"/>) from peer <paramref name="peer"/> in a buffer, as recvmmsg would.</summary>
    public static UnderlayDatagram Received(PacketBuffer buf, VtepEndpoint peer, uint vni, ReadOnlySpan<byte> inner)
    {
        int offset = Constants.Headroom - Constants.VxlanHeaderLength;
        VxlanHeader.Write(buf.Span[offset..], vni);
        inner.CopyTo(buf.Span[Constants.Headroom..]);
        return new UnderlayDatagram { Buffer = buf, Offset = offset, Length = inner.Length + Constants.VxlanHeaderLength, Peer = peer };
    }

    /// <summary>
    /// Places an ESP packet from peer 0 (sealed by <see cref="RemotePeer"/>) carrying a VXLAN datagram with <paramref name="inner"/>
    /// in <paramref name="buf"/>, as the ESP socket would deliver it. Each call uses the next sequence number.
    /// </summary>
    public UnderlayDatagram ReceivedEsp(PacketBuffer buf, ReadOnlySpan<byte> inner)
    {
        int udpAt = 16;
        Span<byte> b = buf.Span;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b[udpAt..], 4789);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 2)..], 4789);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 4)..], (ushort)(16 + inner.Length));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b[(udpAt + 6)..], 0);
        VxlanHeader.Write(b[(udpAt + 8)..], Vni);
        inner.CopyTo(b[(udpAt + 16)..]);
        RemotePeer!.Seal(b, udpAt, 16 + inner.Length, 17, out int espLength);
        return new UnderlayDatagram { Buffer = buf, Offset = 0, Length = espLength, Peer = new VtepEndpoint(Peers[0].Address, 0) };
    }

    public void Dispose()
    {
        foreach (var p in Ports) p.Tap.Dispose();
        Underlay.Dispose();
        EspUnderlay?.Dispose();
        Esp?.Dispose();
        RemoteEsp?.Dispose();
    }
}
