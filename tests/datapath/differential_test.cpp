// Differential test of the XDP/TC datapath against the user-space resolver's respond().
//
// Every hot name of a large generated service set goes through the real XDP program (and on a
// sample the TC program) and through respond(); where the kernel answers, both replies must say
// the same thing, and the kernel must answer exactly what kernel_answers() lists.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "compiler/compiler.hpp"
#include "dns_message.hpp"
#include "loaded_datapath.hpp"
#include "resolver/respond.hpp"
#include "root.hpp"
#include "services_gen.hpp"

namespace fabdns::test {
namespace {

constexpr size_t kServices = 1200;
constexpr uint64_t kSeed = 20261101;
constexpr size_t kTcEvery = 7;  // every n-th query also goes through the TC program
constexpr size_t kMaxReported = 25;

enum class EdnsKind { None, Do, Cookie };
const char *to_string(EdnsKind e) {
    switch (e) {
        case EdnsKind::None:
            return "no EDNS";
        case EdnsKind::Do:
            return "EDNS DO";
        case EdnsKind::Cookie:
            return "EDNS cookie";
    }
    return "?";
}

struct Tally {
    size_t queries = 0, hits = 0, passes = 0, identical = 0, semantic_only = 0;
    size_t unexpected_miss = 0, unexpected_hit = 0, mismatched = 0, modified_pass = 0;
    size_t bad_verdict = 0, bad_frame = 0, resolver_silent = 0;
    size_t pod_queries = 0, pod_passed = 0, big_queries = 0, big_passed = 0;
    size_t negative_passed = 0, skipped_long = 0;
    size_t nodata_a_hits = 0, nodata_aaaa_hits = 0, nodata_not_identical = 0;
    size_t tc_runs = 0, tc_hits = 0, tc_passes = 0, tc_same_as_xdp = 0, tc_failures = 0;
    std::map<std::string, std::pair<size_t, size_t>> by_form;  // form -> (hits, passes)
    std::set<std::pair<std::string, uint16_t>> answered;       // kernel entries answered
    std::vector<std::string> problems;

    void problem(const std::string &what) {
        if (problems.size() < kMaxReported) problems.push_back(what);
    }
    size_t failures() const {
        return unexpected_miss + unexpected_hit + mismatched + modified_pass + bad_verdict +
               bad_frame + resolver_silent + tc_failures + nodata_not_identical;
    }
};

// The DNS message of a test frame's query, as the resolver would receive it.
Bytes query_for(const std::string &name, uint16_t qtype, EdnsKind edns, std::mt19937_64 &rng) {
    QueryOpts q;
    q.name = name;
    q.qtype = qtype;
    q.id = static_cast<uint16_t>(rng());
    q.rd = rng() & 1;
    q.cd = (rng() % 4) == 0;
    if (edns != EdnsKind::None) {
        q.edns = true;
        q.do_bit = edns == EdnsKind::Do;
        q.edns_size = edns == EdnsKind::Do ? 1232 : 4096;
    }
    if (edns == EdnsKind::Cookie) {
        // A client cookie, and on every other query a server cookie as well (RFC 7873 §4).
        const size_t len = (rng() & 1) ? 8 : 24;
        q.edns_options = {0, 10, 0, static_cast<uint8_t>(len)};
        for (size_t i = 0; i < len; i++) q.edns_options.push_back(static_cast<uint8_t>(rng()));
    }
    return dns_query(q);
}

// One engine compiled into one loaded datapath, and the running comparison of both paths.
class Differ {
  public:
    Differ(std::vector<GlobalService> services, EngineOptions options, const std::string &pin_name,
           uint32_t capacity)
        : services_(std::move(services)), engine_(std::move(options)) {
        engine_.set_services(services_);
        dp_ = std::make_unique<LoadedDatapath>(pin_name, capacity);
        MapCompiler compiler(dp_->answers());
        stats_ = compiler.sync(engine_);
        for (const auto &k : kernel_answers(engine_, &unfit_))
            (k.kind == FABDNS_ANSWER_ZONE ? zones_ : kernel_).emplace(k.name, k.qtype);
    }

    const std::vector<GlobalService> &services() const { return services_; }
    const Engine &engine() const { return engine_; }
    const CompileStats &stats() const { return stats_; }
    const std::set<std::pair<std::string, uint16_t>> &kernel() const { return kernel_; }
    const std::set<std::pair<std::string, uint16_t>> &zones() const { return zones_; }
    size_t unfit() const { return unfit_; }
    const Tally &tally() const { return t_; }

    // Asks name (lowercase) for A and AAAA, with each EDNS variant, in lowercase and in a
    // random 0x20 spelling, through XDP, respond() and on a sample TC, and tallies the result.
    void ask(const std::string &name, const std::string &form) {
        if (name.size() > FABDNS_NAME_MAX) {
            t_.skipped_long++;
            return;
        }
        for (uint16_t qtype : {uint16_t(1), uint16_t(28)}) {
            const Answer truth = engine_.resolve(name, qtype);
            for (EdnsKind edns : {EdnsKind::None, EdnsKind::Do, EdnsKind::Cookie})
                for (bool mixed : {false, true}) ask_one(name, form, qtype, truth, edns, mixed);
        }
    }

    // After every ask(): each answer kernel_answers() lists must have been asked and answered
    // in the kernel. Returns (never asked, asked but never answered).
    std::pair<size_t, size_t> coverage() {
        size_t never_queried = 0, never_answered = 0;
        for (const auto &k : kernel_) {
            if (!queried_.count(k)) {
                never_queried++;
                t_.problem("kernel_answers() lists a name this test never asked: " + k.first +
                           " type " + std::to_string(k.second));
            } else if (!t_.answered.count(k)) {
                never_answered++;
            }
        }
        return {never_queried, never_answered};
    }

    std::string report() const {
        std::ostringstream r;
        r << "services " << services_.size() << ", kernel entries " << kernel_.size() << " (unfit "
          << unfit_ << ")\n"
          << "XDP: queries " << t_.queries << ", answered " << t_.hits << ", passed " << t_.passes
          << "; answered replies byte-identical to the resolver's " << t_.identical
          << ", only semantically equal " << t_.semantic_only << "\n"
          << "passed: pod-name queries " << t_.pod_passed << "/" << t_.pod_queries
          << ", >8-record queries " << t_.big_passed << "/" << t_.big_queries
          << ", NODATA/NXDOMAIN " << t_.negative_passed << "; names over 253 skipped "
          << t_.skipped_long << "\n"
          << "NODATA answered: A " << t_.nodata_a_hits << ", AAAA " << t_.nodata_aaaa_hits
          << ", not byte-identical " << t_.nodata_not_identical << "\n"
          << "TC sample: runs " << t_.tc_runs << ", answered " << t_.tc_hits << ", passed "
          << t_.tc_passes << ", identical to XDP output " << t_.tc_same_as_xdp << "\n"
          << "per form (answered/passed):";
        for (const auto &[form, hp] : t_.by_form)
            r << " " << form << " " << hp.first << "/" << hp.second;
        r << "\nfailures: unexpected miss " << t_.unexpected_miss << ", unexpected hit "
          << t_.unexpected_hit << ", mismatched " << t_.mismatched << ", modified pass "
          << t_.modified_pass << ", bad verdict " << t_.bad_verdict << ", bad frame "
          << t_.bad_frame << ", resolver silent " << t_.resolver_silent << ", TC " << t_.tc_failures
          << "\n";
        for (const auto &p : t_.problems) r << "  " << p << "\n";
        return r.str();
    }

  private:
    void ask_one(const std::string &name, const std::string &form_name, uint16_t qtype,
                 const Answer &truth, EdnsKind edns, bool mixed) {
        const auto key = std::make_pair(name, qtype);
        const bool listed = kernel_.count(key) > 0;
        const bool big = truth.answer.size() > FABDNS_MAX_RECORDS;
        const bool positive = truth.rcode == Rcode::NoError && !truth.answer.empty();
        index_++;
        const std::string spelled = mixed ? mix_case(name, rng_) : name;
        std::ostringstream label;
        label << spelled << " type " << qtype << " " << to_string(edns) << " (" << form_name << ")";
        const Bytes dns = query_for(spelled, qtype, edns, rng_);
        FrameOpts f = index_ % 2 ? frame_v6() : frame_v4();
        f.vlan = index_ % 11 == 0;
        f.sport = static_cast<uint16_t>(1024 + rng_() % 60000);
        const Bytes in = frame(f, dns);

        t_.queries++;
        queried_.insert(key);
        if (form_name == "pod") t_.pod_queries++;
        if (big) t_.big_queries++;
        const loader::TestRun x = loader::test_run(dp_->xdp_fd(), in);
        const fabdns::Reply user = respond(engine_, dns, dns::Transport::Udp);
        auto &form = t_.by_form[form_name];

        if (x.verdict == XDP_TX) {
            t_.hits++;
            form.first++;
            t_.answered.insert(key);
            if (!listed) {
                t_.unexpected_hit++;
                t_.problem("answered in the kernel but not in kernel_answers(): " + label.str());
            }
            const bool nodata = truth.rcode == Rcode::NoError && truth.answer.empty();
            if (nodata) (qtype == 1 ? t_.nodata_a_hits : t_.nodata_aaaa_hits)++;
            check_hit(in, x.out, dns, user, label.str(), nodata);
        } else if (x.verdict == XDP_PASS) {
            t_.passes++;
            form.second++;
            if (x.out != in) {
                t_.modified_pass++;
                t_.problem("passed frame was modified: " + label.str());
            }
            if (listed) {
                t_.unexpected_miss++;
                t_.problem("listed by kernel_answers() but passed: " + label.str());
            }
            if (form_name == "pod") t_.pod_passed++;
            if (big) t_.big_passed++;
            if (!positive) t_.negative_passed++;
            if (user.action != fabdns::Reply::Action::Reply) {
                t_.resolver_silent++;
                t_.problem("passed to a resolver that does not answer: " + label.str());
            }
        } else {
            t_.bad_verdict++;
            t_.problem("XDP verdict " + std::to_string(x.verdict) + ": " + label.str());
        }

        if (index_ % kTcEvery == 0) check_tc(in, x, label.str());
    }

    void check_hit(const Bytes &in, const Bytes &out, const Bytes &dns, const fabdns::Reply &user,
                   const std::string &label, bool nodata) {
        auto rep = parse_reply(in, out);
        if (!rep.ok) {
            t_.bad_frame++;
            t_.problem("bad reply frame (" + rep.error + "): " + label);
            return;
        }
        if (user.action != fabdns::Reply::Action::Reply) {
            t_.resolver_silent++;
            t_.problem("the kernel answered, the resolver did not: " + label);
            return;
        }
        const Message km = parse_message(rep.dns);
        const Message um = parse_message(user.bytes);
        const Message qm = parse_message(dns);
        auto diff = semantic_diff(km, um);
        if (km.ok && km.question != qm.question)
            diff.push_back("the kernel did not echo the question byte for byte");
        if (!diff.empty()) {
            t_.mismatched++;
            std::string d;
            for (const auto &line : diff) d += "\n    " + line;
            t_.problem("kernel vs resolver: " + label + d);
        } else if (rep.dns == user.bytes) {
            t_.identical++;
        } else {
            t_.semantic_only++;
            // The SOA's compression is part of what NODATA must reproduce exactly.
            if (nodata) {
                t_.nodata_not_identical++;
                t_.problem("NODATA not byte-identical to the resolver's: " + label);
            }
        }
    }

    void check_tc(const Bytes &in, const loader::TestRun &x, const std::string &label) {
        t_.tc_runs++;
        const loader::TestRun c = loader::test_run(dp_->tc_fd(), in);
        if (c.verdict == TC_ACT_REDIRECT) t_.tc_hits++;
        if (c.verdict == TC_ACT_OK) t_.tc_passes++;
        const bool agree = (x.verdict == XDP_TX && c.verdict == TC_ACT_REDIRECT) ||
                           (x.verdict == XDP_PASS && c.verdict == TC_ACT_OK);
        if (!agree) {
            t_.tc_failures++;
            t_.problem("TC verdict " + std::to_string(c.verdict) + " vs XDP verdict " +
                       std::to_string(x.verdict) + ": " + label);
        } else if (c.out == x.out) {
            t_.tc_same_as_xdp++;
        } else {
            // The XDP reply was checked; the same query must give the same frame.
            t_.tc_failures++;
            t_.problem("TC output differs from XDP output: " + label);
        }
    }

    std::vector<GlobalService> services_;
    Engine engine_;
    std::unique_ptr<LoadedDatapath> dp_;
    CompileStats stats_;
    std::set<std::pair<std::string, uint16_t>> kernel_, zones_;
    size_t unfit_ = 0;
    std::mt19937_64 rng_{kSeed};
    size_t index_ = 0;
    std::set<std::pair<std::string, uint16_t>> queried_;
    Tally t_;
};

// Asks a service's four spellings in zone z, with `cluster` in the per-cluster ones; returns the
// length of its service name.
size_t ask_forms(Differ &d, const GlobalService &s, const std::string &z,
                 const std::string &cluster) {
    const std::string base = s.name + "." + s.ns;
    d.ask(base + ".svc." + z, "service");
    d.ask(base + "." + z, "short");
    d.ask(cluster + "." + base + ".svc." + z, "cluster");
    d.ask(base + "." + cluster + "." + z, "old");
    return (base + ".svc." + z).size();
}

// Ends a run: prints the report with the coverage line (after `intro`), records the tally, and
// checks what every run must hold: no disagreement, and every answer the compiler lists for the
// kernel asked and answered there. Returns the tally for the run's own checks.
const Tally &finish(Differ &d, const std::string &intro = "") {
    const auto [never_queried, never_answered] = d.coverage();
    const Tally &t = d.tally();
    const std::string report = intro + d.report() + "listed never asked " +
                               std::to_string(never_queried) + ", listed never answered " +
                               std::to_string(never_answered) + "\n";
    std::cout << report;
    ::testing::Test::RecordProperty("queries", static_cast<int>(t.queries));
    ::testing::Test::RecordProperty("xdp_answered", static_cast<int>(t.hits));
    ::testing::Test::RecordProperty("xdp_passed", static_cast<int>(t.passes));
    ::testing::Test::RecordProperty("byte_identical", static_cast<int>(t.identical));
    ::testing::Test::RecordProperty("semantic_only", static_cast<int>(t.semantic_only));
    ::testing::Test::RecordProperty("tc_runs", static_cast<int>(t.tc_runs));
    EXPECT_EQ(t.failures(), 0u) << report;
    EXPECT_EQ(never_queried + never_answered, 0u) << report;
    return t;
}

TEST(DifferentialTest, KernelAgreesWithTheResolverOnEveryHotName) {
    FABDNS_REQUIRE_ROOT();
    Differ d(generate_services({.seed = kSeed, .services = kServices}), gen_engine_options(),
             "diff", 1u << 17);
    // The generated set must exercise what this test is about.
    ASSERT_GE(d.services().size(), 1000u);
    ASSERT_EQ(d.stats().over_capacity, 0u) << "the map must hold every answer";
    ASSERT_EQ(d.stats().entries, d.kernel().size() + d.zones().size());
    ASSERT_EQ(d.zones().size(), d.engine().options().zones.size()) << "one SOA entry per zone";
    ASSERT_GT(d.unfit(), 0u) << "some answers must have more than 8 records";

    const auto names = query_names(d.services(), d.engine().options().zones);
    for (const QueryName &qn : names) d.ask(qn.name, qn.form);
    const Tally &t = finish(d, "names " + std::to_string(names.size()) + ", ");
    EXPECT_GT(t.hits, 0u);
    EXPECT_GT(t.pod_queries, 0u) << "the set must have Headless pod names";
    EXPECT_EQ(t.pod_passed, t.pod_queries) << "pod names are never answered in the kernel";
    EXPECT_GT(t.big_queries, 0u) << "the set must have answers of more than 8 records";
    EXPECT_EQ(t.big_passed, t.big_queries) << ">8-record answers stay in user space";
    EXPECT_GT(t.tc_hits, 0u);
    EXPECT_GT(t.tc_passes, 0u);
    EXPECT_GT(t.nodata_a_hits, 0u) << "IPv6-only names must get their A NODATA in the kernel";
    EXPECT_GT(t.nodata_aaaa_hits, 0u) << "IPv4-only names must get their AAAA NODATA there";
    EXPECT_GT(t.negative_passed, 0u) << "NXDOMAIN and empty non-terminals stay in user space";
}

// The largest replies the kernel builds: names of up to 253 characters (255 bytes on the wire)
// under a 199-character zone, with 8 A and 8 AAAA records (506 bytes without EDNS, just under
// 512), and 9 records just over the kernel's limit.
TEST(DifferentialTest, LongestNamesAndLargestAnswersAgree) {
    FABDNS_REQUIRE_ROOT();
    std::string zone;
    for (int i = 0; i < 4; i++)
        zone += (i ? "." : "") + std::string(49, static_cast<char>('p' + i));
    ASSERT_EQ(zone.size(), 199u);
    EngineOptions o = gen_engine_options();
    o.zones = {"global", zone};

    std::vector<GlobalService> services;
    uint8_t n = 0;
    // Service-form lengths 253, 252, 250, 246, 240 (name length + 7 + 205).
    for (size_t len : {41, 40, 38, 34, 28}) {
        for (size_t records : {8, 9}) {
            GlobalService s;
            s.name = std::string(len - 2, static_cast<char>('a' + records)) + std::to_string(len);
            s.ns = "default";
            for (size_t e = 0; e < records; e++) {
                Endpoint ep;
                ep.cluster = "beijing";
                ep.zone = "bj-a";
                ep.region = "north";
                ++n;
                ep.addresses.push_back(IpAddr::v4(10, 99, 0, n));
                IpAddr v6 = *IpAddr::parse("fd00:99::");
                v6.bytes[15] = n;
                ep.addresses.push_back(v6);
                s.endpoints.push_back(std::move(ep));
            }
            services.push_back(std::move(s));
        }
        // IPv4 only: the longest names' AAAA NODATA, SOA and all.
        GlobalService s;
        s.name = std::string(len - 2, 'v') + std::to_string(len);
        s.ns = "default";
        Endpoint ep;
        ep.cluster = "beijing";
        ep.zone = "bj-a";
        ep.region = "north";
        ep.addresses.push_back(IpAddr::v4(10, 98, 0, static_cast<uint8_t>(len)));
        s.endpoints.push_back(std::move(ep));
        services.push_back(std::move(s));
    }
    Differ d(services, o, "diff-long", 1024);
    size_t longest = 0;
    for (const auto &s : d.services()) {
        for (const auto &z : d.engine().options().zones)
            longest = std::max(longest, ask_forms(d, s, z, "beijing"));
    }
    const Tally &t = finish(d);
    EXPECT_EQ(longest, size_t{FABDNS_NAME_MAX});
    EXPECT_GT(t.hits, 0u);
    EXPECT_GT(t.big_queries, 0u);
    EXPECT_EQ(t.big_passed, t.big_queries);
    EXPECT_GT(t.nodata_aaaa_hits, 0u);
}

// NODATA names whose last labels are the SOA's own names or their suffixes ("ns.dns.Z",
// "dns.Z", "hostmaster.Z"), at several lengths: the SOA in the reply then points into the
// question, which the compiler must reproduce exactly although it compresses once per shape.
TEST(DifferentialTest, NodataSharingLabelsWithTheSoaAgrees) {
    FABDNS_REQUIRE_ROOT();
    std::vector<GlobalService> services;
    uint8_t n = 0;
    auto add = [&](std::string name, std::string ns, std::string cluster) {
        GlobalService s;
        s.name = std::move(name);
        s.ns = std::move(ns);
        Endpoint ep;
        ep.cluster = std::move(cluster);
        ep.zone = "bj-a";
        ep.region = "north";
        ep.addresses.push_back(IpAddr::v4(10, 97, 0, ++n));  // IPv4 only: AAAA is NODATA
        s.endpoints.push_back(std::move(ep));
        services.push_back(std::move(s));
    };
    for (const char *svc : {"ns", "a", "ab", "abcdefgh", "hostmaster", "dns"})
        for (const char *ns : {"dns", "ns", "hostmaster", "default"})
            for (const char *cluster : {"dns", "hostmaster", "beijing"}) add(svc, ns, cluster);
    Differ d(services, gen_engine_options(), "diff-soa", 4096);
    ASSERT_EQ(d.stats().over_capacity, 0u);
    for (const auto &s : d.services()) {
        for (const auto &z : d.engine().options().zones)
            ask_forms(d, s, z, s.endpoints.front().cluster);
    }
    const Tally &t = finish(d);
    EXPECT_GT(t.nodata_aaaa_hits, 0u);
}

}  // namespace
}  // namespace fabdns::test
