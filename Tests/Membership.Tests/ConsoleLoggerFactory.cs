using Microsoft.Extensions.Logging;

namespace UserOverlay.Membership.Tests;

/// <summary>Logs to the console when UO_TEST_LOG is set (debugging aid; silent otherwise).</summary>
public sealed class ConsoleLoggerFactory : ILoggerFactory, ILogger
{
    public static ILoggerFactory? FromEnvironment() =>
        Environment.GetEnvironmentVariable("UO_TEST_LOG") is { Length: > 0 } ? new ConsoleLoggerFactory() : null;

    public void AddProvider(ILoggerProvider provider) { }
    public ILogger CreateLogger(string categoryName) => this;
    public void Dispose() { }
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
}
