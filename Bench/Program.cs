using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace UserOverlay.Bench;

/// <summary>
/// Micro-benchmarks of every hot-path piece. MemoryDiagnoser is always on: the data path must
/// show 0 B allocated per operation. Run: dotnet run -c Release --project Bench -- --filter '*'
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["e2e", ..]) return E2e.E2eHarness.Run(args[1..]);
        if (args is ["attach-scale", ..]) return E2e.AttachScaleHarness.Run(args[1..]);
        // In-process: BenchmarkDotNet's out-of-process toolchain looks for a project named after the assembly
        // (UserOverlay.Bench), while the layout keeps Bench/Bench.csproj; in-process runs need no project.
        var config = DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddJob(Job.Default.WithGcServer(true).WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance));
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
