// Unit tests of the resolver's wire helpers: size limits, name text, upstream reply
// matching, SERVFAIL construction.
#include "resolver/wire.hpp"

#include <gtest/gtest.h>

#include "support.hpp"

namespace fabdns {
namespace {

using test::parse;
using test::QueryOptions;

TEST(WireTest, UdpLimit) {
    EXPECT_EQ(dns::udp_limit(std::nullopt), 512u);
    EXPECT_EQ(dns::udp_limit(dns::Edns{100, 0, false}), 512u);
    EXPECT_EQ(dns::udp_limit(dns::Edns{700, 0, false}), 700u);
    EXPECT_EQ(dns::udp_limit(dns::Edns{4096, 0, false}), 1232u);
}

TEST(WireTest, NameToText) {
    const std::vector<uint8_t> name = {3, 'F', 'o', 'O', 2, 'a', ' ', 0};
    EXPECT_EQ(dns::name_to_text(name), "foo.a\\032");
    EXPECT_EQ(dns::name_to_text(std::vector<uint8_t>{0}), "");
}

TEST(WireTest, ReplyMatchesAndTruncatedCopy) {
    const auto query = test::make_query("www.Example.test.", LDNS_RR_TYPE_A);
    auto reply = test::make_query("www.example.TEST.", LDNS_RR_TYPE_A);
    reply[2] |= 0x80;
    EXPECT_TRUE(dns::reply_matches(query, reply));
    auto other_id = reply;
    other_id[0] ^= 1;
    EXPECT_FALSE(dns::reply_matches(query, other_id));
    EXPECT_FALSE(dns::reply_matches(query, query));  // not a response
    auto other_type = test::make_query("www.example.test.", LDNS_RR_TYPE_AAAA);
    other_type[2] |= 0x80;
    EXPECT_FALSE(dns::reply_matches(query, other_type));
    // Exactly one question, or it answers nothing we asked: a header alone (QDCOUNT 0), or
    // the question twice (QDCOUNT 2).
    auto no_question = reply;
    no_question.resize(dns::kHeaderSize);
    no_question[4] = no_question[5] = 0;
    EXPECT_FALSE(dns::reply_matches(query, no_question));
    auto two_questions = reply;
    two_questions.insert(two_questions.end(), reply.begin() + dns::kHeaderSize, reply.end());
    two_questions[5] = 2;
    EXPECT_FALSE(dns::reply_matches(query, two_questions));

    const auto cut = dns::truncated_copy(reply);
    EXPECT_EQ(cut.size(), reply.size());
    EXPECT_TRUE(cut[2] & dns::kFlagTC);
    EXPECT_EQ(dns::read16(cut.data() + 4), 1);
}

TEST(WireTest, ServfailEchoesTheQuestion) {
    QueryOptions o;
    o.edns_payload = 1232;
    const auto query = test::make_query("www.example.test.", LDNS_RR_TYPE_A, o);
    const auto fail = dns::servfail_for(query);
    ASSERT_TRUE(fail);
    auto pkt = parse(*fail);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0x1234);
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
    EXPECT_FALSE(dns::servfail_for(std::vector<uint8_t>(5, 0)));
}

}  // namespace
}  // namespace fabdns
