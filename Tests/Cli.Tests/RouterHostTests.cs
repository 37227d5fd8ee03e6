using UserOverlay.Cli.Client;
using UserOverlay.Router;

namespace UserOverlay.Cli.Tests;

/// <summary>Which router a client command talks to: -H, else $USEROVERLAY_HOST, else the one live router (sockets in a temporary directory).</summary>
public class RouterHostTests
{
    [Fact]
    public void A_name_is_a_socket_in_the_directory_and_a_value_with_a_slash_is_a_socket_path()
    {
        using var r = new FakeRouter("h1");
        Assert.Equal(r.SocketPath, RouterHost.Resolve("h1", null, r.Directory));
        Assert.Equal(r.SocketPath, RouterHost.Resolve(r.SocketPath, null, "/nonexistent"));
    }

    [Fact]
    public void The_environment_is_used_without_H_and_H_wins_over_it()
    {
        using var h1 = new FakeRouter("h1");
        using var h2 = new FakeRouter("h2", h1.Directory);
        Assert.Equal(h2.SocketPath, RouterHost.Resolve(null, "h2", h1.Directory));
        Assert.Equal(h2.SocketPath, RouterHost.Resolve(null, h2.SocketPath, h1.Directory));
        Assert.Equal(h1.SocketPath, RouterHost.Resolve("h1", "h2", h1.Directory));
        Assert.Equal(h1.SocketPath, RouterHost.Resolve("h1", "", h1.Directory));
    }

    [Fact]
    public void Without_either_the_one_live_router_is_chosen_and_a_killed_routers_stale_socket_does_not_count()
    {
        using var live = new FakeRouter("live");
        using var stale = new FakeRouter("stale", live.Directory, listen: false);
        Assert.True(File.Exists(stale.SocketPath));
        Assert.Equal(live.SocketPath, RouterHost.Resolve(null, null, live.Directory));
    }

    [Fact]
    public void Several_live_routers_are_an_error_that_lists_them_and_says_how_to_choose()
    {
        using var a = new FakeRouter("alpha");
        using var b = new FakeRouter("beta", a.Directory);
        var e = Assert.Throws<RouterException>(() => RouterHost.Resolve(null, null, a.Directory));
        Assert.Contains("several routers are running (alpha, beta)", e.Message);
        Assert.Contains("-H NAME or USEROVERLAY_HOST", e.Message);
    }

    [Fact]
    public void No_router_unknown_names_and_missing_paths_are_errors_that_say_what_is_missing()
    {
        using var stale = new FakeRouter("stale", listen: false);
        Assert.Contains("no router is running", Assert.Throws<RouterException>(() => RouterHost.Resolve(null, null, stale.Directory)).Message);
        Assert.Contains("no router is running", Assert.Throws<RouterException>(() => RouterHost.Resolve(null, null, Path.Combine(stale.Directory, "absent"))).Message);
        Assert.Contains($"no router named 'h9' is running (no control socket {stale.Directory}/h9.sock)",
            Assert.Throws<RouterException>(() => RouterHost.Resolve("h9", null, stale.Directory)).Message);
        Assert.Contains("given by USEROVERLAY_HOST", Assert.Throws<RouterException>(() => RouterHost.Resolve(null, "/nonexistent/x.sock", stale.Directory)).Message);
        Assert.Contains("USEROVERLAY_HOST: 'a b' is neither", Assert.Throws<UsageException>(() => RouterHost.Resolve(null, "a b", stale.Directory)).Message);
    }
}
