// fabdnsd: the fabdns daemon (SPEC §1). Exit status 2 for a bad config, 1 for a start-up
// failure, 0 after a clean stop.
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "app/daemon.hpp"
#include "common/log.hpp"

int main(int argc, char **argv) {
    // From the first instruction: a SIGTERM while the datapath loads is a clean stop once the
    // daemon runs, not a kill half-way through pinning. The daemon waits for these itself.
    sigset_t stop;
    sigemptyset(&stop);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop, s);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    // A peer closing a TCP or metrics connection must not kill the process, and neither should
    // a stray USR1/USR2 (their default action is to terminate); fabdnsd gives them no meaning.
    for (int s : {SIGPIPE, SIGUSR1, SIGUSR2}) signal(s, SIG_IGN);
    // One malloc arena for every thread: a source thread decodes a set that the delivering
    // thread then indexes, and with an arena per thread the memory one frees cannot serve the
    // other, which raised the peak of a 100,000-service Kubernetes list by ~26 MiB
    // (docs/benchmarks.md). Each thread's tcache still keeps small allocations off the lock.
    // An explicit MALLOC_ARENA_MAX in the environment wins.
    if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 1);
    CLI::App app{
        "fabdnsd: answers DNS for FabEdge GlobalServices, in the kernel and in user space"};
    std::string config_path;
    bool check = false;
    std::string level = "info";
    app.add_option("-c,--config", config_path, "config file (YAML)")->required();
    app.add_flag("--check-config", check, "validate the config and exit");
    app.add_option("--log-level", level, "debug, info, warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    using fabdns::log::Level;
    fabdns::log::set_level(level == "debug"   ? Level::Debug
                           : level == "warn"  ? Level::Warn
                           : level == "error" ? Level::Error
                                              : Level::Info);
    fabdns::Config cfg;
    try {
        cfg = fabdns::load_config(config_path);
    } catch (const fabdns::ConfigError &e) {
        std::fprintf(stderr, "fabdnsd: config: %s\n", e.what());
        return 2;
    }
    if (check) {
        std::printf("%s: ok\n", config_path.c_str());
        return 0;
    }
    return fabdns::run_daemon(config_path, std::move(cfg));
}
