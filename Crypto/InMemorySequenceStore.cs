namespace UserOverlay.Crypto;

/// <summary>
/// A store that lives as long as the object: enough for tests (share one instance between two database instances to
/// simulate a restart) and for embedders whose keys are random per process. It does <b>not</b> survive a process
/// restart; the daemon uses <see cref="FileSequenceStore"/>.
/// </summary>
public sealed class InMemorySequenceStore : SequenceStoreBase
{
    /// <inheritdoc/>
    protected override void Persist()
    {
    }
}
