// Packet tests of the real BPF object through BPF_PROG_TEST_RUN, for the XDP and TC entries:
// every answered frame is parsed (ldns) and checked field by field with checksums verified
// independently; every passed frame must come back byte for byte unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include <linux/if_ether.h>

#include "compiler/compiler.hpp"
#include "dns_wire.h"
#include "engine/support.hpp"
#include "resolver/respond.hpp"
#include "support.hpp"

namespace fabdns::test {
namespace {

using loader::Mode;

// Rdata bytes of each answer record, in order.
std::vector<Bytes> answer_rdata(ldns_pkt *p) {
    std::vector<Bytes> out;
    ldns_rr_list *an = ldns_pkt_answer(p);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rdf *rd = ldns_rr_rdf(ldns_rr_list_rr(an, i), 0);
        out.emplace_back(ldns_rdf_data(rd), ldns_rdf_data(rd) + ldns_rdf_size(rd));
    }
    return out;
}

Bytes addr_bytes(const std::string &s) {
    auto ip = IpAddr::parse(s);
    return Bytes(ip->bytes.begin(), ip->bytes.begin() + ip->size());
}

// The question name as wire bytes (case as sent).
Bytes qname_wire(const Bytes &dns) {
    size_t p = 12;
    while (dns[p]) p += dns[p] + 1;
    return Bytes(dns.begin() + 12, dns.begin() + p + 1);
}

struct HitCase {
    std::string label;
    QueryOpts q;
    FrameOpts f;
    std::string stored;  // lowercase name in the map
    std::vector<std::string> addrs;
};

class PacketTest : public DatapathFixture {
  protected:
    // Runs one hit case and checks every field of the reply.
    void expect_hit(const HitCase &c) {
        SCOPED_TRACE(c.label);
        add(c.stored, c.q.qtype, c.addrs, 30);
        Bytes dns = dns_query(c.q);
        Bytes in = frame(c.f, dns);
        RunResult r = run(in);
        ASSERT_EQ(r.verdict, Verdict::Answered) << "verdict " << r.raw;
        Reply rep = parse_reply(in, r.out);
        ASSERT_TRUE(rep.ok) << rep.error;
        ldns_pkt *p = rep.pkt;
        EXPECT_EQ(ldns_pkt_id(p), c.q.id);
        EXPECT_TRUE(ldns_pkt_qr(p));
        EXPECT_TRUE(ldns_pkt_aa(p));
        EXPECT_FALSE(ldns_pkt_tc(p));
        EXPECT_EQ(ldns_pkt_rd(p), c.q.rd);
        EXPECT_EQ(ldns_pkt_cd(p), c.q.cd);
        EXPECT_FALSE(ldns_pkt_ra(p));
        EXPECT_FALSE(ldns_pkt_ad(p));
        EXPECT_EQ(ldns_pkt_get_opcode(p), LDNS_PACKET_QUERY);
        EXPECT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        EXPECT_EQ(ldns_pkt_qdcount(p), 1);
        EXPECT_EQ(ldns_pkt_ancount(p), c.addrs.size());
        EXPECT_EQ(ldns_pkt_nscount(p), 0);
        // Question echoed byte for byte (0x20 case preserved).
        Bytes qw = qname_wire(dns);
        EXPECT_EQ(Bytes(rep.dns.begin() + 12, rep.dns.begin() + 12 + qw.size() + 4),
                  Bytes(dns.begin() + 12, dns.begin() + 12 + qw.size() + 4));
        ldns_rr_list *an = ldns_pkt_answer(p);
        ldns_rdf *qn = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0));
        for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
            ldns_rr *rr = ldns_rr_list_rr(an, i);
            EXPECT_EQ(ldns_rdf_compare(ldns_rr_owner(rr), qn), 0);
            EXPECT_EQ(ldns_rr_get_type(rr), c.q.qtype);
            EXPECT_EQ(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
            EXPECT_EQ(ldns_rr_ttl(rr), 30u);
        }
        std::vector<Bytes> want;
        for (const auto &a : c.addrs) want.push_back(addr_bytes(a));
        EXPECT_EQ(answer_rdata(p), want);
        EXPECT_EQ(ldns_pkt_edns(p), c.q.edns);
        if (c.q.edns) {
            EXPECT_EQ(ldns_pkt_edns_udp_size(p), 1232);
            EXPECT_EQ(ldns_pkt_edns_version(p), 0);
            EXPECT_EQ(ldns_pkt_edns_extended_rcode(p), 0);
            EXPECT_EQ(ldns_pkt_edns_do(p), c.q.do_bit);
            EXPECT_EQ(ldns_pkt_edns_data(p), nullptr) << "options must not be echoed";
        }
        // ldns moves the OPT out of the additional section: check ARCOUNT on the wire.
        EXPECT_EQ(rep.dns[10] << 8 | rep.dns[11], c.q.edns ? 1 : 0);
    }

    void expect_pass(const Bytes &in, const std::string &label) {
        RunResult r = run(in);
        EXPECT_EQ(r.verdict, Verdict::Passed) << label << " verdict " << r.raw;
        EXPECT_EQ(r.out, in) << label << ": passed frame was modified";
    }
};

std::string name_of_len(size_t len) {
    // Labels of 63 bytes separated by dots, ending in .global, total exactly len characters.
    std::string tail = ".global", s;
    while (s.size() + tail.size() < len) {
        size_t room = len - tail.size() - s.size();
        if (!s.empty()) {
            s += '.';
            room--;
        }
        size_t l = std::min<size_t>(63, room);
        if (l == 0) {
            s.pop_back();
            break;
        }
        s += std::string(l, 'a' + (s.size() % 26));
    }
    return s + tail;
}

TEST_P(PacketTest, AHitOverIpv4) {
    HitCase c{"A v4", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    expect_hit(c);
}

TEST_P(PacketTest, AaaaHitOverIpv6) {
    HitCase c{"AAAA v6", {}, {}, "nginx.default.svc.global", {"fd00:1::5"}};
    c.q.qtype = LDNS_RR_TYPE_AAAA;
    c.f.v6 = true;
    c.f.src = "fd00::2";
    c.f.dst = "fd00::1";
    expect_hit(c);
}

TEST_P(PacketTest, AHitOverIpv6AndAaaaOverIpv4) {
    HitCase a{"A over v6", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    a.f.v6 = true;
    a.f.src = "fd00::2";
    a.f.dst = "fd00::1";
    expect_hit(a);
    HitCase b{"AAAA over v4", {}, {}, "nginx.default.svc.global", {"fd00:1::5", "fd00:1::6"}};
    b.q.qtype = LDNS_RR_TYPE_AAAA;
    expect_hit(b);
}

TEST_P(PacketTest, EdnsEchoedWithDoAndPayload) {
    for (bool do_bit : {false, true}) {
        HitCase c{"EDNS", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
        c.q.edns = true;
        c.q.do_bit = do_bit;
        c.q.edns_size = 4096;
        expect_hit(c);
    }
}

TEST_P(PacketTest, CookieOptionIgnored) {
    HitCase c{"cookie", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    c.q.edns = true;
    c.q.edns_options = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};  // client cookie
    expect_hit(c);
}

TEST_P(PacketTest, MixedCaseMatchesAndIsEchoed) {
    HitCase c{"0x20", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    c.q.name = "NgInX.DeFaulT.SVC.gLoBaL";
    c.q.cd = true;
    c.q.rd = false;
    expect_hit(c);
}

TEST_P(PacketTest, VlanTaggedQuery) {
    HitCase c{"vlan", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    c.f.vlan = true;
    expect_hit(c);
    HitCase d{"vlan v6", {}, {}, "nginx.default.svc.global", {"fd00:1::5"}};
    d.q.qtype = LDNS_RR_TYPE_AAAA;
    d.f = {true, "fd00::2", "fd00::1"};
    d.f.vlan = true;
    expect_hit(d);
}

TEST_P(PacketTest, Ipv4OptionsAreDroppedFromTheReply) {
    HitCase c{"ip options", {}, {}, "nginx.default.svc.global", {"10.1.0.5"}};
    c.f.ip_options = {1, 1, 1, 0};  // NOP NOP NOP EOL
    expect_hit(c);
}

TEST_P(PacketTest, LongestName) {
    std::string name = name_of_len(FABDNS_NAME_MAX);
    ASSERT_EQ(name.size(), FABDNS_NAME_MAX);
    HitCase c{"253-char name (255 bytes on the wire)", {}, {}, name, {"10.1.0.5"}};
    c.q.name = name;
    c.q.edns = true;
    expect_hit(c);
    HitCase d{
        "253-char name, 8 AAAA",
        {},
        {},
        name,
        {"fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7", "fd00::8"}};
    d.q.name = name;
    d.q.qtype = LDNS_RR_TYPE_AAAA;
    d.q.edns = true;
    expect_hit(d);
}

TEST_P(PacketTest, OneAndEightRecords) {
    HitCase one{"1 A", {}, {}, "mysql.default.svc.global", {"10.1.0.9"}};
    one.q.name = one.stored;
    expect_hit(one);
    HitCase eight{"8 A",
                  {},
                  {},
                  "web.default.svc.global",
                  {"10.2.0.1", "10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6",
                   "10.2.0.7", "10.2.0.8"}};
    eight.q.name = eight.stored;
    expect_hit(eight);
}

TEST_P(PacketTest, NameLengthsAroundWordBoundaries) {
    for (size_t len : {8, 9, 15, 16, 17, 23, 24, 25, 63, 64, 127, 128}) {
        std::string name = name_of_len(len);
        HitCase c{"len " + std::to_string(len), {}, {}, name, {"10.3.0.1"}};
        c.q.name = name;
        expect_hit(c);
    }
}

TEST_P(PacketTest, PassCasesLeaveTheFrameUntouched) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    QueryOpts q;
    FrameOpts f;
    expect_pass(frame(f, dns_query({.name = "nope.default.svc.global"})), "miss");
    expect_pass(frame(f, dns_query({.qtype = LDNS_RR_TYPE_AAAA})), "miss for the other type");
    expect_pass(frame(f, dns_query({.qtype = LDNS_RR_TYPE_TXT})), "qtype TXT");
    expect_pass(frame(f, dns_query({.qclass = LDNS_RR_CLASS_CH})), "class CH");
    expect_pass(frame({.dst = "10.0.0.9"}, dns_query(q)), "wrong destination address");
    expect_pass(frame({.dport = 5353}, dns_query(q)), "wrong destination port");
    expect_pass(frame(f, dns_query({.edns = true, .edns_version = 1})), "EDNS version 1");
    expect_pass(frame({.frag = 0x2000}, dns_query(q)), "first fragment (MF)");
    expect_pass(frame({.frag = 0x0010}, dns_query(q)), "later fragment");

    Bytes base = dns_query(q);
    auto mutate = [&](auto fn, const std::string &label) {
        Bytes d = base;
        fn(d);
        expect_pass(frame(f, d), label);
    };
    mutate([](Bytes &d) { d[2] |= 0x80; }, "QR=1");
    mutate([](Bytes &d) { d[2] |= 0x10; }, "opcode 2");
    mutate([](Bytes &d) { d[2] |= 0x02; }, "TC=1");
    mutate([](Bytes &d) { d[5] = 2; }, "QDCOUNT=2");
    mutate([](Bytes &d) { d[5] = 0; }, "QDCOUNT=0");
    mutate([](Bytes &d) { d[7] = 1; }, "ANCOUNT=1");
    mutate([](Bytes &d) { d[9] = 1; }, "NSCOUNT=1");
    mutate([](Bytes &d) { d[11] = 1; }, "ARCOUNT=1 without a record");
    mutate([](Bytes &d) { d.push_back(0); }, "trailing byte");
    mutate(
        [](Bytes &d) {
            d[12 + 6] = 'x';
            d[12 + 6] = '.';
        },
        "dot inside a label");
    {
        // nginx.<pointer to offset 12>: a compression pointer in the question.
        Bytes d = base;
        d.resize(12);
        for (int b : {5, int('n'), int('g'), int('i'), int('n'), int('x'), 0xc0, 12, 0, 1, 0, 1})
            d.push_back(static_cast<uint8_t>(b));
        expect_pass(frame(f, d), "compression pointer");
    }
    {
        Bytes d = base;
        d[12 + 6] = 0x40;  // extended label type in place of "default"'s length
        expect_pass(frame(f, d), "label type 0x40");
    }
    // Stale liveness stamp: everything passes.
    auto &m = dp_->maps();
    fabdns_config cfg = m.config();
    fabdns_config old = cfg;
    cfg.stamp_ns = maps::monotonic_ns() - 10'000'000'000ull;
    cfg.stale_after_ns = 1'000'000'000ull;
    m.set_config(cfg);
    expect_pass(frame(f, base), "stale stamp");
    cfg.stamp_ns = 0;
    m.set_config(cfg);
    expect_pass(frame(f, base), "never configured");
    m.set_config(old);
    RunResult ok = run(frame(f, base));
    EXPECT_EQ(ok.verdict, Verdict::Answered) << "fresh stamp answers again";
}

TEST_P(PacketTest, DotInsideALabelIsNotTheDottedName) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    // One label "nginx.default" (13 bytes) then svc, global: a different DNS name.
    Bytes d = dns_query({});
    Bytes q(d.begin(), d.begin() + 12);
    const char *first = "nginx.default";
    q.push_back(13);
    q.insert(q.end(), first, first + 13);
    for (const char *l : {"svc", "global"}) {
        q.push_back(strlen(l));
        q.insert(q.end(), l, l + strlen(l));
    }
    q.insert(q.end(), {0, 0, 1, 0, 1});
    expect_pass(frame({}, q), "escaped dot");
}

TEST_P(PacketTest, TruncatedAtEveryOffsetPasses) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    for (bool v6 : {false, true}) {
        FrameOpts f;
        if (v6) f = {true, "fd00::2", "fd00::1"};
        Bytes full = frame(f, dns_query({.edns = true}));
        ASSERT_EQ(run(full).verdict, Verdict::Answered);
        for (size_t len = 14; len < full.size(); len++) {
            Bytes cut(full.begin(), full.begin() + len);
            try {
                run(cut);
            } catch (const loader::Error &) {
                // The skb test runner refuses frames shorter than their L3 header; XDP
                // covers those lengths.
                ASSERT_EQ(GetParam(), Mode::Tc) << "len " << len;
                continue;
            }
            expect_pass(cut, "truncated to " + std::to_string(len) + (v6 ? " (v6)" : ""));
        }
    }
}

TEST_P(PacketTest, CountersNameEveryVerdict) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    auto before = dp_->maps().stats();
    run(frame({}, dns_query({})));
    run(frame({}, dns_query({.name = "miss.default.svc.global"})));
    run(frame({.dport = 9}, dns_query({})));
    auto after = dp_->maps().stats();
    EXPECT_EQ(after[FABDNS_STAT_ANSWERED] - before[FABDNS_STAT_ANSWERED], 1u);
    EXPECT_EQ(after[FABDNS_STAT_MISS] - before[FABDNS_STAT_MISS], 1u);
    EXPECT_EQ(after[FABDNS_STAT_NOT_FOR_US] - before[FABDNS_STAT_NOT_FOR_US], 1u);
    // Hits are sampled per CPU: after FABDNS_HIT_SAMPLE hits on each CPU at least one sample
    // has been taken, wherever the runs were scheduled.
    const long cpus = sysconf(_SC_NPROCESSORS_CONF);
    for (long i = 0; i < FABDNS_HIT_SAMPLE * cpus; i++) run(frame({}, dns_query({})));
    auto v = dp_->maps().answers().lookup(maps::make_key("nginx.default.svc.global", 1));
    ASSERT_TRUE(v);
    EXPECT_GE(v->hits, uint64_t{FABDNS_HIT_SAMPLE});
    EXPECT_EQ(v->hits % FABDNS_HIT_SAMPLE, 0u);
}

// Each CPU keeps the last answer_for destination it found and trusts it while the listen map's
// generation holds: a destination removed right after hits on it is passed at once, and answered
// again once it is back.
TEST_P(PacketTest, AListenChangeIsSeenRightAfterHits) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    auto &m = dp_->maps();
    const std::vector<maps::ListenEntry> both = m.listen();
    const auto v4 = IpAddr::parse("10.0.0.1")->mapped16();
    std::vector<maps::ListenEntry> v6_only;
    for (const auto &e : both)
        if (e.addr != v4) v6_only.push_back(e);
    ASSERT_EQ(v6_only.size(), 1u);
    const Bytes q = frame({}, dns_query({}));
    const long cpus = sysconf(_SC_NPROCESSORS_CONF);
    for (long i = 0; i < 4 * cpus; i++) ASSERT_EQ(run(q).verdict, Verdict::Answered);

    const uint64_t gen = m.config().listen_gen;
    m.set_listen(v6_only);
    EXPECT_GT(m.config().listen_gen, gen);
    const auto before = m.stats();
    for (long i = 0; i < 4 * cpus; i++) expect_pass(q, "10.0.0.1 removed from answer_for");
    EXPECT_EQ(m.stats()[FABDNS_STAT_NOT_FOR_US] - before[FABDNS_STAT_NOT_FOR_US],
              uint64_t(4 * cpus));

    m.set_listen(both);
    EXPECT_EQ(run(q).verdict, Verdict::Answered);
}

// L2/L3 sanity and reflection (SPEC §4): what the stack would not answer is passed untouched,
// each under its own counter.
class SanityTest : public PacketTest {
  protected:
    // Every frame passes unchanged and is counted under `reason`.
    void expect_passed_as(const std::vector<std::pair<Bytes, std::string>> &frames,
                          fabdns_stat reason) {
        const auto before = dp_->maps().stats();
        for (const auto &[in, label] : frames) expect_pass(in, label);
        const auto after = dp_->maps().stats();
        EXPECT_EQ(after[reason] - before[reason], frames.size()) << maps::kStatNames[reason];
    }
    void listen_also_on_loopback() {
        std::vector<maps::ListenEntry> l = dp_->maps().listen();
        for (const char *a : {"127.0.0.1", "::1"}) {
            maps::ListenEntry e;
            e.addr = IpAddr::parse(a)->mapped16();
            e.port = 53;
            l.push_back(e);
        }
        dp_->maps().set_listen(l);
    }
};

TEST_P(SanityTest, GroupMacDestinationsPass) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    const Bytes dns = dns_query({});
    expect_passed_as(
        {{frame({.eth_dst = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, dns), "broadcast"},
         {frame({.eth_dst = {0x01, 0, 0x5e, 0, 0, 0xfb}}, dns), "IPv4 multicast"},
         {frame(
              {.v6 = true, .src = "fd00::2", .dst = "fd00::1", .eth_dst = {0x33, 0x33, 0, 0, 0, 1}},
              dns),
          "IPv6 multicast"}},
        FABDNS_STAT_GROUP_MAC);
    EXPECT_EQ(run(frame({}, dns)).verdict, Verdict::Answered) << "a unicast MAC is answered";
}

TEST_P(SanityTest, MartianMulticastAndBroadcastSourcesPass) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    const Bytes dns = dns_query({});
    std::vector<std::pair<Bytes, std::string>> frames;
    for (const char *src :
         {"0.0.0.0", "0.1.2.3", "224.0.0.251", "239.255.255.250", "255.255.255.255"})
        frames.push_back({frame({.src = src}, dns), src});
    for (const char *src : {"::", "ff02::fb", "ff05::1:3", "::ffff:10.0.0.2"})
        frames.push_back({frame({.v6 = true, .src = src, .dst = "fd00::1"}, dns), src});
    expect_passed_as(frames, FABDNS_STAT_BAD_ADDRESS);
    // Neighbours of those ranges are ordinary sources.
    for (const char *src : {"1.0.0.1", "223.255.255.254", "240.0.0.1"})
        EXPECT_EQ(run(frame({.src = src}, dns)).verdict, Verdict::Answered) << src;
}

TEST_P(SanityTest, LoopbackAddressesOffLoPass) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    listen_also_on_loopback();
    const Bytes dns = dns_query({});
    expect_passed_as({{frame({.src = "127.0.0.1"}, dns), "from 127.0.0.1"},
                      {frame({.src = "127.9.9.9"}, dns), "from 127.9.9.9"},
                      {frame({.dst = "127.0.0.1"}, dns), "to 127.0.0.1"},
                      {frame({.v6 = true, .src = "::1", .dst = "fd00::1"}, dns), "from ::1"},
                      {frame({.v6 = true, .src = "fd00::2", .dst = "::1"}, dns), "to ::1"}},
                     FABDNS_STAT_BAD_ADDRESS);
    // On lo itself (zero MACs; the XDP test runner delivers on lo) loopback is normal.
    if (GetParam() != Mode::Tc) {
        const Bytes zero(6, 0);
        for (bool v6 : {false, true}) {
            FrameOpts f{.eth_dst = zero, .eth_src = zero};
            f.v6 = v6;
            f.src = f.dst = v6 ? "::1" : "127.0.0.1";
            EXPECT_EQ(run(frame(f, dns)).verdict, Verdict::Answered) << f.src << " on lo";
        }
    }
}

TEST_P(SanityTest, V4MappedIpv6DestinationPasses) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    expect_passed_as(
        {{frame({.v6 = true, .src = "fd00::2", .dst = "::ffff:10.0.0.1"}, dns_query({})),
          "to ::ffff:10.0.0.1"}},
        FABDNS_STAT_V4_MAPPED);
}

TEST_P(SanityTest, ReflectionPortsPass) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    const Bytes dns = dns_query({});
    std::vector<std::pair<Bytes, std::string>> frames;
#define FABDNS_TEST_PORT_(p) frames.push_back({frame({.sport = p}, dns), "source port " #p});
    DNS_REFLECTION_PORT_LIST(FABDNS_TEST_PORT_)
#undef FABDNS_TEST_PORT_
    ASSERT_EQ(frames.size(), 6u);
    frames.push_back({frame({.v6 = true, .src = "fd00::2", .dst = "fd00::1", .sport = 19}, dns),
                      "chargen over IPv6"});
    expect_passed_as(frames, FABDNS_STAT_REFLECTION);
    for (uint16_t p : {1, 53, 1024, 65535})
        EXPECT_EQ(run(frame({.sport = p}, dns)).verdict, Verdict::Answered) << p;
}

TEST_P(SanityTest, EcnAndDscpAreNotCopiedIntoTheReply) {
    add("nginx.default.svc.global", LDNS_RR_TYPE_A, {"10.1.0.5"});
    const Bytes dns = dns_query({});
    for (uint8_t tos : {0x01, 0x02, 0x03, 0xb8, 0xbb}) {
        const Bytes v4 = frame({.tos = tos}, dns);
        RunResult r = run(v4);
        ASSERT_EQ(r.verdict, Verdict::Answered);
        EXPECT_TRUE(parse_reply(v4, r.out).ok);
        EXPECT_EQ(r.out[ETH_HLEN + 1], 0) << "IPv4 TOS of the reply to TOS " << int(tos);
        const Bytes v6 = frame({.v6 = true, .src = "fd00::2", .dst = "fd00::1", .tos = tos}, dns);
        r = run(v6);
        ASSERT_EQ(r.verdict, Verdict::Answered);
        EXPECT_TRUE(parse_reply(v6, r.out).ok);
        EXPECT_EQ(r.out[ETH_HLEN] & 0x0f, 0) << "IPv6 traffic class of the reply";
        EXPECT_EQ(r.out[ETH_HLEN + 1] & 0xf0, 0) << "IPv6 traffic class of the reply";
    }
}

INSTANTIATE_TEST_SUITE_P(Entries, SanityTest, ::testing::Values(Mode::XdpGeneric, Mode::Tc),
                         [](const auto &info) {
                             return std::string(info.param == Mode::Tc ? "tc" : "xdp");
                         });

// NODATA in the kernel: an IPv4-only and an IPv6-only service compiled from the engine into the
// map; the other family's query is answered in the kernel with the same bytes the resolver
// sends (rcode, AA, the zone's SOA with its serial in authority, OPT).
class NodataTest : public PacketTest {
  protected:
    void SetUp() override {
        PacketTest::SetUp();
        if (IsSkipped()) return;
        engine_ = std::make_unique<Engine>(
            testing::options({"beijing", "bj-a", "north"}, {"global", "edge.example"}, 30));
        engine_->set_services(
            {testing::service("mysql", "default",
                              {testing::endpoint("beijing", "bj-a", "north", {"10.1.0.7"})}),
             testing::service("v6only", "default",
                              {testing::endpoint("beijing", "bj-a", "north", {"fd00:1::7"})})});
        MapCompiler compiler(dp_->maps().answers());
        compiler.sync(*engine_);
    }

    // The kernel's reply to query q (must be answered), checked against the resolver's.
    Bytes expect_same_as_resolver(const QueryOpts &q, const FrameOpts &f) {
        const Bytes dns = dns_query(q);
        const Bytes in = frame(f, dns);
        const auto before = dp_->maps().stats();
        const RunResult r = run(in);
        const auto after = dp_->maps().stats();
        std::string reasons;
        for (size_t i = 0; i < FABDNS_STAT_MAX; i++)
            if (after[i] != before[i]) reasons += std::string(" ") + maps::kStatNames[i];
        EXPECT_EQ(r.verdict, Verdict::Answered) << q.name << " type " << q.qtype << ":" << reasons;
        if (r.verdict != Verdict::Answered) return {};
        Reply rep = parse_reply(in, r.out);
        EXPECT_TRUE(rep.ok) << rep.error;
        if (!rep.ok) return {};
        const fabdns::Reply user = respond(*engine_, dns, dns::Transport::Udp);
        EXPECT_EQ(rep.dns, user.bytes) << q.name << " type " << q.qtype;
        ldns_pkt *p = rep.pkt;
        EXPECT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        EXPECT_TRUE(ldns_pkt_aa(p));
        EXPECT_EQ(ldns_pkt_ancount(p), 0);
        EXPECT_EQ(ldns_pkt_nscount(p), 1);
        return rep.dns;
    }

    uint32_t soa_serial(const Bytes &reply) {
        // The serial is the first of the five 32-bit fields that end the SOA (before any OPT).
        ldns_pkt *p = nullptr;
        if (ldns_wire2pkt(&p, reply.data(), reply.size()) != LDNS_STATUS_OK) return 0;
        ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
        const uint32_t serial = ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
        ldns_pkt_free(p);
        return serial;
    }

    std::unique_ptr<Engine> engine_;
};

TEST_P(NodataTest, BothFamiliesEdnsAndCaseAreByteIdentical) {
    const FrameOpts v4, v6{true, "fd00::2", "fd00::1"};
    for (const char *name : {"mysql.default.svc.global", "MySQL.Default.SVC.global",
                             "mysql.default.edge.example", "beijing.mysql.default.svc.global"})
        for (bool edns : {false, true})
            for (const FrameOpts &f : {v4, v6}) {
                SCOPED_TRACE(std::string(name) + (edns ? " EDNS" : "") + (f.v6 ? " v6" : " v4"));
                expect_same_as_resolver(
                    {.name = name, .qtype = LDNS_RR_TYPE_AAAA, .edns = edns, .do_bit = edns}, f);
            }
    for (const char *name : {"v6only.default.svc.global", "V6ONLY.default.global"}) {
        SCOPED_TRACE(name);
        expect_same_as_resolver({.name = name, .qtype = LDNS_RR_TYPE_A, .rd = true}, v4);
    }
    // The positive halves are still answered.
    EXPECT_EQ(run(frame(v4, dns_query({.name = "mysql.default.svc.global"}))).verdict,
              Verdict::Answered);
}

TEST_P(NodataTest, ANewSerialIsOneWriteAndFollowsTheData) {
    const QueryOpts q{.name = "mysql.default.svc.global", .qtype = LDNS_RR_TYPE_AAAA};
    const Bytes before = expect_same_as_resolver(q, {});
    // Another service appears: the data and so the SOA serial change; mysql's NODATA entry
    // itself stays as it was.
    const auto held = dp_->maps().answers().lookup(maps::make_key(q.name, LDNS_RR_TYPE_AAAA));
    ASSERT_TRUE(held);
    engine_->set_services(
        {testing::service("mysql", "default",
                          {testing::endpoint("beijing", "bj-a", "north", {"10.1.0.7"})}),
         testing::service("redis", "default",
                          {testing::endpoint("beijing", "bj-a", "north", {"10.1.0.8"})})});
    MapCompiler compiler(dp_->maps().answers());
    const CompileStats st = compiler.sync(*engine_);
    const Bytes after = expect_same_as_resolver(q, {});
    EXPECT_NE(soa_serial(before), soa_serial(after));
    EXPECT_EQ(soa_serial(after), engine_->serial());
    const auto now = dp_->maps().answers().lookup(maps::make_key(q.name, LDNS_RR_TYPE_AAAA));
    ASSERT_TRUE(now);
    EXPECT_EQ(std::memcmp(now->rdata, held->rdata, sizeof(now->rdata)), 0);
    EXPECT_GE(st.updated, 2u) << "the zone entries of both zones";
}

TEST_P(NodataTest, PassedWhenTheReplyWouldNotFitOrTheZoneEntryIsGone) {
    // Without EDNS the limit is 512 bytes: a NODATA for a 253-character name still fits, so
    // make the client's limit the issue by removing the zone entry instead, and check that
    // NXDOMAIN and empty non-terminals stay in user space.
    expect_pass(frame({}, dns_query({.name = "nope.default.svc.global"})), "NXDOMAIN");
    expect_pass(frame({}, dns_query({.name = "default.svc.global", .qtype = LDNS_RR_TYPE_AAAA})),
                "empty non-terminal");
    dp_->maps().answers().erase(maps::zone_key("global"));
    const auto before = dp_->maps().stats();
    expect_pass(
        frame({}, dns_query({.name = "mysql.default.svc.global", .qtype = LDNS_RR_TYPE_AAAA})),
        "zone entry missing");
    EXPECT_EQ(dp_->maps().stats()[FABDNS_STAT_MISS] - before[FABDNS_STAT_MISS], 1u);
}

// Never a torn reply: the compiler flips one name between two address sets while two threads,
// one per CPU, query it through BPF_PROG_TEST_RUN; every reply carries exactly one set.
TEST_P(NodataTest, FlippingAnswersAreNeverTorn) {
    auto svc = [](std::initializer_list<const char *> addrs) {
        return testing::service("flip", "default",
                                {testing::endpoint("beijing", "bj-a", "north", addrs)});
    };
    const std::vector<GlobalService> sets[2] = {
        {svc({"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"})},
        {svc({"10.2.0.1", "10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6"})}};
    // Byte strings, not std::set<Bytes>: GCC 12 at -O3 warns (-Wstringop-overread) inside
    // vector<uint8_t>'s ordering.
    std::set<std::string> want[2];
    for (int i = 0; i < 2; i++)
        for (const auto &e : sets[i][0].endpoints)
            for (const auto &a : e.addresses)
                want[i].insert(std::string(a.bytes.begin(), a.bytes.begin() + 4));
    engine_->set_services(sets[0]);
    MapCompiler compiler(dp_->maps().answers());
    compiler.sync(*engine_);

    const Bytes in = frame({}, dns_query({.name = "flip.default.svc.global"}));
    std::atomic<bool> stop{false};
    std::atomic<size_t> replies{0}, torn{0}, other{0};
    std::atomic<size_t> seen[2] = {0, 0};
    const int fd = dp_->prog_fd(GetParam());
    auto query = [&](int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        while (!stop) {
            const auto r = loader::test_run(fd, in);
            Reply rep = parse_reply(in, r.out);
            if (!rep.ok) {
                other++;
                continue;
            }
            const auto rd = answer_rdata(rep.pkt);
            std::set<std::string> got;
            for (const Bytes &b : rd) got.insert(std::string(b.begin(), b.end()));
            replies++;
            if (got == want[0])
                seen[0]++;
            else if (got == want[1])
                seen[1]++;
            else
                torn++;
        }
    };
    const int cpus = std::min(2u, std::thread::hardware_concurrency());
    std::vector<std::thread> threads;
    for (int c = 0; c < cpus; c++) threads.emplace_back(query, c);
    size_t flips = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
        engine_->set_services(sets[++flips % 2]);
        compiler.sync(*engine_);
    }
    stop = true;
    for (auto &t : threads) t.join();
    EXPECT_EQ(torn.load(), 0u) << "of " << replies.load() << " replies, " << flips << " flips";
    EXPECT_EQ(other.load(), 0u) << "replies that were not answers";
    EXPECT_GT(flips, 20u) << "each flip waits for an RCU grace period";
    EXPECT_GT(seen[0].load(), 0u);
    EXPECT_GT(seen[1].load(), 0u);
    std::cout << "flips " << flips << ", replies " << replies.load() << " (set 1: " << seen[0]
              << ", set 2: " << seen[1] << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Entries, NodataTest, ::testing::Values(Mode::XdpGeneric, Mode::Tc),
                         [](const auto &info) {
                             return std::string(info.param == Mode::Tc ? "tc" : "xdp");
                         });

INSTANTIATE_TEST_SUITE_P(Entries, PacketTest, ::testing::Values(Mode::XdpGeneric, Mode::Tc),
                         [](const auto &info) {
                             return std::string(info.param == Mode::Tc ? "tc" : "xdp");
                         });

}  // namespace
}  // namespace fabdns::test
