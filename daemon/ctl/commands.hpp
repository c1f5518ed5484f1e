// fabdnsctl's commands (SPEC §1): each reads the pinned datapath (and, where it needs one, the
// config), writes operator output to `out` and returns the exit status. Problems an operator
// must fix are thrown as Failure: one line for stderr and the status to exit with.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include "config/config.hpp"
#include "datapath.hpp"

namespace fabdns::ctl {

// Exit statuses: 1 for an operational failure, 2 for a bad config or bad usage (as fabdnsd).
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

class Failure : public std::runtime_error {
  public:
    explicit Failure(const std::string &message, int status = kExitFailure)
        : std::runtime_error(message), status_(status) {}
    int status() const { return status_; }

  private:
    int status_;
};

struct GlobalOptions {
    std::string config_path;             // "" when --config was not given
    std::string pin_path;                // "" when --pin-path was not given
    std::optional<std::string> metrics;  // --metrics: ADDR:PORT, a URL, or "" for none
};

// What every command works from, resolved from the global options.
struct Context {
    std::optional<Config> config;
    std::string config_path;
    std::string pin_path;                    // --pin-path, else datapath.pin_path, else the default
    std::optional<std::string> metrics_url;  // nullopt: the daemon's metrics are not scraped
    std::string metrics_off_reason;          // why metrics_url is nullopt
};

// Loads the config when given. Throws Failure (status 2) with the ConfigError line.
Context make_context(const GlobalOptions &options);

int cmd_stats(const Context &ctx, bool json, std::ostream &out);
int cmd_dump(const Context &ctx, bool json, std::ostream &out);
int cmd_status(const Context &ctx, bool json, std::ostream &out);
int cmd_explain(const Context &ctx, const std::string &name, const std::string &type,
                std::ostream &out);
// mode: "" takes the mode datapath.attach gives this interface in the config.
int cmd_attach(const Context &ctx, const std::string &iface, const std::string &mode,
               std::ostream &out, std::ostream &err);
// iface "" with all = true removes every pin (links first, then maps).
int cmd_detach(const Context &ctx, const std::string &iface, bool all, std::ostream &out);

}  // namespace fabdns::ctl
