// What `fabdnsctl explain NAME [TYPE]` shows: how this node answers one name and type, which
// topology tier won, and whether the kernel serves it. The running fabdnsd builds the report
// from its live data (GET /explain on metrics.listen); with the daemon down, fabdnsctl builds
// it from the config's sources and the pinned maps. One builder, one renderer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "datapath_maps.hpp"
#include "engine/engine.hpp"

namespace fabdns::ctl {

struct ExplainSource {
    const Engine &engine;
    const Config::Node &node;
    std::string services;  // "12 from hub https://… (1 rejected; fabdnsd logs why)"
    // The kernel's answer table, or null with the reason it cannot be read.
    const maps::AnswerTable *kernel = nullptr;
    std::string kernel_missing;
    std::string explained_by;  // who built the report, from what
};

// The report as JSON (the body of GET /explain). qtype must be known (parse_type).
nlohmann::ordered_json explain_report(const ExplainSource &src, std::string_view qname,
                                      uint16_t qtype);

// The report as the operator reads it. Throws nlohmann::json::exception when a field is
// missing or of the wrong type (a report from another version).
std::string render_explain(const nlohmann::ordered_json &report);

}  // namespace fabdns::ctl
