// Unit tests of respond(): every rule the user-space resolver shares with the kernel datapath,
// on real ldns-built queries.
#include "resolver/respond.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "support.hpp"

namespace fabdns {
namespace {

using test::make_query;
using test::parse;
using test::QueryOptions;

class RespondTest : public ::testing::Test {
  protected:
    void SetUp() override { engine_ = test::sample_engine(); }

    Reply ask(const std::vector<uint8_t> &query, Transport t = Transport::Udp,
              RespondOptions o = {}) {
        return respond(*engine_, query, t, o);
    }
    Reply ask(const std::string &name, uint16_t type, const QueryOptions &q = {},
              Transport t = Transport::Udp) {
        return ask(make_query(name, type, q), t);
    }

    std::unique_ptr<Engine> engine_;
};

std::vector<uint8_t> question_bytes(const std::vector<uint8_t> &query) {
    // Everything after the header of a query without additional records.
    return {query.begin() + dns::kHeaderSize, query.end()};
}

TEST_F(RespondTest, AAnswerHasTheKernelWireLayout) {
    const auto query = make_query("nginx.default.svc.global.", dnstype::A);
    const Reply r = ask(query);
    ASSERT_EQ(r.action, Reply::Action::Reply);
    std::vector<uint8_t> expected = {0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0};
    const auto q = question_bytes(query);
    expected.insert(expected.end(), q.begin(), q.end());
    // Owner is a pointer at the question (offset 12), class IN, TTL 5, 4 bytes of address.
    const std::vector<uint8_t> rr = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 5};
    expected.insert(expected.end(), rr.begin(), rr.end());
    EXPECT_EQ(r.bytes, expected);
    EXPECT_EQ(r.rcode, Rcode::NoError);
    EXPECT_TRUE(r.in_zone);
    EXPECT_TRUE(r.has_addresses);
    EXPECT_EQ(r.qname, "nginx.default.svc.global");
    EXPECT_FALSE(r.truncated);
}

TEST_F(RespondTest, AAnswerWithEdnsHasTheKernelWireLayout) {
    QueryOptions o;
    o.edns_payload = 4096;
    o.do_bit = true;
    o.id = 0xbeef;
    const auto query = make_query("nginx.default.svc.global.", dnstype::A, o);
    const Reply r = ask(query);
    ASSERT_EQ(r.action, Reply::Action::Reply);
    ASSERT_GE(r.bytes.size(), 11u);
    // ARCOUNT 1, and the OPT at the end: root owner, type 41, class 1232, ext-rcode 0,
    // version 0, DO set, no rdata.
    EXPECT_EQ(r.bytes[10], 0);
    EXPECT_EQ(r.bytes[11], 1);
    const std::vector<uint8_t> opt = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0};
    EXPECT_TRUE(std::equal(opt.begin(), opt.end(), r.bytes.end() - 11));
    EXPECT_EQ(r.bytes[0], 0xbe);
    EXPECT_EQ(r.bytes[1], 0xef);
}

TEST_F(RespondTest, AnswersA) {
    const Reply r = ask("nginx.default.svc.global.", dnstype::A);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_TRUE(ldns_pkt_rd(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ra(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ad(pkt.get()));
    EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});
    const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    EXPECT_EQ(ldns_rr_ttl(rr), 5u);
    EXPECT_EQ(ldns_pkt_arcount(pkt.get()), 0);
    EXPECT_FALSE(ldns_pkt_edns(pkt.get()));
}

TEST_F(RespondTest, AnswersAaaaFromTheFirstTierWithIpv6) {
    const Reply r = ask("nginx.default.svc.global.", dnstype::AAAA);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"fd00::5"});
    EXPECT_TRUE(r.has_addresses);
}

TEST_F(RespondTest, ShortAndClusterFormsAnswer) {
    auto pkt = parse(ask("nginx.default.global.", dnstype::A).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});
    pkt = parse(ask("shanghai.nginx.default.svc.global.", dnstype::A).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.1.0.5"});
}

TEST_F(RespondTest, NodataHasSoaInAuthority) {
    const Reply r = ask("nginx.default.svc.global.", LDNS_RR_TYPE_TXT);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
    ASSERT_EQ(ldns_pkt_nscount(pkt.get()), 1);
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(pkt.get()), 0);
    EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    EXPECT_EQ(test::rdf_text(ldns_rr_owner(soa)), "global.");
    EXPECT_EQ(test::rdf_text(ldns_rr_rdf(soa, 0)), "ns.dns.global.");
    EXPECT_EQ(test::rdf_text(ldns_rr_rdf(soa, 1)), "hostmaster.global.");
    EXPECT_FALSE(r.has_addresses);
}

TEST_F(RespondTest, EmptyNonTerminalIsNodata) {
    auto pkt = parse(ask("default.svc.global.", dnstype::A).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
    EXPECT_EQ(ldns_pkt_nscount(pkt.get()), 1);
}

TEST_F(RespondTest, NxdomainHasSoaInAuthority) {
    const Reply r = ask("nope.default.svc.global.", dnstype::A);
    EXPECT_EQ(r.rcode, Rcode::NxDomain);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    ASSERT_EQ(ldns_pkt_nscount(pkt.get()), 1);
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(pkt.get()), 0);
    EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    EXPECT_EQ(test::rdf_text(ldns_rr_owner(soa)), "global.");
}

TEST_F(RespondTest, PodNameOnClusterIpServiceIsNxdomain) {
    const Reply r = ask("web-0.beijing.nginx.default.svc.global.", dnstype::A);
    EXPECT_EQ(r.rcode, Rcode::NxDomain);
}

TEST_F(RespondTest, HeadlessPodNameAnswers) {
    auto pkt = parse(ask("db-7.beijing.db.default.svc.global.", dnstype::A).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.2.0.8"});
}

TEST_F(RespondTest, SoaAndNsAtApex) {
    auto pkt = parse(ask("global.", dnstype::SOA).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    ASSERT_EQ(ldns_pkt_ancount(pkt.get()), 1);
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    EXPECT_EQ(ldns_rr_rd_count(soa), 7u);
    EXPECT_EQ(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), 5u);  // minimum = ttl

    pkt = parse(ask("global.", dnstype::NS).bytes);
    ASSERT_TRUE(pkt);
    ASSERT_EQ(ldns_pkt_ancount(pkt.get()), 1);
    const ldns_rr *ns = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    EXPECT_EQ(ldns_rr_get_type(ns), LDNS_RR_TYPE_NS);
    EXPECT_EQ(test::rdf_text(ldns_rr_rdf(ns, 0)), "ns.dns.global.");
}

TEST_F(RespondTest, KeepsTheQueryCase) {
    const std::string name = "NgInX.DeFaulT.sVc.GLOBAL.";
    const auto query = make_query(name, dnstype::A);
    const Reply r = ask(query);
    ASSERT_EQ(r.action, Reply::Action::Reply);
    // The question is the client's bytes.
    const auto q = question_bytes(query);
    ASSERT_GE(r.bytes.size(), dns::kHeaderSize + q.size());
    EXPECT_TRUE(std::equal(q.begin(), q.end(), r.bytes.begin() + dns::kHeaderSize));
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    ASSERT_TRUE(rr);
    EXPECT_EQ(test::rdf_text(ldns_rr_owner(rr)), name);
    EXPECT_EQ(r.qname, "nginx.default.svc.global");
}

TEST_F(RespondTest, CopiesRdAndCdButNotAd) {
    QueryOptions o;
    o.rd = false;
    o.cd = true;
    o.ad = true;
    auto pkt = parse(ask("nginx.default.svc.global.", dnstype::A, o).bytes);
    ASSERT_TRUE(pkt);
    EXPECT_FALSE(ldns_pkt_rd(pkt.get()));
    EXPECT_TRUE(ldns_pkt_cd(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ad(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ra(pkt.get()));
}

TEST_F(RespondTest, EdnsGetsOptWithDoCopied) {
    for (const bool do_bit : {false, true}) {
        QueryOptions o;
        o.edns_payload = 4096;
        o.do_bit = do_bit;
        auto pkt = parse(ask("nginx.default.svc.global.", dnstype::A, o).bytes);
        ASSERT_TRUE(pkt);
        EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
        EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.get()), 1232);
        EXPECT_EQ(ldns_pkt_edns_version(pkt.get()), 0);
        EXPECT_EQ(ldns_pkt_edns_do(pkt.get()), do_bit);
        EXPECT_EQ(ldns_pkt_edns_data(pkt.get()), nullptr);
        EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});
    }
}

TEST_F(RespondTest, CookieOptionIsIgnored) {
    QueryOptions o;
    o.edns_payload = 1232;
    o.edns_options = test::cookie_option();
    const Reply r = ask("nginx.default.svc.global.", dnstype::A, o);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});
    // OPT without options: the last 2 bytes (its RDLENGTH) are zero.
    ASSERT_GE(r.bytes.size(), 2u);
    EXPECT_EQ(r.bytes[r.bytes.size() - 1], 0);
    EXPECT_EQ(r.bytes[r.bytes.size() - 2], 0);
    EXPECT_EQ(ldns_pkt_edns_data(pkt.get()), nullptr);
}

TEST_F(RespondTest, UnknownEdnsVersionIsBadvers) {
    QueryOptions o;
    o.edns_payload = 1232;
    o.edns_version = 1;
    o.do_bit = true;
    const auto query = make_query("nginx.default.svc.global.", dnstype::A, o);
    const Reply r = ask(query);
    ASSERT_EQ(r.action, Reply::Action::Reply);
    EXPECT_EQ(r.rcode, Rcode::BadVers);
    // Header rcode 0; OPT: ext-rcode 1, version 0, DO copied. No answer, question echoed.
    EXPECT_EQ(r.bytes[3] & 0x0f, 0);
    EXPECT_EQ(r.bytes[6], 0);
    EXPECT_EQ(r.bytes[7], 0);
    const std::vector<uint8_t> opt = {0, 0, 41, 0x04, 0xd0, 1, 0, 0x80, 0, 0, 0};
    EXPECT_TRUE(std::equal(opt.begin(), opt.end(), r.bytes.end() - 11));
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    EXPECT_EQ(ldns_pkt_edns_extended_rcode(pkt.get()), 1);
}

TEST_F(RespondTest, HeadlessServiceTruncatedOverUdpWithoutEdns) {
    const Reply r = ask("db.default.svc.global.", dnstype::A);
    ASSERT_EQ(r.action, Reply::Action::Reply);
    EXPECT_TRUE(r.truncated);
    EXPECT_LE(r.bytes.size(), 512u);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
    EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    // As many whole records as fit: one more would not.
    const size_t n = ldns_pkt_ancount(pkt.get());
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, 60u);
    EXPECT_GT(r.bytes.size() + 16, 512u);
}

TEST_F(RespondTest, HeadlessServiceOverUdpWithEdns) {
    QueryOptions o;
    o.edns_payload = 4096;
    // 60 A records fit in 1232 bytes.
    Reply r = ask("db.default.svc.global.", dnstype::A, o);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
    EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 60);

    // 60 AAAA records do not: the limit is 1232 even though the client takes 4096, and the
    // OPT stays.
    r = ask("db.default.svc.global.", dnstype::AAAA, o);
    EXPECT_TRUE(r.truncated);
    EXPECT_LE(r.bytes.size(), 1232u);
    EXPECT_GT(r.bytes.size() + 28, 1232u);
    pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
    EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
    EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.get()), 1232);
    EXPECT_LT(ldns_pkt_ancount(pkt.get()), 60);

    // A client payload size below 1232 is honoured; below 512 counts as 512.
    o.edns_payload = 600;
    r = ask("db.default.svc.global.", dnstype::A, o);
    EXPECT_TRUE(r.truncated);
    EXPECT_LE(r.bytes.size(), 600u);
    EXPECT_GT(r.bytes.size(), 512u);
    o.edns_payload = 100;
    r = ask("db.default.svc.global.", dnstype::A, o);
    EXPECT_TRUE(r.truncated);
    EXPECT_LE(r.bytes.size(), 512u);
    EXPECT_GT(r.bytes.size() + 16, 512u);
}

TEST_F(RespondTest, HeadlessServiceWholeOverTcp) {
    for (const uint16_t type : {dnstype::A, dnstype::AAAA}) {
        const Reply r = ask("db.default.svc.global.", type, {}, Transport::Tcp);
        EXPECT_FALSE(r.truncated);
        auto pkt = parse(r.bytes);
        ASSERT_TRUE(pkt);
        EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
        EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 60);
    }
}

TEST_F(RespondTest, OutsideZonesIsRefusedWithoutUpstream) {
    const Reply r = ask("www.example.com.", dnstype::A);
    EXPECT_FALSE(r.in_zone);
    EXPECT_EQ(r.rcode, Rcode::Refused);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
    EXPECT_FALSE(ldns_pkt_aa(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ra(pkt.get()));
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
}

TEST_F(RespondTest, OutsideZonesIsForwardedWithUpstream) {
    QueryOptions q;
    q.edns_payload = 4096;
    const Reply r = ask(make_query("www.example.com.", dnstype::A, q), Transport::Udp,
                        RespondOptions{.forward = true});
    EXPECT_EQ(r.action, Reply::Action::Forward);
    EXPECT_TRUE(r.bytes.empty());
    EXPECT_EQ(r.udp_limit, 1232u);  // a relayed answer is capped like ours (SPEC §4)
    // In-zone names are still answered here.
    EXPECT_EQ(ask(make_query("nginx.default.svc.global.", dnstype::A), Transport::Udp,
                  RespondOptions{.forward = true})
                  .action,
              Reply::Action::Reply);
}

TEST_F(RespondTest, OtherClassesAndTransfersAreRefused) {
    QueryOptions o;
    o.qclass = LDNS_RR_CLASS_CH;
    Reply r = ask("nginx.default.svc.global.", dnstype::A, o);
    EXPECT_EQ(r.rcode, Rcode::Refused);
    r = ask("global.", LDNS_RR_TYPE_AXFR, {}, Transport::Tcp);
    EXPECT_EQ(r.rcode, Rcode::Refused);
    auto pkt = parse(r.bytes);
    ASSERT_TRUE(pkt);
    EXPECT_FALSE(ldns_pkt_aa(pkt.get()));
}

TEST_F(RespondTest, GarbageIsDropped) {
    EXPECT_EQ(ask(std::vector<uint8_t>{}).action, Reply::Action::Drop);
    EXPECT_EQ(ask(std::vector<uint8_t>(11, 0)).action, Reply::Action::Drop);
    // A response (QR=1) is never answered, whatever follows.
    auto response = make_query("nginx.default.svc.global.", dnstype::A);
    response[2] |= 0x80;
    EXPECT_EQ(ask(response).action, Reply::Action::Drop);
}

// Checks a FORMERR reply: ID, opcode and RD echoed, QR set, rcode 1.
void expect_formerr(const Reply &r, uint16_t id, bool question_echoed) {
    ASSERT_EQ(r.action, Reply::Action::Reply);
    EXPECT_EQ(r.rcode, Rcode::FormErr);
    ASSERT_GE(r.bytes.size(), dns::kHeaderSize);
    EXPECT_EQ(dns::read16(r.bytes.data()), id);
    EXPECT_TRUE(r.bytes[2] & dns::kFlagQR);
    EXPECT_TRUE(r.bytes[2] & dns::kFlagRD);
    EXPECT_FALSE(r.bytes[2] & dns::kFlagAA);
    EXPECT_EQ(r.bytes[3] & 0x0f, 1);
    EXPECT_EQ(dns::read16(r.bytes.data() + 4), question_echoed ? 1 : 0);
    EXPECT_EQ(dns::read16(r.bytes.data() + 6), 0);
}

TEST_F(RespondTest, FormerrCases) {
    const auto good = make_query("nginx.default.svc.global.", dnstype::A);

    auto no_question = std::vector<uint8_t>(good.begin(), good.begin() + 12);
    no_question[5] = 0;  // QDCOUNT 0
    expect_formerr(ask(no_question), 0x1234, false);

    auto two = good;
    two[5] = 2;  // QDCOUNT 2, one question present
    expect_formerr(ask(two), 0x1234, false);

    auto bad_label = good;
    bad_label[12] = 60;  // first label runs past the message
    expect_formerr(ask(bad_label), 0x1234, false);

    auto pointer = std::vector<uint8_t>(good.begin(), good.begin() + 12);
    for (uint8_t b : {0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01}) pointer.push_back(b);
    expect_formerr(ask(pointer), 0x1234, false);

    auto junk = good;
    junk.push_back(0);
    expect_formerr(ask(junk), 0x1234, true);

    auto answer_count = good;
    answer_count[7] = 1;
    expect_formerr(ask(answer_count), 0x1234, true);

    auto truncated_question = std::vector<uint8_t>(good.begin(), good.end() - 2);
    expect_formerr(ask(truncated_question), 0x1234, false);
}

TEST_F(RespondTest, FormerrForBadOpt) {
    QueryOptions o;
    o.edns_payload = 1232;
    const auto with_opt = make_query("nginx.default.svc.global.", dnstype::A, o);
    const std::vector<uint8_t> opt(with_opt.end() - 11, with_opt.end());

    // Two OPT records.
    auto two = with_opt;
    two.insert(two.end(), opt.begin(), opt.end());
    two[11] = 2;
    Reply r = ask(two);
    expect_formerr(r, 0x1234, true);
    EXPECT_EQ(dns::read16(r.bytes.data() + 10), 0);  // no OPT in the reply

    // OPT owned by a name other than the root.
    auto not_root = std::vector<uint8_t>(with_opt.begin(), with_opt.end() - 11);
    not_root.insert(not_root.end(), {1, 'x', 0});
    not_root.insert(not_root.end(), opt.begin() + 1, opt.end());
    expect_formerr(ask(not_root), 0x1234, true);

    // An option whose length runs past the OPT rdata.
    auto bad_option = std::vector<uint8_t>(with_opt.begin(), with_opt.end() - 2);
    for (uint8_t b : {0, 4, 0, 10, 0, 8}) bad_option.push_back(b);  // RDLENGTH 4, option len 8
    bad_option.insert(bad_option.end(), {0, 0});
    expect_formerr(ask(bad_option), 0x1234, true);

    // OPT record cut short.
    auto cut = std::vector<uint8_t>(with_opt.begin(), with_opt.end() - 3);
    expect_formerr(ask(cut), 0x1234, true);
}

TEST_F(RespondTest, FormerrKeepsOptWhenItWasFine) {
    QueryOptions o;
    o.edns_payload = 1232;
    auto q = make_query("nginx.default.svc.global.", dnstype::A, o);
    q.push_back(0xff);  // trailing junk after a good OPT
    const Reply r = ask(q);
    expect_formerr(r, 0x1234, true);
    EXPECT_EQ(dns::read16(r.bytes.data() + 10), 1);
}

TEST_F(RespondTest, OtherOpcodesAreNotImplemented) {
    for (const uint8_t opcode : {1, 2, 4, 5, 15}) {
        auto q = make_query("nginx.default.svc.global.", dnstype::SOA);
        q[2] = static_cast<uint8_t>((q[2] & ~0x78) | (opcode << 3));
        const Reply r = ask(q);
        ASSERT_EQ(r.action, Reply::Action::Reply);
        EXPECT_EQ(r.rcode, Rcode::NotImp);
        EXPECT_EQ((r.bytes[2] & 0x78) >> 3, opcode);
        EXPECT_TRUE(r.bytes[2] & dns::kFlagQR);
        EXPECT_EQ(r.bytes[3] & 0x0f, 4);
        EXPECT_EQ(dns::read16(r.bytes.data()), 0x1234);
        EXPECT_EQ(dns::read16(r.bytes.data() + 4), 1);
    }
}

TEST_F(RespondTest, OddLabelBytesNeverMatchAService) {
    // "nginx.default" as ONE label containing a dot: must not be taken for two labels.
    std::vector<uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    const std::string label = "nginx.default";
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    for (const char *l : {"svc", "global"}) {
        q.push_back(static_cast<uint8_t>(std::strlen(l)));
        q.insert(q.end(), l, l + std::strlen(l));
    }
    q.insert(q.end(), {0, 0, 1, 0, 1});
    const Reply r = ask(q);
    EXPECT_EQ(r.rcode, Rcode::NxDomain);
    EXPECT_EQ(r.qname, "nginx\\046default.svc.global");
}

TEST_F(RespondTest, InZoneNamesAreServfailUntilTheFirstDataSet) {
    // A daemon that has not synced yet knows no names: NXDOMAIN would be cached downstream
    // and contradict the kernel still answering from the previous daemon's pinned maps.
    Engine fresh(test::sample_engine_options());
    for (const char *name : {"nginx.default.svc.global", "nope.default.svc.global", "global"}) {
        const Reply r = respond(fresh, make_query(name, dnstype::A), Transport::Udp, {});
        ASSERT_EQ(r.action, Reply::Action::Reply) << name;
        EXPECT_EQ(r.rcode, Rcode::ServFail) << name;
        EXPECT_TRUE(r.in_zone) << name;
        EXPECT_FALSE(r.bytes[2] & 0x04) << name;  // not authoritative
    }
    // Outside the zones nothing changes.
    EXPECT_EQ(respond(fresh, make_query("example.com", dnstype::A), Transport::Udp, {}).rcode,
              Rcode::Refused);
    // An empty data set is data: from then on a missing name is NXDOMAIN.
    fresh.set_services({});
    EXPECT_TRUE(fresh.has_data());
    EXPECT_EQ(
        respond(fresh, make_query("nope.default.svc.global", dnstype::A), Transport::Udp, {}).rcode,
        Rcode::NxDomain);
}

TEST_F(RespondTest, RootQueryIsOutsideTheZones) {
    const Reply r = ask(".", dnstype::NS);
    EXPECT_FALSE(r.in_zone);
    EXPECT_EQ(r.rcode, Rcode::Refused);
}

}  // namespace
}  // namespace fabdns
