namespace UserOverlay.Crypto.Tests;

/// <summary>
/// <see cref="EspOptions.Validate"/> names the property at fault (ParamName) and says the range and the value, in the
/// library's terms: a configuration file's key names are the CLI's business (it maps property paths to them).
/// </summary>
public class OptionsValidationTests
{
    public static TheoryData<EspOptions, string, string> OutOfRange => new()
    {
        { new EspOptions { RekeyInterval = TimeSpan.FromMilliseconds(500) }, nameof(EspOptions.RekeyInterval), "must be at least 1 s (it is 0.5 s)" },
        { new EspOptions { EpochSpread = 17 }, nameof(EspOptions.EpochSpread), "must be from 1 to 16 (it is 17)" },
        { new EspOptions { CipherLanes = 0 }, nameof(EspOptions.CipherLanes), "must be from 1 to 256 (it is 0)" },
        { new EspOptions { SequenceReservationBlock = 1 }, nameof(EspOptions.SequenceReservationBlock), "must be at least 2 (it is 1)" },
        { new EspOptions { UdpPort = 70000 }, nameof(EspOptions.UdpPort), "must be from 1 to 65535 (it is 70000)" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void An_out_of_range_value_names_its_property_and_range(EspOptions options, string property, string sentence)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(property, e.ParamName);
        Assert.StartsWith(sentence, e.Message);
        Assert.DoesNotContain("_", e.Message.Split(" (Parameter")[0]); // no snake_case file keys
    }

    [Fact]
    public void The_defaults_are_valid() => new EspOptions().Validate();
}
