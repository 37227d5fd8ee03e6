namespace UserOverlay.Membership;

/// <summary>Optional ping hooks (memberlist's PingDelegate): ack payloads and RTT observations.</summary>
public interface IPingDelegate
{
    /// <summary>Payload to put in our acks (serf: its Vivaldi coordinate). Called on the receive task; must not block.</summary>
    byte[]? AckPayload();

    /// <summary>A probe of <paramref name="member"/> completed after <paramref name="rtt"/>. Borrowed payload. Called on the probe task; must not block.</summary>
    void OnPingComplete(MemberInfo member, TimeSpan rtt, ReadOnlySpan<byte> payload);
}
