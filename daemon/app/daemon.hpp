// fabdnsd's process: wires config, source, answer engine, map compiler, datapath, resolver
// and metrics together, refreshes the datapath's liveness stamp, and handles signals.
#pragma once

#include <string>

#include "config/config.hpp"
#include "datapath.hpp"

namespace fabdns {

// Runs until SIGTERM/SIGINT; SIGHUP reloads what can change without a restart. Returns the
// process exit status.
int run_daemon(const std::string &config_path, Config config);

}  // namespace fabdns
