namespace UserOverlay.Router.Capture;

/// <summary>One captured frame, as <see cref="CaptureSession.TryRead"/> returns it.</summary>
/// <param name="Length">Bytes captured (written to the caller's buffer).</param>
/// <param name="OriginalLength">The frame's length on the wire (larger than <paramref name="Length"/> when it was cut at the snap length).</param>
/// <param name="UnixTimeNanoseconds">When the router handled it.</param>
/// <param name="Direction"><see cref="CaptureDirection.In"/> or <see cref="CaptureDirection.Out"/>.</param>
public readonly record struct CaptureRecord(int Length, int OriginalLength, long UnixTimeNanoseconds, CaptureDirection Direction);
