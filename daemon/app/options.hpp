// Config -> component options, shared by fabdnsd and fabdnsctl so both build the same engine.
#pragma once

#include "config/config.hpp"
#include "engine/engine.hpp"

namespace fabdns {

inline EngineOptions engine_options(const Config &c) {
    EngineOptions o;
    o.zones = c.dns.zones;
    o.ttl = c.dns.ttl;
    o.node = {c.node.cluster, c.node.zone, c.node.region};
    return o;
}

}  // namespace fabdns
