namespace UserOverlay.Crypto;

/// <summary>
/// Durable memory of outbound sequence numbers, so that a restarted host never seals two packets with the same
/// (key, sequence number) — hence never reuses a GCM nonce. SA keys are derived deterministically, so a restart
/// within an epoch yields the same key; the store tells the new run where the old one may have got to.
/// </summary>
/// <remarks>
/// The same records also hold, per inbound SA, the highest sequence number accepted
/// (<see cref="EspOptions.ReplayStateSaveInterval"/>), so a restarted receiver does not accept old packets again.
/// Protocol: before sealing with numbers up to N the database calls <see cref="Reserve"/>(id, epoch, N) and waits
/// for it to return; a later run starts at <see cref="GetReserved"/>(id) + 1. Blocks are large (see
/// <see cref="EspOptions.SequenceReservationBlock"/>), so a busy SA writes rarely; a restart skips the unused rest of
/// its last block, which is harmless. Implementations must be thread-safe (called from the rotation thread and from
/// thread-pool reservation work) and must make <see cref="Reserve"/> durable before returning.
/// </remarks>
public interface ISequenceStore
{
    /// <summary>Highest sequence number ever reserved for SA <paramref name="recordId"/>, or 0.</summary>
    ulong GetReserved(string recordId);

    /// <summary>Records durably that numbers up to <paramref name="through"/> may be used by SA <paramref name="recordId"/> of <paramref name="epoch"/>.</summary>
    void Reserve(string recordId, long epoch, ulong through);

    /// <summary>Several reservations made durable together (one write for all the SAs a rotation or a membership
    /// change creates). The default makes them one by one.</summary>
    void ReserveMany(IReadOnlyList<SequenceReservation> reservations)
    {
        foreach (SequenceReservation r in reservations)
            Reserve(r.RecordId, r.Epoch, r.Through);
    }

    /// <summary>Forgets SAs of epochs before <paramref name="minEpoch"/> and raises <see cref="Floor"/> to it.</summary>
    void Prune(long minEpoch);

    /// <summary>Epochs below this were pruned: their reservations are forgotten, so no SA of theirs may seal again
    /// (the database never sends with an epoch below the floor, even if the clock goes back).</summary>
    long Floor { get; }
}
