using System.Globalization;

namespace UserOverlay.Control;

/// <summary>Durations as the configuration file and the command line write them: 300, 300s, 500ms, 5m, 1.5h.</summary>
public static class Durations
{
    /// <summary>Parses a number of seconds, or a number with a unit (ms, s, m, h); zero or more.</summary>
    public static bool TryParse(string text, out TimeSpan duration)
    {
        string s = text.Trim();
        (string num, double scale) = s switch
        {
            _ when s.EndsWith("ms", StringComparison.Ordinal) => (s[..^2], 0.001),
            _ when s.EndsWith('s') => (s[..^1], 1.0),
            _ when s.EndsWith('m') => (s[..^1], 60.0),
            _ when s.EndsWith('h') => (s[..^1], 3600.0),
            _ => (s, 1.0),
        };
        duration = default;
        if (!double.TryParse(num, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) || v < 0 || v * scale > TimeSpan.MaxValue.TotalSeconds / 2) return false;
        duration = TimeSpan.FromSeconds(v * scale);
        return true;
    }
}
