using System.Text.Json;
using System.Text.Json.Serialization;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Control.State;

/// <summary>One stored network: a file of <see cref="FileNetworkStore"/>, or a value of a replicated store.</summary>
/// <param name="Version">Format version, <see cref="StateJson.FormatVersion"/>.</param>
/// <param name="Network">The network.</param>
public sealed record NetworkFile(int Version, NetworkDefinition Network);

/// <summary>One stored endpoint.</summary>
/// <param name="Version">Format version, <see cref="StateJson.FormatVersion"/>.</param>
/// <param name="Endpoint">The endpoint.</param>
public sealed record EndpointFile(int Version, EndpointRecord Endpoint);

/// <summary>
/// JSON of the stored state: snake_case, source-generated (the CLI is NativeAOT), addresses as dotted quads, prefixes
/// as CIDRs, MACs as colon hex; a missing required field or a null where none is allowed fails the read.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true,
    Converters = [typeof(Ipv4PrefixJsonConverter), typeof(MacAddressJsonConverter)])]
[JsonSerializable(typeof(NetworkFile))]
[JsonSerializable(typeof(EndpointFile))]
internal sealed partial class StateJson : JsonSerializerContext
{
    /// <summary>The version written; a file with another version is refused.</summary>
    public const int FormatVersion = 1;
}

/// <summary>A host-order IPv4 <see cref="uint"/> as "198.18.0.5".</summary>
public sealed class Ipv4AddressJsonConverter : JsonConverter<uint>
{
    /// <inheritdoc/>
    public override uint Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? s = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return Ipv4Prefix.TryParseAddress(s, out uint a) ? a : throw new JsonException($"'{s}' is not an IPv4 address");
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, uint value, JsonSerializerOptions options) =>
        writer.WriteStringValue(VtepEndpoint.FormatAddress(value));
}

/// <summary>An <see cref="Ipv4Prefix"/> as "198.18.0.0/24".</summary>
public sealed class Ipv4PrefixJsonConverter : JsonConverter<Ipv4Prefix>
{
    /// <inheritdoc/>
    public override Ipv4Prefix Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? s = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return Ipv4Prefix.TryParse(s, out var p, out string why) ? p : throw new JsonException($"subnet {why}");
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, Ipv4Prefix value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}

/// <summary>A <see cref="MacAddress"/> as "02:00:c6:12:00:05".</summary>
public sealed class MacAddressJsonConverter : JsonConverter<MacAddress>
{
    /// <inheritdoc/>
    public override MacAddress Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? s = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return MacAddress.TryParse(s, out var m) ? m : throw new JsonException($"'{s}' is not a MAC address");
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, MacAddress value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
