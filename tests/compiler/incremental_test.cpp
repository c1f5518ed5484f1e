// Incremental updates against from-scratch builds: a random sequence of changed, added and
// removed services (with the name clashes engine.hpp describes) applied to one engine and one
// map compiler, compared after every step with an engine and a map built from nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "answers.hpp"
#include "compiler/compiler.hpp"
#include "engine/index.hpp"
#include "engine/support.hpp"

namespace fabdns {
namespace {

using test::FakeTable;

// Few labels, so that services, namespaces and clusters spell each other's names: a cluster
// named "svc" (old form = service form), a namespace "svc" (short form = empty non-terminal),
// "Web" and "web" (one name, two services), a namespace that is also a nested zone's label.
const char *const kNames[] = {"web", "Web", "db", "svc", "a", "prod"};
const char *const kNamespaces[] = {"default", "svc", "prod", "a"};
const char *const kClusters[] = {"beijing", "shanghai", "svc", "a", "prod"};
const char *const kHosts[] = {"h0", "h1", "svc"};

class Generator {
  public:
    explicit Generator(uint32_t seed) : rng_(seed) {}

    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

    GlobalService service(std::string ns, std::string name) {
        GlobalService s;
        s.ns = std::move(ns);
        s.name = std::move(name);
        s.type = pick(3) == 0 ? ServiceType::Headless : ServiceType::ClusterIP;
        s.resource_version = std::to_string(pick(1000));
        const size_t endpoints = pick(4);
        for (size_t e = 0; e < endpoints; e++) {
            Endpoint ep;
            ep.cluster = kClusters[pick(std::size(kClusters))];
            ep.zone = pick(2) ? "bj" : "sh";
            ep.region = pick(2) ? "north" : "east";
            if (s.type == ServiceType::Headless && pick(4) != 0)
                ep.hostname = kHosts[pick(std::size(kHosts))];
            const size_t addresses = pick(3);
            for (size_t a = 0; a < addresses; a++) {
                if (pick(4) == 0) {
                    ep.addresses.push_back(*IpAddr::parse("fd00::" + std::to_string(pick(6) + 1)));
                } else {
                    ep.addresses.push_back(IpAddr::v4(10, 0, static_cast<uint8_t>(pick(3)),
                                                      static_cast<uint8_t>(pick(6) + 1)));
                }
            }
            s.endpoints.push_back(std::move(ep));
        }
        return s;
    }

    GlobalService any_service() {
        return service(kNamespaces[pick(std::size(kNamespaces))], kNames[pick(std::size(kNames))]);
    }

    std::mt19937 &rng() { return rng_; }

  private:
    std::mt19937 rng_;
};

using Key = std::tuple<std::string, std::string>;  // namespace, name
using Set = std::map<Key, GlobalService>;

std::vector<GlobalService> as_vector(const Set &set) {
    std::vector<GlobalService> out;
    for (const auto &[k, s] : set) out.push_back(s);
    return out;
}

using Answers = std::map<std::pair<std::string, uint16_t>, std::pair<std::string, Answer>>;
Answers answers_of(const Engine &e) {
    Answers out;
    e.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &a) {
            out[{std::string(name), qtype}] = {std::string(form), a};
        });
    return out;
}

// Every name either engine enumerates and every suffix of one (apexes, empty non-terminals).
std::set<std::string> probes(const Answers &a, const Answers &b) {
    std::set<std::string> out;
    for (const Answers *x : {&a, &b})
        for (const auto &[k, v] : *x)
            for (std::string_view n = k.first;;) {
                out.emplace(n);
                const size_t dot = n.find('.');
                if (dot == std::string_view::npos) break;
                n.remove_prefix(dot + 1);
            }
    return out;
}

std::string name_of(const fabdns_answer &v) {
    return std::string(maps::dotted_name(v));
}

// Every entry of `part` is in `whole`, equal but for the kernel's hit counter; `absent` names
// what an entry missing from `whole` is.
void expect_each_in(const FakeTable &part, const FakeTable &whole, const char *absent,
                    const std::string &what) {
    for (const auto &[k, v] : part.entries) {
        auto it = whole.entries.find(k);
        if (it == whole.entries.end()) {
            ADD_FAILURE() << what << ": " << absent << " " << name_of(v) << " type " << k.qtype;
            continue;
        }
        fabdns_answer x = it->second, y = v;
        x.hits = y.hits = 0;
        EXPECT_EQ(std::memcmp(&x, &y, sizeof(x)), 0) << what << ": differs " << name_of(v);
    }
}

// `got`, a map too small for the set, holds only current entries: each is `want`'s, the whole set.
void expect_current_part(const FakeTable &got, const FakeTable &want, size_t capacity,
                         const std::string &what) {
    EXPECT_LE(got.entries.size(), capacity) << what;
    expect_each_in(got, want, "stale", what);
}

void expect_same_tables(const FakeTable &got, const FakeTable &want, const std::string &what) {
    EXPECT_EQ(got.entries.size(), want.entries.size()) << what;
    expect_each_in(want, got, "missing", what);
    for (const auto &[k, v] : got.entries)
        if (!want.entries.count(k)) ADD_FAILURE() << what << ": extra " << name_of(v);
}

// One random run: `steps` updates of one to three services each (sometimes none, twelve, or
// all removed), every one checked against a from-scratch engine and map. `shared`: each set is
// handed over as a source builds it, every unchanged service the same object as in the set
// before (the engine skips those by pointer); else as new values, often out of order. The
// updated engine keeps only `hash_bits` of each name's hash (the from-scratch ones keep all).
void run(uint32_t seed, size_t steps, const std::vector<std::string> &zones, bool shared = false,
         uint64_t hash_bits = ~uint64_t{0}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Generator g(seed);
    const EngineOptions opts = testing::options({"beijing", "bj", "north"}, zones, 5);
    engine_detail::name_hash_mask = hash_bits;
    Engine live(opts);
    engine_detail::name_hash_mask = ~uint64_t{0};
    FakeTable table(1u << 16), small(40);
    MapCompiler compiler(table), small_compiler(small);
    Set set;
    std::map<Key, ServicePtr> held;  // shared: the objects of the set handed over last
    size_t incremental_updates = 0;

    for (size_t step = 0; step < steps; step++) {
        const std::string what = "step " + std::to_string(step);
        const size_t kind = g.pick(20);
        if (kind == 2) set.clear();  // no NODATA left: the zone entries go too
        const size_t ops = kind == 0 ? 0 : kind == 1 ? 12 : 1 + g.pick(3);
        for (size_t op = 0; op < ops; op++) {
            if (!set.empty() && g.pick(4) == 0) {
                auto it = set.begin();
                std::advance(it, static_cast<long>(g.pick(set.size())));
                if (g.pick(2)) {
                    set.erase(it);
                } else {
                    it->second.resource_version += "x";  // a change that answers the same
                }
                continue;
            }
            GlobalService s = g.any_service();
            set[{s.ns, s.name}] = std::move(s);
        }
        if (shared) {
            ServiceList list;
            std::map<Key, ServicePtr> next;
            for (const auto &[k, s] : set) {
                auto it = held.find(k);
                list.push_back(it != held.end() && *it->second == s
                                   ? it->second
                                   : std::make_shared<const GlobalService>(s));
                next[k] = list.back();
            }
            held = std::move(next);
            live.set_service_set(std::make_shared<const ServiceList>(std::move(list)));
        } else {
            std::vector<GlobalService> services = as_vector(set);
            // Sometimes out of order, with a stale duplicate first: the last one given wins.
            if (g.pick(5) == 0 && !services.empty()) {
                GlobalService stale = services.front();
                stale.endpoints.clear();
                std::shuffle(services.begin(), services.end(), g.rng());
                services.insert(services.begin(), stale);
            }
            live.set_services(services);
        }
        if (live.for_each_changed_answer(
                live.generation() - 1, [](auto, auto, auto, const auto &) {}, [](auto) {}))
            incremental_updates++;

        Engine fresh(opts);
        fresh.set_services(as_vector(set));
        ASSERT_EQ(live.serial(), fresh.serial()) << what;
        ASSERT_EQ(live.service_count(), fresh.service_count()) << what;
        const Answers a = answers_of(live), b = answers_of(fresh);
        EXPECT_EQ(a.size(), b.size()) << what;
        for (const auto &[k, v] : b) {
            auto it = a.find(k);
            if (it == a.end()) {
                ADD_FAILURE() << what << ": missing " << k.first;
                continue;
            }
            EXPECT_EQ(it->second, v) << what << ": " << k.first << " type " << k.second;
        }
        for (const std::string &name : probes(a, b))
            for (uint16_t qtype : {dnstype::A, dnstype::AAAA, dnstype::SOA}) {
                EXPECT_EQ(live.resolve(name, qtype), fresh.resolve(name, qtype))
                    << what << ": " << name << " type " << qtype;
                const Explanation x = live.explain(name, qtype), y = fresh.explain(name, qtype);
                EXPECT_EQ(x.form, y.form) << what << ": " << name;
                EXPECT_EQ(x.service, y.service) << what << ": " << name;
                EXPECT_EQ(x.endpoints, y.endpoints) << what << ": " << name;
            }

        // Now and then two updates reach the map in one sync.
        if (g.pick(8) == 0) continue;
        compiler.sync(live);
        small_compiler.sync(live);
        FakeTable want(1u << 16), want_small(40);
        MapCompiler(want).sync(fresh);
        MapCompiler(want_small).sync(fresh);
        expect_same_tables(table, want, what);
        // Over capacity an update keeps the names the small map holds current...
        expect_current_part(small, want, 40, what + " (small map)");
        // ...and ranked again it is what a first sync of the same data makes.
        small_compiler.resync(live);
        expect_same_tables(small, want_small, what + " (small map, ranked again)");
        if (::testing::Test::HasFailure()) return;
    }
    // The point of the exercise: most updates were applied as changes, not rebuilt.
    EXPECT_GT(incremental_updates, steps / 2);
}

TEST(Incremental, UpdatesEqualFromScratchBuilds) {
    for (uint32_t seed = 1; seed <= 4; seed++) run(seed, 120, {"global"});
}

TEST(Incremental, SharedSetsEqualFromScratchBuilds) {
    for (uint32_t seed = 21; seed <= 24; seed++) run(seed, 120, {"global"}, true);
}

TEST(Incremental, UpdatesEqualFromScratchBuildsWithNestedZones) {
    for (uint32_t seed = 11; seed <= 13; seed++) run(seed, 120, {"global", "prod.global"});
}

// Names that share a shard and a table tag (here a quarter of all names each, so that probes
// run long and wrap around the table's end) are told apart by their spelling, and removing one
// moves back the right ones.
TEST(Incremental, UpdatesEqualFromScratchBuildsWhenNameHashesCollide) {
    for (uint32_t seed = 21; seed <= 22; seed++)
        run(seed, 120, {"global", "prod.global"}, false, 3);
}

}  // namespace
}  // namespace fabdns
