using System.Buffers.Binary;
using System.Text;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>What one of <see cref="RaftLog"/>'s log entries carries.</summary>
internal enum RaftEntryKind : byte
{
    /// <summary>A command for the <see cref="IReplicatedStateMachine"/>.</summary>
    Command = 1,

    /// <summary>A member's node id and Raft address, recorded when it joins (or bootstraps the cluster).</summary>
    MemberSet = 2,

    /// <summary>A member's record removed (it left the consensus).</summary>
    MemberRemove = 3,
}

/// <summary>
/// The layout of <see cref="RaftLog"/>'s log entries (the payload DotNext replicates):
/// <c>kind (1) | proposal id (8, little-endian) | body</c>. The proposal id, random per proposal, lets the proposing
/// member know when its own entry has been applied locally. A <see cref="RaftEntryKind.Command"/>'s body is the command;
/// a <see cref="RaftEntryKind.MemberSet"/>'s is <c>id length (2) | id (UTF-8) | address length (2) | address (UTF-8)</c>;
/// a <see cref="RaftEntryKind.MemberRemove"/>'s is <c>id length (2) | id</c>.
/// </summary>
internal static class RaftEntry
{
    /// <summary>Bytes before the body.</summary>
    public const int HeaderLength = 9;

    /// <summary>Longest member id or address, in characters.</summary>
    public const int MaxIdLength = 255;

    /// <summary>Frames a command.</summary>
    public static byte[] Command(ulong proposalId, ReadOnlySpan<byte> command)
    {
        var entry = new byte[HeaderLength + command.Length];
        WriteHeader(entry, RaftEntryKind.Command, proposalId);
        command.CopyTo(entry.AsSpan(HeaderLength));
        return entry;
    }

    /// <summary>Frames a member record.</summary>
    public static byte[] MemberSet(ulong proposalId, string id, string address)
    {
        int idLength = Encoding.UTF8.GetByteCount(id), addressLength = Encoding.UTF8.GetByteCount(address);
        var entry = new byte[HeaderLength + 2 + idLength + 2 + addressLength];
        WriteHeader(entry, RaftEntryKind.MemberSet, proposalId);
        Span<byte> body = entry.AsSpan(HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)idLength);
        Encoding.UTF8.GetBytes(id, body[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(body[(2 + idLength)..], (ushort)addressLength);
        Encoding.UTF8.GetBytes(address, body[(4 + idLength)..]);
        return entry;
    }

    /// <summary>Frames a member record's removal.</summary>
    public static byte[] MemberRemove(ulong proposalId, string id)
    {
        int idLength = Encoding.UTF8.GetByteCount(id);
        var entry = new byte[HeaderLength + 2 + idLength];
        WriteHeader(entry, RaftEntryKind.MemberRemove, proposalId);
        BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(HeaderLength), (ushort)idLength);
        Encoding.UTF8.GetBytes(id, entry.AsSpan(HeaderLength + 2));
        return entry;
    }

    private static void WriteHeader(Span<byte> entry, RaftEntryKind kind, ulong proposalId)
    {
        entry[0] = (byte)kind;
        BinaryPrimitives.WriteUInt64LittleEndian(entry[1..], proposalId);
    }

    /// <summary>Reads the header; false for an entry too short or of an unknown kind.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> entry, out RaftEntryKind kind, out ulong proposalId, out ReadOnlySpan<byte> body)
    {
        kind = default;
        proposalId = 0;
        body = default;
        if (entry.Length < HeaderLength || entry[0] is < (byte)RaftEntryKind.Command or > (byte)RaftEntryKind.MemberRemove)
            return false;
        kind = (RaftEntryKind)entry[0];
        proposalId = BinaryPrimitives.ReadUInt64LittleEndian(entry[1..]);
        body = entry[HeaderLength..];
        return true;
    }

    /// <summary>Reads a length-prefixed UTF-8 string off the front of <paramref name="body"/>.</summary>
    public static bool TryReadString(ref ReadOnlySpan<byte> body, out string value)
    {
        value = "";
        if (body.Length < 2)
            return false;
        int length = BinaryPrimitives.ReadUInt16LittleEndian(body);
        if (length == 0 || body.Length < 2 + length)
            return false;
        try
        {
            value = new UTF8Encoding(false, true).GetString(body.Slice(2, length));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        body = body[(2 + length)..];
        return true;
    }
}
