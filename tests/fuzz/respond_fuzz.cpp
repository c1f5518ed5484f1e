// libFuzzer target: respond() on arbitrary bytes, over UDP and TCP, against an engine holding
// a ClusterIP and a Headless service. Besides crashes it checks what every reply promises:
// the client's ID, QR set, a message ldns can parse, and the UDP size limit.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "resolver/ldns.hpp"
#include "resolver/respond.hpp"

namespace {

using namespace fabdns;

GlobalService service(const char *name, ServiceType type, int pods) {
    GlobalService s;
    s.name = name;
    s.ns = "default";
    s.type = type;
    for (int i = 0; i < pods; ++i) {
        Endpoint e;
        e.addresses = {IpAddr::v4(10, 2, 0, static_cast<uint8_t>(i + 1)),
                       *IpAddr::parse("fd00:2::" + std::to_string(i + 1))};
        if (type == ServiceType::Headless) e.hostname = "pod-" + std::to_string(i);
        e.cluster = i % 2 ? "beijing" : "shanghai";
        s.endpoints.push_back(e);
    }
    return s;
}

const Engine &engine() {
    static const auto e = [] {
        EngineOptions o;
        o.zones = {"global", "clusterset.local"};
        o.node = {"beijing", "beijing", "north"};
        auto engine = std::make_unique<Engine>(o);
        engine->set_services({service("nginx", ServiceType::ClusterIP, 2),
                              service("db", ServiceType::Headless, 60)});
        return engine;
    }();
    return *e;
}

void check(const Reply &r, std::span<const uint8_t> query, Transport t) {
    if (r.action != Reply::Action::Reply) return;
    const auto &b = r.bytes;
    if (b.size() < dns::kHeaderSize || b[0] != query[0] || b[1] != query[1] ||
        !(b[dns::kOffFlags1] & dns::kFlagQR))
        __builtin_trap();
    if (t == Transport::Udp && b.size() > dns::kEdnsPayload) __builtin_trap();
    if (t == Transport::Udp && !r.truncated && r.in_zone && b.size() > r.udp_limit)
        __builtin_trap();
    ldns_pkt *pkt = nullptr;
    if (ldns_wire2pkt(&pkt, b.data(), b.size()) != LDNS_STATUS_OK) __builtin_trap();
    ldns_pkt_free(pkt);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::span<const uint8_t> query(data, size);
    for (const Transport t : {Transport::Udp, Transport::Tcp}) {
        const Reply r = respond(engine(), query, t, RespondOptions{.forward = (size & 1) != 0});
        check(r, query, t);
    }
    return 0;
}
