// Shared by the decoder fuzzers: loads whatever decoded into an engine and queries the names
// the services define, so that odd but valid services cannot crash the engine either.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "model/globalservice.hpp"

namespace fabdns::fuzz {

inline void load_into_engine(std::vector<GlobalService> services) {
    if (services.empty()) return;
    EngineOptions o;
    o.node = {"beijing", "beijing", "north"};
    Engine engine(o);
    const GlobalService first = services.front();
    engine.set_services(std::move(services));
    const std::string name = first.name + "." + first.ns;
    for (const uint16_t type : {dnstype::A, dnstype::AAAA, dnstype::SOA}) {
        (void)engine.resolve(name + ".svc.global", type);
        (void)engine.resolve(name + ".global", type);
        if (!first.endpoints.empty()) {
            const Endpoint &e = first.endpoints.front();
            (void)engine.resolve(e.cluster + "." + name + ".svc.global", type);
            if (!e.hostname.empty())
                (void)engine.resolve(e.hostname + "." + e.cluster + "." + name + ".svc.global",
                                     type);
        }
    }
    engine.for_each_service_answer(
        [](std::string_view, std::string_view, uint16_t, const Answer &) {});
}

}  // namespace fabdns::fuzz
