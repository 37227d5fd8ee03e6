using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Crypto;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The data path as a hosted service: starts the router (TAP devices created, workers forwarding)
/// and stops it (TAP devices removed). The first to start and the last to stop.
/// </summary>
internal sealed class RouterService(DaemonOptions options, ILoggerFactory loggers) : IHostedService, IDisposable
{
    private OverlayRouter? _router;

    /// <summary>The running router; the services that start after this one use it.</summary>
    public OverlayRouter Router => _router ?? throw new InvalidOperationException("the router has not started");

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _router = OverlayRouter.Start(WithSequenceStore(options), loggerFactory: loggers);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Dispose() => Interlocked.Exchange(ref _router, null)?.Dispose();

    /// <summary>
    /// Encrypted networks persist their ESP sequence reservations, so a restart never reuses a nonce:
    /// STATE_DIR/NAME/esp-sequence (directory mode 0700).
    /// </summary>
    private static RouterOptions WithSequenceStore(DaemonOptions options)
    {
        var config = options.Config;
        if (config.Router.Encryption is not { } enc) return config.Router;
        string dir = Path.Combine(config.EspStateDirectory, options.Name);
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var store = new FileSequenceStore(Path.Combine(dir, "esp-sequence"));
            return config.Router with { Encryption = enc with { Esp = enc.Esp with { SequenceStore = store } } };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or FormatException)
        {
            throw new RouterException(RouterErrorCode.SystemError,
                $"cannot use the ESP state directory {dir} (encryption.state_dir): {e.Message}");
        }
    }
}
