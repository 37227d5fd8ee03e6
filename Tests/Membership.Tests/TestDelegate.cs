using System.Collections.Concurrent;

namespace UserOverlay.Membership.Tests;

/// <summary>Meta and user messages for tests.</summary>
public sealed class TestDelegate : IMembershipDelegate
{
    public volatile byte[] Meta = [];
    public readonly ConcurrentQueue<byte[]> Received = new();

    public int WriteNodeMeta(Span<byte> destination)
    {
        var m = Meta;
        if (m.Length > destination.Length) return m.Length; // lets tests check the size limit
        m.CopyTo(destination);
        return m.Length;
    }

    public void OnUserMessage(ReadOnlySpan<byte> message) => Received.Enqueue(message.ToArray());
}
