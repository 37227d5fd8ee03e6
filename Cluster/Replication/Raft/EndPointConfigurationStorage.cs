using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using DotNext.Buffers;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>
/// The consensus's membership (the Raft addresses of the voters) in a file, so a restarted member knows its peers.
/// An address is stored as <c>length (2, little-endian) | "IP:PORT" or "host:port" (UTF-8)</c>.
/// </summary>
internal sealed class EndPointConfigurationStorage(string fileName) : PersistentClusterConfigurationStorage<EndPoint>(fileName)
{
    /// <inheritdoc/>
    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer)
    {
        string text = Format(address);
        Span<byte> bytes = stackalloc byte[2 + Encoding.UTF8.GetMaxByteCount(text.Length)];
        int length = Encoding.UTF8.GetBytes(text, bytes[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)length);
        writer.Write(bytes[..(2 + length)]);
    }

    /// <inheritdoc/>
    protected override EndPoint Decode(ref SequenceReader reader)
    {
        Span<byte> prefix = stackalloc byte[2];
        reader.Read(prefix);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(prefix);
        string text = Encoding.UTF8.GetString(reader.Read(length).ToArray());
        return Parse(text) ?? throw new InvalidDataException($"raft membership file: address \"{text}\" is not IP:PORT nor host:port");
    }

    /// <summary>"IP:PORT" for an IP endpoint, "host:port" for a DNS one.</summary>
    public static string Format(EndPoint address) => address switch
    {
        IPEndPoint ip => ip.ToString(),
        DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
        _ => address.ToString() ?? "",
    };

    /// <summary>Reads an address <see cref="Format"/> wrote; null when it is neither form.</summary>
    public static EndPoint? Parse(string text)
    {
        if (IPEndPoint.TryParse(text, out IPEndPoint? ip) && ip.Port != 0)
            return ip;
        int colon = text.LastIndexOf(':');
        if (colon > 0 && int.TryParse(text.AsSpan(colon + 1), out int port) && port is > 0 and <= IPEndPoint.MaxPort)
            return new DnsEndPoint(text[..colon], port);
        return null;
    }
}
