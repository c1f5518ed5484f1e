// fabdnsctl: the operator tool (SPEC §1). Reads the pinned datapath even while fabdnsd is down.
// Exit status: 0 done, 1 an operational failure (one line on stderr), 2 bad usage or config.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "common/log.hpp"
#include "ctl/commands.hpp"

int main(int argc, char **argv) {
    using namespace fabdns::ctl;
    CLI::App app{"fabdnsctl: inspect and control fabdns's in-kernel DNS datapath"};
    app.require_subcommand(1);
    app.fallthrough();  // global options may also follow the command
    GlobalOptions g;
    std::string metrics;
    bool verbose = false;
    app.add_option("-c,--config", g.config_path,
                   "fabdnsd's config file (pin path, metrics address, "
                   "source and node for explain)");
    app.add_option("-p,--pin-path", g.pin_path,
                   "BPF pin directory (default: the config's datapath.pin_path, else "
                   "/sys/fs/bpf/fabdns)");
    auto *metrics_opt = app.add_option(
        "--metrics", metrics,
        "fabdnsd's metrics address or URL for stats (default: the config's metrics.listen, "
        "else 127.0.0.1:9153; \"\" to skip)");
    app.add_flag("-v,--verbose", verbose, "log the loader's and source's messages");

    bool json = false;
    auto *stats =
        app.add_subcommand("stats", "kernel counters, map fill, liveness, daemon counters");
    stats->add_flag("--json", json, "one JSON object");
    auto *dump = app.add_subcommand("dump", "the in-kernel answer table");
    dump->add_flag("--json", json, "one JSON object");
    auto *status = app.add_subcommand("status", "pins, attachments, listen addresses, liveness");
    status->add_flag("--json", json, "one JSON object");

    std::string name, type = "A";
    auto *explain =
        app.add_subcommand("explain", "what this node answers for NAME and why (needs --config)");
    explain->add_option("NAME", name, "query name")->required();
    explain->add_option("TYPE", type, "query type (default A)");

    std::string iface, mode;
    auto *attach = app.add_subcommand("attach", "load the datapath and attach it to IFACE");
    attach->add_option("IFACE", iface, "interface")->required();
    attach->add_option("-m,--mode", mode,
                       "xdp, xdp-generic or tc (default: the config's mode for IFACE)");

    bool all = false;
    auto *detach = app.add_subcommand("detach", "detach from IFACE, or remove every pin (--all)");
    auto *detach_iface = detach->add_option("IFACE", iface, "interface");
    auto *detach_all =
        detach->add_flag("--all", all, "detach everywhere and remove every fabdns pin");
    detach_iface->excludes(detach_all);

    try {
        app.parse(argc, argv);
        if (detach->parsed() && iface.empty() && !all)
            throw CLI::ValidationError("detach", "give IFACE or --all");
    } catch (const CLI::ParseError &e) {
        return app.exit(e) == 0 ? 0 : kExitUsage;
    }
    if (metrics_opt->count() > 0) g.metrics = metrics;
    fabdns::log::set_level(verbose ? fabdns::log::Level::Info : fabdns::log::Level::Error);

    try {
        Context ctx = make_context(g);
        if (stats->parsed()) return cmd_stats(ctx, json, std::cout);
        if (dump->parsed()) return cmd_dump(ctx, json, std::cout);
        if (status->parsed()) return cmd_status(ctx, json, std::cout);
        if (explain->parsed()) return cmd_explain(ctx, name, type, std::cout);
        if (attach->parsed()) return cmd_attach(ctx, iface, mode, std::cout, std::cerr);
        if (detach->parsed()) return cmd_detach(ctx, iface, all, std::cout);
    } catch (const Failure &e) {
        std::cout.flush();
        std::fprintf(stderr, "fabdnsctl: %s\n", e.what());
        return e.status();
    } catch (const std::exception &e) {
        std::cout.flush();
        std::fprintf(stderr, "fabdnsctl: %s\n", e.what());
        return kExitFailure;
    }
    return kExitUsage;
}
