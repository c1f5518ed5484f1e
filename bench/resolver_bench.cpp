// Ad hoc measurement tool (not a test): respond() throughput on one thread, or a Resolver on
// loopback to point dnsperf at.
//   fabdns_resolver_bench respond [SECONDS]        in-zone A query through respond()
//   fabdns_resolver_bench serve PORT SECONDS [WORKERS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "resolver/resolver.hpp"
#include "resolver/respond.hpp"
#include "support.hpp"

using namespace fabdns;

namespace {

int bench_respond(double seconds) {
    const auto engine = test::sample_engine();
    const auto query = test::make_query("nginx.default.svc.global.", dnstype::A);
    uint64_t n = 0, bytes = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < 1000; ++i) {
            const Reply r = respond(*engine, query, Transport::Udp);
            bytes += r.bytes.size();
        }
        n += 1000;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("respond(): %llu queries in %.2f s = %.0f queries/s (%.0f ns each, %llu bytes)\n",
                static_cast<unsigned long long>(n), s, n / s, s * 1e9 / n,
                static_cast<unsigned long long>(bytes / n));
    return 0;
}

int serve(uint16_t port, int seconds, unsigned workers) {
    const auto engine = test::sample_engine();
    ResolverOptions o;
    o.listen = {test::loopback(port)};
    o.workers = workers;
    Resolver r(*engine, std::move(o));
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const auto &c = r.counters();
    std::printf("udp queries %llu, tcp queries %llu, dropped %llu\n",
                static_cast<unsigned long long>(c.query_count(Transport::Udp)),
                static_cast<unsigned long long>(c.query_count(Transport::Tcp)),
                static_cast<unsigned long long>(c.dropped.load()));
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "respond") return bench_respond(argc > 2 ? std::atof(argv[2]) : 3.0);
    if (mode == "serve" && argc >= 4) {
        return serve(static_cast<uint16_t>(std::atoi(argv[2])), std::atoi(argv[3]),
                     argc > 4 ? static_cast<unsigned>(std::atoi(argv[4])) : 0);
    }
    std::fprintf(stderr, "usage: %s respond [SECONDS] | serve PORT SECONDS [WORKERS]\n", argv[0]);
    return 2;
}
