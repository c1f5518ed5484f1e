// Ad hoc measurement, not a test: how long HubSource takes to fetch and decode a large hub answer
// (and, side by side, what a whole-document DOM parse would cost) (default 10,000 GlobalServices x
// 3 endpoints) from tests/standins/hub.py over mutual TLS on loopback. Build with
// CMAKE_BUILD_TYPE=Release; run `build/bench/fabdns_hub_fetch_bench [services] [endpoints]`. Prints
// medians of several runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/globalservice.hpp"
#include "source/http.hpp"
#include "source/hub_source.hpp"
#include "source/snapshot.hpp"
#include "support.hpp"

using namespace fabdns;
using namespace fabdns::testing;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// CPU time of this process in ms: steadier than wall time on a machine shared with builds.
double cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Sample {
    std::vector<double> wall, cpu;
    Clock::time_point t0;
    double c0 = 0;
    void begin() {
        t0 = Clock::now();
        c0 = cpu_ms();
    }
    void end() {
        wall.push_back(ms_since(t0));
        cpu.push_back(cpu_ms() - c0);
    }
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::string make_answer(int services, int endpoints) {
    nlohmann::json arr = nlohmann::json::array();
    for (int i = 0; i < services; ++i) {
        nlohmann::json eps = nlohmann::json::array();
        for (int e = 0; e < endpoints; ++e) {
            std::string cluster = "cluster" + std::to_string(e);
            eps.push_back({{"addresses",
                            {"10." + std::to_string(e) + "." + std::to_string(i / 250) + "." +
                             std::to_string(i % 250 + 1)}},
                           {"cluster", cluster},
                           {"zone", cluster},
                           {"region", e == 0 ? "north" : "south"}});
        }
        arr.push_back({{"apiVersion", "dns.fabedge.io/v1alpha1"},
                       {"kind", "GlobalService"},
                       {"metadata",
                        {{"name", "svc" + std::to_string(i)},
                         {"namespace", "ns" + std::to_string(i % 50)},
                         {"resourceVersion", std::to_string(1000 + i)}}},
                       {"spec",
                        {{"type", "ClusterIP"},
                         {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}}}},
                         {"endpoints", eps}}}});
    }
    return arr.dump();
}

}  // namespace

int main(int argc, char **argv) {
    int services = argc > 1 ? std::atoi(argv[1]) : 10000;
    int endpoints = argc > 2 ? std::atoi(argv[2]) : 3;
    constexpr int kRuns = 7;

    TempDir dir;
    Certs certs(dir.path());
    std::string body = make_answer(services, endpoints);
    write_file(dir / "data.json", body);
    std::printf("answer: %d services x %d endpoints, %.1f MiB\n", services, endpoints,
                static_cast<double>(body.size()) / (1 << 20));

    Child hub({python(), standin("hub.py"), "--data", dir / "data.json", "--cert",
               certs.file("server.crt"), "--key", certs.file("server.key"), "--client-ca",
               certs.file("ca.crt")});
    std::istringstream ready(hub.wait_for_line("READY", std::chrono::seconds(10)).substr(5));
    int port = 0;
    ready >> port;
    std::string url = "https://127.0.0.1:" + std::to_string(port);

    // 1. Fetch alone (one client, kept-alive connection as in the poll loop).
    source_detail::HttpClient http;
    source_detail::HttpRequest req;
    req.url = url + "/api/global-services";
    req.headers = {"X-FabEdge-Cluster: bench"};
    req.tls.ca_file = certs.file("ca.crt");
    req.tls.cert_file = certs.file("client.crt");
    req.tls.key_file = certs.file("client.key");
    req.timeout = std::chrono::seconds(60);
    Sample fetch, parse, decode, destroy, streaming, e2e, write, from_snapshot;
    std::string fetched;
    for (int i = 0; i < kRuns; ++i) {
        fetch.begin();
        auto resp = http.perform(req);
        fetch.end();
        if (!resp.transport_ok() || resp.status != 200) {
            std::fprintf(stderr, "fetch failed: %s\n", resp.error.c_str());
            return 1;
        }
        fetched = std::move(resp.body);
    }
    // 2. The whole-document way, for comparison: parse into a DOM, decode each object, free
    //    the DOM. 3. What the hub source runs: the streaming decoder and its answer rules.
    for (int i = 0; i < kRuns; ++i) {
        parse.begin();
        auto doc = nlohmann::json::parse(fetched);
        parse.end();
        decode.begin();
        size_t ok = 0;
        for (const auto &obj : doc) {
            std::string why;
            if (decode_globalservice(obj, why)) ++ok;
        }
        decode.end();
        if (ok != static_cast<size_t>(services)) {
            std::fprintf(stderr, "decoded %zu of %d\n", ok, services);
            return 1;
        }
        destroy.begin();
        doc = nlohmann::json();
        destroy.end();
        streaming.begin();
        auto d = source_detail::decide_hub_answer(fetched, {}, false, {}, "measure");
        streaming.end();
        if (d.next.services.size() != static_cast<size_t>(services)) {
            std::fprintf(stderr, "streaming decoded %zu of %d\n", d.next.services.size(), services);
            return 1;
        }
    }
    // 5. End to end: HubSource from start() to the first delivered set (new connection, TLS
    //    handshake, fetch, validation, parse, decode).
    auto options = [&](const std::string &hub_url, const std::string &snapshot) {
        return certs.hub_options(hub_url, "bench", snapshot, std::chrono::seconds(60));
    };
    for (int i = 0; i < kRuns; ++i) {
        Collector c;
        HubSource src(options(url, ""));
        e2e.begin();
        src.start(c.callback());
        if (!c.wait_for_count(1, std::chrono::seconds(60))) return 1;
        e2e.end();
    }
    // 6. The snapshot: atomic write (fsync included), and a restart with the hub down.
    std::string snap = dir / "snapshot.json";
    for (int i = 0; i < kRuns; ++i) {
        write.begin();
        if (!source_detail::write_file_atomically(snap, fetched).empty()) return 1;
        write.end();
        Collector c;
        HubSource src(options("https://127.0.0.1:1", snap));
        from_snapshot.begin();
        src.start(c.callback());
        if (!c.wait_for_count(1, std::chrono::seconds(60))) return 1;
        from_snapshot.end();
    }
    auto row = [](const char *what, const Sample &s) {
        std::printf("%-44s %8.1f %8.1f\n", what, median(s.wall), median(s.cpu));
    };
    std::printf("%-44s %8s %8s   (medians of %d runs)\n", "", "wall ms", "cpu ms", kRuns);
    row("fetch (mTLS, kept-alive connection)", fetch);
    row("parse (nlohmann::json::parse)", parse);
    row("decode (decode_globalservice x N)", decode);
    row("free the parsed document", destroy);
    row("streaming decode + set (decide_hub_answer)", streaming);
    row("HubSource start -> first set", e2e);
    row("snapshot write (temp+fsync+rename)", write);
    row("restart, hub down: snapshot -> set", from_snapshot);
    return 0;
}
