using UserOverlay.Crypto;
using UserOverlay.Router;
using YamlDotNet.RepresentationModel;

namespace UserOverlay.Cli.Config;

/// <summary>
/// The encryption part of the configuration: per network <c>encrypted: true</c> with <c>key:</c> (base64 of 16
/// or 32 bytes) or <c>key_file:</c>; and the host-wide <c>encryption:</c> section:
/// <code>
/// encryption:
///   esp: udp                # udp (ESP-in-UDP, RFC 3948; the default) or transport (IP protocol 50, Docker's wire form)
///   udp_port: 4500          # ESP-in-UDP port
///   rekey_interval: 1h      # key epoch; every host of a network must use the same
///   extended_sequence_numbers: false   # 64-bit ESN (Wireshark 4.0 cannot check them)
///   state_dir: /var/lib/useroverlay    # sequence reservations survive restarts here (nonces never repeat)
/// </code>
/// </summary>
internal sealed class EncryptionSection
{
    public const string DefaultStateDirectory = "/var/lib/useroverlay";

    private readonly StaticNetworkKeySource _keys = new();
    private EspOptions _esp = new();
    private bool _anyEncrypted;
    private bool _present;

    public string StateDirectory { get; private set; } = DefaultStateDirectory;

    /// <summary>Parses the top-level <c>encryption:</c> section (all optional).</summary>
    public static EncryptionSection Parse(YamlReader r, Dictionary<string, YamlNode> top)
    {
        var section = new EncryptionSection();
        if (!top.TryGetValue("encryption", out var node)) return section;
        section._present = true;
        if (r.Mapping(node, "encryption") is not { } m) return section;
        var f = r.Fields(m, "encryption", "esp", "udp_port", "rekey_interval", "extended_sequence_numbers", "state_dir");
        var esp = new EspOptions();
        if (r.String(f, "esp", "encryption", false) is { } mode)
        {
            switch (mode.Trim().ToLowerInvariant())
            {
                case "transport": esp = esp with { Encapsulation = EspEncapsulation.Transport }; break;
                case "udp": esp = esp with { Encapsulation = EspEncapsulation.Udp }; break;
                default: r.Error(f["esp"], "encryption.esp", $"'{mode}' is not 'udp' (ESP-in-UDP, the default) or 'transport' (IP protocol 50)"); break;
            }
        }
        if (r.Integer(f, "udp_port", "encryption", false, 1, 65535) is long port) esp = esp with { UdpPort = (int)port };
        if (r.Duration(f, "rekey_interval", "encryption") is TimeSpan interval)
        {
            if (interval < TimeSpan.FromSeconds(1)) r.Error(f["rekey_interval"], "encryption.rekey_interval", "must be at least 1s");
            else esp = esp with { RekeyInterval = interval };
        }
        if (r.Boolean(f, "extended_sequence_numbers", "encryption") is bool esn) esp = esp with { ExtendedSequenceNumbers = esn };
        if (r.String(f, "state_dir", "encryption", false) is { Length: > 0 } dir)
        {
            if (!Path.IsPathRooted(dir)) r.Error(f["state_dir"], "encryption.state_dir", $"'{dir}' must be an absolute path");
            else section.StateDirectory = dir;
        }
        section._esp = esp;
        return section;
    }

    /// <summary>Parses a network's <c>encrypted</c>, <c>key</c> and <c>key_file</c>; returns whether it is encrypted.</summary>
    public static bool ParseNetwork(YamlReader r, Dictionary<string, YamlNode> f, string at, string? name, EncryptionSection section)
    {
        bool encrypted = r.Boolean(f, "encrypted", at) ?? false;
        string? key = r.String(f, "key", at, false);
        string? keyFile = r.String(f, "key_file", at, false);
        if (!encrypted)
        {
            if (key is not null || keyFile is not null)
                r.Error(f.GetValueOrDefault("key") ?? f["key_file"], $"{at}.{(key is not null ? "key" : "key_file")}",
                    "is set but the network is not encrypted (add encrypted: true, or remove the key)");
            return false;
        }
        section._anyEncrypted = true;
        if (key is not null && keyFile is not null)
        {
            r.Error(f["key_file"], $"{at}.key_file", "give either key: or key_file:, not both");
            return true;
        }
        if (name is null) return true;
        try
        {
            if (key is not null) section._keys.Set(NetworkKey.FromBase64(name, key));
            else if (keyFile is not null) section._keys.Set(NetworkKey.FromFile(name, keyFile));
            else r.Error(f["encrypted"], $"{at}.key", "an encrypted network needs key: (base64 of 16 or 32 bytes, e.g. from `head -c 32 /dev/urandom | base64`) or key_file:");
        }
        catch (FormatException e)
        {
            r.Error(key is not null ? f["key"] : f["key_file"], $"{at}.{(key is not null ? "key" : "key_file")}", e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            r.Error(f["key_file"], $"{at}.key_file", $"cannot read '{keyFile}': {e.Message}");
        }
        return true;
    }

    /// <summary>
    /// The router's encryption options, or null when no network is encrypted and there is no <c>encryption:</c>
    /// section (then no ESP socket is opened). With the section, ESP is ready for networks the API creates encrypted
    /// at run time (their keys are added to the same <see cref="StaticNetworkKeySource"/>). The sequence store is added at start-up.
    /// </summary>
    public EncryptionOptions? ToOptions() => _anyEncrypted || _present ? new EncryptionOptions { Keys = _keys, Esp = _esp } : null;
}
