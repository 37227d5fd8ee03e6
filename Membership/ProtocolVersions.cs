namespace UserOverlay.Membership;

/// <summary>The protocol and delegate version ranges a member advertises (memberlist's Vsn).</summary>
/// <param name="ProtocolMin">Lowest memberlist protocol it understands.</param>
/// <param name="ProtocolMax">Highest memberlist protocol it understands.</param>
/// <param name="ProtocolCurrent">The memberlist protocol it speaks.</param>
/// <param name="DelegateMin">Lowest delegate (embedder) protocol it understands.</param>
/// <param name="DelegateMax">Highest delegate protocol it understands.</param>
/// <param name="DelegateCurrent">The delegate protocol it speaks.</param>
public readonly record struct ProtocolVersions(byte ProtocolMin, byte ProtocolMax, byte ProtocolCurrent, byte DelegateMin, byte DelegateMax, byte DelegateCurrent)
{
    internal byte[] ToVsn() => [ProtocolMin, ProtocolMax, ProtocolCurrent, DelegateMin, DelegateMax, DelegateCurrent];

    internal static ProtocolVersions FromVsn(ReadOnlySpan<byte> v) =>
        v.Length >= 6 ? new(v[0], v[1], v[2], v[3], v[4], v[5])
        : v.Length >= 3 ? new(v[0], v[1], v[2], 0, 0, 0)
        : default;

    /// <inheritdoc/>
    public override string ToString() => $"protocol {ProtocolCurrent} [{ProtocolMin},{ProtocolMax}], delegate {DelegateCurrent} [{DelegateMin},{DelegateMax}]";
}
