namespace UserOverlay.Crypto;

/// <summary>One durable reservation: SA <paramref name="RecordId"/> of <paramref name="Epoch"/> may use numbers up to <paramref name="Through"/>.</summary>
public readonly record struct SequenceReservation(string RecordId, long Epoch, ulong Through);
