namespace UserOverlay.Router.Tests;

/// <summary>
/// The tests against the kernel's devices (<see cref="TapDeviceTests"/>, <see cref="SocketUnderlayTests"/>,
/// <see cref="CpuSteeringTests"/>) run one after another: the steering tests pin threads to CPUs and count what each
/// CPU's queue receives in a millisecond window, which other namespaces' traffic on the same CPUs would disturb.
/// </summary>
[CollectionDefinition(Name)]
public sealed class LinuxDeviceCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Linux devices";
}
