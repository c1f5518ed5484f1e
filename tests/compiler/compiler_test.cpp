// MapCompiler and kernel_answers() tests against an in-memory answer table (no root, no BPF).
//
// What goes into the kernel map and what stays in user space, diff-apply, adoption of an
// existing map, and ranking when the map is too small.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <system_error>

#include "answers.hpp"
#include "compiler/compiler.hpp"
#include "engine/support.hpp"
#include "engine/wire.hpp"
#include "resolver/wire.hpp"
#include "services_gen.hpp"

namespace fabdns {
namespace {

using testing::endpoint;
using testing::service;

using test::FakeTable;
using test::KeyLess;

std::string name_of(const fabdns_answer &v) {
    return std::string(maps::dotted_name(v));
}

// Everything but the kernel's hit counter, as the compiler compares values.
bool same_value(const fabdns_answer &a, const fabdns_answer &b) {
    return std::memcmp(a.name, b.name, sizeof(a.name)) == 0 && a.ttl == b.ttl &&
           a.count == b.count && a.kind == b.kind && a.soa_len == b.soa_len &&
           a.zone_len == b.zone_len && std::memcmp(a.rdata, b.rdata, sizeof(a.rdata)) == 0;
}

using KeySet = std::set<fabdns_answer_key, KeyLess>;
bool same_keys(const KeySet &a, const KeySet &b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](const auto &x, const auto &y) {
               return std::memcmp(&x, &y, sizeof(x)) == 0;
           });
}

using Desired = std::map<fabdns_answer_key, fabdns_answer, KeyLess>;
Desired desired_of(const Engine &e) {
    Desired d;
    for (const auto &a : kernel_answers(e))
        d[maps::make_key(a.name, a.qtype)] = maps::make_value(a);
    return d;
}

// The table holds exactly `want` (values compared without hits).
void expect_table_is(const FakeTable &t, const Desired &want) {
    EXPECT_EQ(t.entries.size(), want.size());
    for (const auto &[k, v] : want) {
        auto it = t.entries.find(k);
        if (it == t.entries.end()) {
            ADD_FAILURE() << "missing from the map: " << name_of(v) << " type " << k.qtype;
            continue;
        }
        EXPECT_TRUE(same_value(it->second, v)) << "stale value for " << name_of(v);
    }
    for (const auto &[k, v] : t.entries)
        if (!want.count(k)) ADD_FAILURE() << "not desired but in the map: " << name_of(v);
}

// A zone of 199 characters: with it, a 41-character service name makes a service-form name of
// exactly 253 characters (the longest the kernel holds) and cluster/old forms that are longer.
std::string long_zone() {
    std::string z;
    for (int i = 0; i < 4; i++) z += (i ? "." : "") + std::string(49, static_cast<char>('p' + i));
    return z;
}

EngineOptions small_options() {
    EngineOptions o = testing::options({"beijing", "bj", "north"}, {"global", long_zone()}, 5);
    return o;
}

std::vector<GlobalService> small_services() {
    std::vector<GlobalService> s;
    s.push_back(service("web", "default",
                        {endpoint("beijing", "bj", "north", {"10.0.0.1", "fd00::1"}),
                         endpoint("shanghai", "sh", "east", {"10.0.1.1"})}));
    s.push_back(service("db", "default",
                        {endpoint("beijing", "bj", "north", {"10.0.2.1"}, "db-0"),
                         endpoint("beijing", "bj", "north", {"10.0.2.2"}, "db-1")},
                        ServiceType::Headless));
    std::vector<Endpoint> nine;
    for (int i = 1; i <= 9; i++)
        nine.push_back(
            endpoint("beijing", "bj", "north", {("10.0.3." + std::to_string(i)).c_str()}));
    nine.push_back(endpoint("shanghai", "sh", "east", {"fd00:3::1"}));
    s.push_back(service("big", "default", std::move(nine)));
    s.push_back(service(std::string(41, 'w'), "default",
                        {endpoint("beijing", "bj", "north", {"10.0.4.1"})}));
    return s;
}

TEST(KernelAnswers, AgreeWithResolveForEveryEntry) {
    Engine engine(test::gen_engine_options());
    engine.set_services(test::generate_services({.seed = 5, .services = 400}));
    size_t unfit = 0;
    auto answers = kernel_answers(engine, &unfit);
    ASSERT_FALSE(answers.empty());
    EXPECT_GT(unfit, 0u) << "the generated set has answers of more than 8 records";
    for (size_t i = 1; i < answers.size(); i++) {
        const auto &p = answers[i - 1], &c = answers[i];
        EXPECT_TRUE(p.name < c.name || (p.name == c.name && p.qtype < c.qtype))
            << "not sorted or duplicated at " << c.name;
    }
    size_t nodata = 0, zones = 0;
    for (const auto &k : answers) {
        SCOPED_TRACE(k.name + " type " + std::to_string(k.qtype));
        EXPECT_TRUE(maps::fits_kernel(k));
        // The map value round-trips to the same entry.
        EXPECT_EQ(maps::from_map(maps::make_key(k.name, k.qtype), maps::make_value(k)), k);
        if (k.kind == FABDNS_ANSWER_ZONE) {
            // The zone's SOA serial and timers, as the engine's apex SOA has them.
            zones++;
            const Answer soa = engine.resolve(k.name, dnstype::SOA);
            ASSERT_EQ(soa.answer.size(), 1u);
            const auto &rd = soa.answer[0].rdata;
            EXPECT_EQ(k.soa, std::vector<uint8_t>(rd.end() - FABDNS_SOA_TAIL_LEN, rd.end()));
            continue;
        }
        EXPECT_NE(engine.explain(k.name, k.qtype).form, "pod");
        const Answer a = engine.resolve(k.name, k.qtype);
        if (k.kind == FABDNS_ANSWER_NODATA) {
            nodata++;
            EXPECT_EQ(a.rcode, Rcode::NoError);
            EXPECT_TRUE(a.answer.empty());
            ASSERT_EQ(a.authority.size(), 1u);
            EXPECT_EQ(a.authority[0].owner, k.zone);
            EXPECT_EQ(a.authority[0].ttl, k.ttl);
            continue;
        }
        ASSERT_TRUE(a.in_zone);
        EXPECT_TRUE(a.authoritative);
        EXPECT_EQ(a.rcode, Rcode::NoError);
        EXPECT_TRUE(a.authority.empty());
        ASSERT_EQ(a.answer.size(), k.addrs.size());
        const size_t len = k.qtype == dnstype::A ? 4 : 16;
        for (size_t i = 0; i < a.answer.size(); i++) {
            const Record &r = a.answer[i];
            EXPECT_EQ(r.owner, k.name);
            EXPECT_EQ(r.type, k.qtype);
            EXPECT_EQ(r.ttl, k.ttl);
            EXPECT_EQ(r.rdata, std::vector<uint8_t>(k.addrs[i].begin(), k.addrs[i].begin() + len));
        }
    }
    EXPECT_GT(nodata, 0u) << "single-family names have their other family's NODATA";
    EXPECT_EQ(zones, engine.options().zones.size());
}

// A NODATA entry's SOA head is what the kernel copies after the question: it must be the
// bytes the resolver's reply holds there, for every name (the question's case does not matter:
// compression compares without it). Zone "dns" has an SOA MNAME (ns.dns.dns) that repeats a
// label; the long zone has names near the pointer rules' edges.
TEST(KernelAnswers, NodataSoaHeadsEqualTheResolversReply) {
    Engine engine(testing::options({"beijing", "bj", "north"}, {"global", "dns", long_zone()}, 5));
    engine.set_services(small_services());
    size_t nodata = 0;
    for (const auto &k : kernel_answers(engine, nullptr)) {
        if (k.kind != FABDNS_ANSWER_NODATA) continue;
        SCOPED_TRACE(k.name + " type " + std::to_string(k.qtype));
        nodata++;
        std::vector<uint8_t> qname;
        engine_detail::append_name(qname, k.name);
        dns::ParsedQuery q;
        q.status = dns::ParsedQuery::Status::Ok;
        q.question = dns::Question{qname, k.qtype, DNS_CLASS_IN};
        const Answer a = engine.resolve(k.name, k.qtype);
        const auto reply =
            dns::build_reply(q, {.aa = true, .answer = &a.answer, .authority = &a.authority});
        const size_t at = DNS_HDR_LEN + qname.size() + DNS_QUESTION_FIXED_LEN;
        ASSERT_GE(reply.bytes.size(), at + k.soa.size());
        EXPECT_EQ(k.soa, std::vector<uint8_t>(
                             reply.bytes.begin() + static_cast<std::ptrdiff_t>(at),
                             reply.bytes.begin() + static_cast<std::ptrdiff_t>(at + k.soa.size())));
        // The rest of the record is the serial and timers, which the zone entry holds.
        EXPECT_EQ(reply.bytes.size(), at + k.soa.size() + FABDNS_SOA_TAIL_LEN);
    }
    EXPECT_GT(nodata, 3u);
}

TEST(KernelAnswers, LeaveOutPodNamesLongAnswersAndNamesThatDoNotFit) {
    Engine engine(small_options());
    engine.set_services(small_services());
    size_t unfit = 0;
    auto answers = kernel_answers(engine, &unfit);
    std::set<std::pair<std::string, uint16_t>> got;
    for (const auto &a : answers) got.emplace(a.name, a.qtype);

    // Rule by rule, over every answer of a service name the engine has (pods included).
    size_t want_unfit = 0, pods = 0;
    engine.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &a) {
            const std::string n(name);
            const bool pod = form == "pod";
            const bool fits = n.size() <= FABDNS_NAME_MAX && a.answer.size() <= FABDNS_MAX_RECORDS;
            if (pod) pods++;
            if (!pod && !fits) want_unfit++;
            EXPECT_EQ(got.count({n, qtype}) > 0, !pod && fits) << n << " type " << qtype;
        });
    EXPECT_EQ(unfit, want_unfit);
    EXPECT_GT(pods, 0u);

    const std::string z = long_zone(), w(41, 'w');
    auto has = [&](const std::string &n, uint16_t t) { return got.count({n, t}) > 0; };
    EXPECT_TRUE(has("web.default.svc.global", dnstype::A));
    EXPECT_TRUE(has("web.default.svc.global", dnstype::AAAA));
    EXPECT_TRUE(has("shanghai.web.default.svc.global", dnstype::A));
    EXPECT_TRUE(has("shanghai.web.default.svc.global", dnstype::AAAA)) << "NODATA is held";
    EXPECT_TRUE(has("global", DNS_TYPE_SOA)) << "the zone entry NODATA refers to";
    EXPECT_TRUE(has("db.default.svc.global", dnstype::A)) << "a Headless service's own name";
    EXPECT_FALSE(has("db-0.beijing.db.default.svc.global", dnstype::A)) << "pod names stay out";
    EXPECT_FALSE(has("big.default.svc.global", dnstype::A)) << "9 records";
    EXPECT_TRUE(has("big.default.svc.global", dnstype::AAAA)) << "1 record (all tier)";
    EXPECT_FALSE(has("beijing.big.default.svc.global", dnstype::A)) << "9 records";
    const std::string longest = w + ".default.svc." + z;
    ASSERT_EQ(longest.size(), size_t{FABDNS_NAME_MAX});
    EXPECT_TRUE(has(longest, dnstype::A)) << "253 characters fit";
    EXPECT_FALSE(has("beijing." + longest, dnstype::A)) << "261 characters do not";
    EXPECT_FALSE(has(w + ".default.beijing." + z, dnstype::A)) << "257 characters do not";
}

// fabdnsctl explain's kernel_choice() is the compiler's filter for one name: over every
// service answer (pods included) and some names of no service, it holds exactly what
// kernel_answers() holds, and otherwise gives a reason.
TEST(KernelAnswers, KernelChoiceAgreesForEveryName) {
    Engine engine(small_options());
    engine.set_services(small_services());
    std::map<std::pair<std::string, uint16_t>, maps::KernelAnswer> held;
    for (auto &a : kernel_answers(engine)) held.emplace(std::pair{a.name, a.qtype}, a);
    std::vector<std::pair<std::string, uint16_t>> asked;
    engine.for_each_service_answer(
        [&](std::string_view name, std::string_view, uint16_t qtype, const Answer &) {
            asked.emplace_back(std::string(name), qtype);
        });
    for (const char *n :
         {"global", "svc.global", "default.svc.global", "nope.default.svc.global", "example.org"})
        for (uint16_t t : {dnstype::A, dnstype::AAAA, dnstype::SOA, uint16_t{16}})
            asked.emplace_back(n, t);
    asked.emplace_back("web.default.svc.global", uint16_t{16});
    size_t in = 0;
    for (const auto &[name, qtype] : asked) {
        SCOPED_TRACE(name + " type " + std::to_string(qtype));
        const KernelChoice c = kernel_choice(name, qtype, engine.explain(name, qtype));
        auto it = held.find({name, qtype});
        if (it == held.end() || it->second.kind == FABDNS_ANSWER_ZONE) {
            EXPECT_FALSE(c.entry);
            EXPECT_FALSE(c.why_not.empty());
            continue;
        }
        in++;
        ASSERT_TRUE(c.entry);
        EXPECT_EQ(*c.entry, it->second);
        EXPECT_TRUE(c.why_not.empty());
    }
    EXPECT_EQ(in, held.size() - engine.options().zones.size());
}

TEST(MapCompiler, ABatchThatFailsIsWrittenAgainByTheNextSync) {
    Engine engine(small_options());
    engine.set_services(small_services());
    FakeTable table(1u << 16);
    MapCompiler compiler(table);
    table.fail_next = true;
    EXPECT_NO_THROW(compiler.sync(engine));
    EXPECT_TRUE(table.entries.empty());
    const CompileStats st = compiler.sync(engine);
    EXPECT_GT(st.added, 0u);
    EXPECT_EQ(table.entries.size(), st.entries);
}

TEST(MapCompiler, FillsAnEmptyMapWithTheDesiredSet) {
    Engine engine(small_options());
    engine.set_services(small_services());
    FakeTable table(1024);
    MapCompiler compiler(table);
    const CompileStats st = compiler.sync(engine);
    const Desired want = desired_of(engine);
    expect_table_is(table, want);
    EXPECT_EQ(st.desired, want.size());
    EXPECT_EQ(st.added, want.size());
    EXPECT_EQ(st.updated + st.removed + st.over_capacity, 0u);
    EXPECT_EQ(st.entries, want.size());
    EXPECT_GT(st.unfit, 0u);
    EXPECT_EQ(table.upserts, want.size());
    EXPECT_EQ(table.erases, 0u);
    EXPECT_EQ(compiler.last().added, st.added);
}

// The first sync into an empty map is written in batches of kFirstSyncPart (not staged whole),
// whether the set fits or is ranked; every answer arrives, and later syncs are one batch.
TEST(MapCompiler, FirstSyncIntoAnEmptyMapIsWrittenInParts) {
    auto services = test::generate_services({.seed = 5, .services = 1500});
    Engine engine(test::gen_engine_options());
    engine.set_services(services);
    const Desired want = desired_of(engine);
    const size_t part = MapCompiler::kFirstSyncPart;
    ASSERT_GT(want.size(), 2 * part);
    {
        FakeTable table(1u << 16);
        MapCompiler compiler(table);
        const CompileStats st = compiler.sync(engine);
        expect_table_is(table, want);
        EXPECT_EQ(st.added, want.size());
        EXPECT_EQ(table.batches, (want.size() + part - 1) / part);
        EXPECT_EQ(compiler.resync(engine).added, 0u);
        auto changed = services;
        changed[7].endpoints[0].addresses[0] = *IpAddr::parse("10.99.0.1");
        engine.set_services(changed);
        table.reset_counters();
        EXPECT_GT(compiler.sync(engine).updated, 0u);
        EXPECT_EQ(table.batches, 1u);
    }
    {
        const uint32_t cap = static_cast<uint32_t>(want.size() - 100);
        FakeTable table(cap);
        MapCompiler compiler(table);
        const CompileStats st = compiler.sync(engine);
        EXPECT_EQ(st.entries, cap);
        EXPECT_EQ(table.entries.size(), cap);
        EXPECT_EQ(table.failed_upserts, 0u);
        EXPECT_EQ(table.batches, (cap + part - 1) / part);
    }
}

// A map exactly as large as the answers that fit, smaller than all the engine's answers (pod
// names and answers too big count there): the set fits, and is written in full.
TEST(MapCompiler, FillsAMapOnlyAsLargeAsTheAnswersThatFit) {
    Engine engine(small_options());
    engine.set_services(small_services());
    const Desired want = desired_of(engine);
    ASSERT_LT(want.size(), engine.service_answer_count() + engine.options().zones.size());
    FakeTable table(static_cast<uint32_t>(want.size()));
    MapCompiler compiler(table);
    const CompileStats st = compiler.sync(engine);
    expect_table_is(table, want);
    EXPECT_EQ(st.over_capacity, 0u);
    EXPECT_EQ(st.added, want.size());
    EXPECT_EQ(table.failed_upserts, 0u);
}

TEST(MapCompiler, AppliesOnlyTheDifference) {
    auto services = test::generate_services({.seed = 9, .services = 300});
    Engine engine(test::gen_engine_options());
    engine.set_services(services);
    FakeTable table(1u << 16);
    MapCompiler compiler(table);
    compiler.sync(engine);
    expect_table_is(table, desired_of(engine));

    // Nothing changed: nothing written.
    table.reset_counters();
    CompileStats st = compiler.sync(engine);
    EXPECT_EQ(table.upserts + table.erases, 0u);
    EXPECT_EQ(st.added + st.updated + st.removed, 0u);
    EXPECT_EQ(table.batches, 0u) << "nothing to apply: the kernel's copies are not switched";

    // Checks one change: exactly the keys whose answers changed are written.
    auto apply = [&](const std::vector<GlobalService> &next, const char *what) {
        SCOPED_TRACE(what);
        const Desired before = desired_of(engine);
        engine.set_services(next);
        const Desired after = desired_of(engine);
        std::set<fabdns_answer_key, KeyLess> want_upsert, want_erase;
        for (const auto &[k, v] : after) {
            auto it = before.find(k);
            if (it == before.end() || !same_value(it->second, v)) want_upsert.insert(k);
        }
        for (const auto &[k, v] : before)
            if (!after.count(k)) want_erase.insert(k);
        table.reset_counters();
        const CompileStats s = compiler.sync(engine);
        EXPECT_FALSE(want_upsert.empty() && want_erase.empty()) << "the change must matter";
        EXPECT_TRUE(same_keys(table.upserted, want_upsert))
            << "upserted " << table.upserted.size() << ", expected " << want_upsert.size();
        EXPECT_TRUE(same_keys(table.erased, want_erase))
            << "erased " << table.erased.size() << ", expected " << want_erase.size();
        EXPECT_EQ(table.upserts, want_upsert.size()) << "a key written twice";
        EXPECT_EQ(table.batches, 1u) << "the kernel must see the whole change at once";
        EXPECT_EQ(s.added + s.updated, want_upsert.size());
        EXPECT_EQ(s.removed, want_erase.size());
        expect_table_is(table, after);
    };

    // One address of one service.
    auto changed = services;
    changed[10].endpoints[0].addresses[0] = *IpAddr::parse("10.250.0.1");
    apply(changed, "one address changed");
    // One service gone.
    auto removed = changed;
    removed.erase(removed.begin() + 20);
    apply(removed, "one service removed");
    // One service added.
    auto added = removed;
    added.push_back(testing::service(
        "fresh", "default", {testing::endpoint("beijing", "bj-a", "north", {"10.251.0.1"})}));
    apply(added, "one service added");
    // The TTL changes every answer.
    {
        SCOPED_TRACE("ttl");
        EngineOptions o = test::gen_engine_options(31);
        Engine other(o);
        other.set_services(added);
        table.reset_counters();
        const CompileStats s = compiler.sync(other);
        EXPECT_EQ(s.updated, table.entries.size());
        EXPECT_EQ(table.erases, 0u);
        expect_table_is(table, desired_of(other));
    }
}

TEST(MapCompiler, AdoptsWhatTheMapAlreadyHolds) {
    Engine engine(small_options());
    engine.set_services(small_services());
    const Desired want = desired_of(engine);
    ASSERT_GE(want.size(), 4u);

    // A map left by an earlier daemon: half the answers current (with kernel hit counts), one
    // stale value, one name that no longer exists.
    FakeTable table(1024);
    size_t i = 0;
    fabdns_answer_key stale_key{}, kept_key{};
    for (const auto &[k, v] : want) {
        if (i % 2 == 0) {
            fabdns_answer held = v;
            held.hits = 100 + i;
            table.entries[k] = held;
            kept_key = k;
        } else if (i == 1) {
            fabdns_answer held = v;
            held.rdata[0] ^= 0xff;
            table.entries[k] = held;
            stale_key = k;
        }
        i++;
    }
    maps::KernelAnswer gone;
    gone.name = "gone.default.svc.global";
    gone.qtype = dnstype::A;
    gone.ttl = 5;
    gone.addrs.push_back({10, 9, 9, 9});
    const auto gone_key = maps::make_key(gone.name, gone.qtype);
    table.entries[gone_key] = maps::make_value(gone);

    MapCompiler compiler(table);
    const size_t current = (want.size() + 1) / 2;
    const CompileStats st = compiler.sync(engine);
    expect_table_is(table, want);
    EXPECT_EQ(table.erased.size(), 1u);
    EXPECT_TRUE(table.erased.count(gone_key));
    EXPECT_EQ(table.upserts, want.size() - current) << "current entries must not be rewritten";
    EXPECT_TRUE(table.upserted.count(stale_key));
    EXPECT_FALSE(table.upserted.count(kept_key));
    EXPECT_EQ(st.updated, 1u);
    EXPECT_EQ(st.added, want.size() - current - 1);
    EXPECT_EQ(st.removed, 1u);
    // Untouched entries keep the kernel's hit counts.
    EXPECT_GE(table.entries[kept_key].hits, 100u);
}

// The compiler keeps digests, not values: a held value that differs from the desired one in
// any single field is rewritten (and only that one).
TEST(MapCompiler, RewritesAHeldValueThatDiffersInAnyOneField) {
    Engine engine(small_options());
    engine.set_services(small_services());
    const Desired want = desired_of(engine);
    std::map<uint8_t, fabdns_answer_key> first_of_kind;
    for (const auto &[k, v] : want) first_of_kind.try_emplace(v.kind, k);
    ASSERT_EQ(first_of_kind.size(), 3u) << "addresses, NODATA and zone entries";

    struct Change {
        uint8_t kind;
        const char *what;
        void (*apply)(fabdns_answer &);
    };
    const Change changes[] = {
        {FABDNS_ANSWER_ADDRESSES, "address", [](fabdns_answer &v) { v.rdata[3] ^= 1; }},
        {FABDNS_ANSWER_ADDRESSES, "ttl", [](fabdns_answer &v) { v.ttl++; }},
        {FABDNS_ANSWER_ADDRESSES, "count", [](fabdns_answer &v) { v.count++; }},
        {FABDNS_ANSWER_ADDRESSES, "kind", [](fabdns_answer &v) { v.kind = FABDNS_ANSWER_NODATA; }},
        {FABDNS_ANSWER_NODATA, "ttl", [](fabdns_answer &v) { v.ttl++; }},
        {FABDNS_ANSWER_NODATA, "kind", [](fabdns_answer &v) { v.kind = FABDNS_ANSWER_ADDRESSES; }},
        {FABDNS_ANSWER_NODATA, "zone length", [](fabdns_answer &v) { v.zone_len--; }},
        {FABDNS_ANSWER_ZONE, "soa bytes (serial)", [](fabdns_answer &v) { v.rdata[3] ^= 1; }},
        {FABDNS_ANSWER_ZONE, "soa bytes (minimum)",
         [](fabdns_answer &v) { v.rdata[FABDNS_SOA_TAIL_LEN - 1] ^= 0x80; }},
        {FABDNS_ANSWER_ZONE, "soa length", [](fabdns_answer &v) { v.soa_len--; }},
        {FABDNS_ANSWER_ZONE, "ttl", [](fabdns_answer &v) { v.ttl++; }},
        {FABDNS_ANSWER_ZONE, "kind", [](fabdns_answer &v) { v.kind = FABDNS_ANSWER_NODATA; }},
    };
    for (const auto &c : changes) {
        SCOPED_TRACE(std::string(c.what) + " of kind " + std::to_string(c.kind));
        const fabdns_answer_key key = first_of_kind.at(c.kind);
        FakeTable table(1024);
        table.entries.insert(want.begin(), want.end());
        c.apply(table.entries[key]);
        ASSERT_FALSE(same_value(table.entries[key], want.at(key))) << "the change must matter";
        MapCompiler compiler(table);
        const CompileStats st = compiler.sync(engine);
        EXPECT_EQ(table.upserts, 1u);
        EXPECT_TRUE(table.upserted.count(key));
        EXPECT_EQ(st.updated, 1u);
        EXPECT_EQ(st.added + st.removed, 0u);
        expect_table_is(table, want);
    }
}

// The kernel's hit counter is not part of a value: counts changing never cause a write, neither
// in a map adopted after a restart nor in one the compiler wrote itself.
TEST(MapCompiler, HitCountsAloneCauseNoWrite) {
    Engine engine(small_options());
    engine.set_services(small_services());
    const Desired want = desired_of(engine);
    FakeTable table(1024);
    uint64_t n = 0;
    for (const auto &[k, v] : want) {
        table.entries[k] = v;
        table.entries[k].hits = 10 + n++;
    }
    MapCompiler compiler(table);
    CompileStats st = compiler.sync(engine);
    EXPECT_EQ(table.upserts + table.erases, 0u);
    EXPECT_EQ(st.added + st.updated + st.removed, 0u);

    for (auto &[k, v] : table.entries) v.hits += 1000;
    st = compiler.sync(engine);
    EXPECT_EQ(table.upserts + table.erases, 0u);
    EXPECT_EQ(st.added + st.updated + st.removed, 0u);
    for (const auto &[k, v] : table.entries) EXPECT_GE(v.hits, 1000u) << name_of(v);
    expect_table_is(table, want);
}

TEST(MapCompiler, KeepsTheMostQueriedAnswersWhenOverCapacity) {
    auto services = test::generate_services({.seed = 3, .services = 60});
    Engine engine(test::gen_engine_options());
    engine.set_services(services);
    const auto all = kernel_answers(engine);
    ASSERT_GT(all.size(), 100u);
    constexpr uint32_t kCap = 20;
    FakeTable table(kCap);
    MapCompiler compiler(table);

    // No ranking input yet: the zone entries (NODATA entries refer to them), then the first
    // names in (name, type) order.
    size_t zones = 0;
    for (const auto &a : all) zones += a.kind == FABDNS_ANSWER_ZONE;
    ASSERT_GT(zones, 0u);
    CompileStats st = compiler.sync(engine);
    EXPECT_EQ(st.desired, all.size());
    EXPECT_EQ(st.over_capacity, all.size() - kCap);
    EXPECT_EQ(st.entries, kCap);
    EXPECT_EQ(table.entries.size(), kCap);
    EXPECT_EQ(table.failed_upserts, 0u);
    EXPECT_FALSE(compiler.ranking_outdated()) << "no query since the ranking";
    for (const auto &a : all) {
        if (a.kind != FABDNS_ANSWER_ZONE) continue;
        EXPECT_TRUE(table.holds(a.name, a.qtype)) << a.name;
    }
    for (size_t i = 0, held = zones; held < kCap; i++) {
        if (all[i].kind == FABDNS_ANSWER_ZONE) continue;
        EXPECT_TRUE(table.holds(all[i].name, all[i].qtype)) << all[i].name;
        held++;
    }

    // Queries answered in user space move names in.
    std::vector<const maps::KernelAnswer *> noted;
    for (size_t i = all.size() - 1; noted.size() < 3; i -= 7) noted.push_back(&all[i]);
    for (const auto *a : noted)
        for (int n = 0; n < 5; n++) compiler.note_query(a->name, a->qtype);
    EXPECT_TRUE(compiler.ranking_outdated()) << "queries answered in user space since";
    table.reset_counters();
    st = compiler.resync(engine);
    EXPECT_FALSE(compiler.ranking_outdated());
    EXPECT_EQ(st.over_capacity, all.size() - kCap);
    EXPECT_EQ(table.entries.size(), kCap);
    EXPECT_EQ(table.failed_upserts, 0u) << "evictions must make room before additions";
    for (const auto *a : noted) EXPECT_TRUE(table.holds(a->name, a->qtype)) << a->name;
    EXPECT_EQ(table.upserts, 3u);
    EXPECT_EQ(table.erases, 3u);

    // Kernel hits, read from the map's values, count as well: a heavily hit entry stays while
    // eight other names gain user-space queries.
    const maps::KernelAnswer *hot = nullptr;
    for (size_t i = 0; i < kCap && !hot; i++) {
        bool is_noted = false;
        for (const auto *a : noted) is_noted |= a == &all[i];
        if (!is_noted && all[i].kind != FABDNS_ANSWER_ZONE &&
            table.holds(all[i].name, all[i].qtype))
            hot = &all[i];
    }
    ASSERT_TRUE(hot);
    table.entries[maps::make_key(hot->name, hot->qtype)].hits = 1000;
    std::vector<const maps::KernelAnswer *> warm;
    for (size_t i = kCap + 1; warm.size() < 20; i += 3) {
        bool is_noted = false;
        for (const auto *a : noted) is_noted |= a == &all[i];
        if (!is_noted) warm.push_back(&all[i]);
    }
    for (const auto *a : warm)
        for (int n = 0; n < 2; n++) compiler.note_query(a->name, a->qtype);
    st = compiler.sync(engine);
    EXPECT_TRUE(table.holds(hot->name, hot->qtype)) << "1000 kernel hits outrank 2 queries";
    for (const auto *a : noted) EXPECT_TRUE(table.holds(a->name, a->qtype)) << "5 queries";
    size_t warm_in = 0;
    for (const auto *a : warm) warm_in += table.holds(a->name, a->qtype);
    EXPECT_EQ(warm_in, kCap - zones - 1 - noted.size())
        << "the rest of the room goes to warm names";
    EXPECT_EQ(table.entries.size(), kCap);
    EXPECT_EQ(st.over_capacity, all.size() - kCap);
}

}  // namespace
}  // namespace fabdns
