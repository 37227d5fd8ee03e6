namespace UserOverlay.Router;

/// <summary>
/// A problem in <see cref="RouterOptions"/>: the field's property path and what is wrong with it. Paths
/// name properties as C# does, with list indexes: <c>BatchSize</c>, <c>Underlay.Port</c>, <c>Networks[1].Vni</c>,
/// <c>Endpoints[0].Mac</c>, <c>StaticFdb[2].Vtep</c>, <c>Encryption.Esp.RekeyInterval</c>; <c>Networks[i].Key</c>
/// is network i's key in <see cref="EncryptionOptions.Keys"/> (the key whose id is the network's name).
/// </summary>
public sealed record OptionError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}
