// Benchmark of the map compiler into a real pinned answer map (root).
//
// A full compile + apply of 10,000 services x 3 endpoints into an empty map, and the latency of
// one changed service (from Engine::set_services to the kernel map holding the new value).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>

#include "compiler/compiler.hpp"
#include "datapath/loaded_datapath.hpp"
#include "services_gen.hpp"

namespace fabdns::bench {
namespace {

constexpr size_t kServices = 10000;
constexpr size_t kEndpoints = 3;
constexpr uint32_t kCapacity = 1u << 18;  // room for every answer (160,001): no ranking

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// 10k ClusterIP services, each with one IPv4 endpoint in three different clusters: per service
// the service and short names plus three cluster and three old-form names, one A answer each.
std::vector<GlobalService> make_services() {
    const auto &clusters = test::gen_clusters();
    std::vector<GlobalService> out;
    out.reserve(kServices);
    uint32_t n = 0;
    for (size_t i = 0; i < kServices; i++) {
        GlobalService s;
        s.name = "svc-" + std::to_string(i);
        s.ns = i % 2 ? "default" : "prod";
        for (size_t e = 0; e < kEndpoints; e++) {
            const auto &c = clusters[(i + e * 3) % clusters.size()];
            Endpoint ep;
            ep.cluster = c.name;
            ep.zone = c.zone;
            ep.region = c.region;
            ++n;
            ep.addresses.push_back(IpAddr::v4(10, static_cast<uint8_t>(n >> 16),
                                              static_cast<uint8_t>(n >> 8),
                                              static_cast<uint8_t>(n)));
            s.endpoints.push_back(std::move(ep));
        }
        out.push_back(std::move(s));
    }
    // Sorted by namespace/name, as every source delivers its set.
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
    });
    return out;
}

EngineOptions engine_options() {
    EngineOptions o;
    o.zones = {"global"};
    o.ttl = 5;
    o.node = test::gen_node();
    return o;
}

struct State {
    test::LoadedDatapath dp{"bench-compiler", kCapacity};
    std::vector<GlobalService> services = make_services();
};
std::unique_ptr<State> g_state;

void full(benchmark::State &state) {
    auto &table = g_state->dp.answers();
    CompileStats st;
    double set_ms = 0, sync_ms = 0;
    for (auto _ : state) {
        table.clear();
        auto copy = g_state->services;
        Engine engine(engine_options());
        MapCompiler compiler(table);
        const auto t0 = Clock::now();
        engine.set_services(std::move(copy));
        const auto t1 = Clock::now();
        st = compiler.sync(engine);
        const auto t2 = Clock::now();
        set_ms = ms_between(t0, t1);
        sync_ms = ms_between(t1, t2);
        state.SetIterationTime(ms_between(t0, t2) / 1e3);
    }
    state.counters["set_services_ms"] = set_ms;
    state.counters["compile_ms"] = st.compile_ms;
    state.counters["apply_ms"] = st.apply_ms;
    state.counters["sync_ms"] = sync_ms;
    state.counters["entries"] = static_cast<double>(st.entries);
    state.counters["over_capacity"] = static_cast<double>(st.over_capacity);
}

void one_change(benchmark::State &state) {
    auto &table = g_state->dp.answers();
    table.clear();
    Engine engine(engine_options());
    MapCompiler compiler(table);
    engine.set_services(g_state->services);
    compiler.sync(engine);

    // The service whose cluster-pinned name changes: its first endpoint's address alternates.
    const size_t which = kServices / 2;
    const GlobalService &svc = g_state->services[which];
    const std::string name =
        svc.endpoints[0].cluster + "." + svc.name + "." + svc.ns + ".svc.global";
    const auto key = maps::make_key(name, DNS_TYPE_A);
    CompileStats st;
    double set_ms = 0, sync_ms = 0;
    uint8_t flip = 0;
    for (auto _ : state) {
        auto copy = g_state->services;
        const IpAddr fresh = IpAddr::v4(10, 254, 0, ++flip);
        copy[which].endpoints[0].addresses[0] = fresh;
        const auto t0 = Clock::now();
        engine.set_services(std::move(copy));
        const auto t1 = Clock::now();
        st = compiler.sync(engine);
        const auto t_sync = Clock::now();
        // Visible in the kernel: read back through the map fd.
        auto v = table.lookup(key);
        const auto t2 = Clock::now();
        sync_ms = ms_between(t1, t_sync);
        if (!v || v->count != 1 || std::memcmp(v->rdata, fresh.bytes.data(), 4) != 0) {
            state.SkipWithError("the kernel map does not hold the new value");
            break;
        }
        set_ms = ms_between(t0, t1);
        state.SetIterationTime(ms_between(t0, t2) / 1e3);
    }
    state.counters["set_services_ms"] = set_ms;
    state.counters["compile_ms"] = st.compile_ms;
    state.counters["apply_ms"] = st.apply_ms;
    state.counters["sync_ms"] = sync_ms;  // all of MapCompiler::sync, frees included
    state.counters["written"] = static_cast<double>(st.added + st.updated + st.removed);
}

}  // namespace
}  // namespace fabdns::bench

int main(int argc, char **argv) {
    using namespace fabdns::bench;
    if (geteuid() != 0) {
        std::fprintf(stderr, "fabdns_bench_compiler: needs root (a real pinned map)\n");
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int status = 0;
    try {
        g_state = std::make_unique<State>();
        benchmark::RegisterBenchmark("compiler/full/services:10000x3", full)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->Iterations(3);
        benchmark::RegisterBenchmark("compiler/one-change/services:10000x3", one_change)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->Iterations(10);
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fabdns_bench_compiler: %s\n", e.what());
        status = 1;
    }
    g_state.reset();  // removes the pins
    benchmark::Shutdown();
    return status;
}
