// The resolver's reply writer against ldns: for a wide set of queries and size limits, the
// bytes dns::build_reply() writes must equal those ldns_pkt2buffer_wire() writes for the same
// reply (ldns compresses names the same way, case-insensitively, first spelling wins), with
// TC and dropped records chosen the same way. ldns is the independent reference here.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "resolver/respond.hpp"
#include "resolver/wire.hpp"
#include "support.hpp"

namespace fabdns::test {
namespace {

struct RrDeleter {
    void operator()(ldns_rr *r) const { ldns_rr_free(r); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrDeleter>;

// An engine record as an ldns RR: the owner from its text (ldns's own parser), the data split
// by ldns's descriptor so that names in it are compressed.
RrPtr ldns_record(const Record &rec) {
    RrPtr rr{ldns_rr_new()};
    ldns_rr_set_owner(rr.get(),
                      ldns_dname_new_frm_str(rec.owner.empty() ? "." : rec.owner.c_str()));
    ldns_rr_set_type(rr.get(), static_cast<ldns_rr_type>(rec.type));
    ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr.get(), rec.ttl);
    std::vector<uint8_t> framed(2 + rec.rdata.size());
    dns::write16(framed.data(), static_cast<uint16_t>(rec.rdata.size()));
    std::copy(rec.rdata.begin(), rec.rdata.end(), framed.begin() + 2);
    size_t pos = 0;
    EXPECT_EQ(ldns_wire2rdf(rr.get(), framed.data(), framed.size(), &pos), LDNS_STATUS_OK);
    return rr;
}

// The reply ldns writes for `spec`, shrinking it as build_reply() documents: answer records
// dropped from the end while the message exceeds the limit, then authority records.
std::vector<uint8_t> ldns_reply(const dns::ParsedQuery &q, const dns::ReplySpec &spec) {
    std::vector<RrPtr> answer, authority;
    if (spec.answer)
        for (const Record &r : *spec.answer) answer.push_back(ldns_record(r));
    if (spec.authority)
        for (const Record &r : *spec.authority) authority.push_back(ldns_record(r));

    auto wire = [&](size_t n_answer, size_t n_authority, bool tc) {
        PktPtr pkt{ldns_pkt_new()};
        ldns_pkt *p = pkt.get();
        ldns_pkt_set_id(p, q.id);
        ldns_pkt_set_qr(p, true);
        ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
        ldns_pkt_set_aa(p, spec.aa);
        ldns_pkt_set_tc(p, tc);
        ldns_pkt_set_rd(p, q.rd);
        ldns_pkt_set_cd(p, q.cd);
        const auto rcode = static_cast<uint16_t>(spec.rcode);
        ldns_pkt_set_rcode(p, static_cast<uint8_t>(rcode & 0x0f));
        if (q.edns) {
            ldns_pkt_set_edns_udp_size(p, dns::kEdnsPayload);
            ldns_pkt_set_edns_version(p, 0);
            ldns_pkt_set_edns_extended_rcode(p, static_cast<uint8_t>(rcode >> 4));
            ldns_pkt_set_edns_z(p, q.edns->do_bit ? dns::kOptTtlDo : 0);
        }
        if (q.question) {
            ldns_rr *question = ldns_rr_new();
            ldns_rr_set_owner(
                question, ldns_dname_new_frm_data(static_cast<uint16_t>(q.question->name.size()),
                                                  q.question->name.data()));
            ldns_rr_set_type(question, static_cast<ldns_rr_type>(q.question->qtype));
            ldns_rr_set_class(question, static_cast<ldns_rr_class>(q.question->qclass));
            ldns_rr_set_question(question, true);
            ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, question);
        }
        for (size_t i = 0; i < n_answer; i++)
            ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, ldns_rr_clone(answer[i].get()));
        for (size_t i = 0; i < n_authority; i++)
            ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, ldns_rr_clone(authority[i].get()));
        uint8_t *data = nullptr;
        size_t size = 0;
        EXPECT_EQ(ldns_pkt2wire(&data, p, &size), LDNS_STATUS_OK);
        std::vector<uint8_t> out(data, data + size);
        std::free(data);
        // ldns's opcode enum cannot hold every 4-bit value.
        out[dns::kOffFlags1] = static_cast<uint8_t>((out[dns::kOffFlags1] & ~dns::kMaskOpcode) |
                                                    (q.opcode << dns::kShiftOpcode));
        return out;
    };
    size_t n_answer = answer.size(), n_authority = authority.size();
    auto bytes = wire(n_answer, n_authority, false);
    if (bytes.size() <= spec.limit) return bytes;
    while (n_answer > 0 && (bytes = wire(n_answer, n_authority, true)).size() > spec.limit)
        --n_answer;
    while ((bytes = wire(n_answer, n_authority, true)).size() > spec.limit && n_authority > 0)
        --n_authority;
    return bytes;
}

QueryOptions edns(uint16_t payload) {
    QueryOptions o;
    o.edns_payload = payload;
    return o;
}

// Each query through respond() and through ldns, with the engine's answer as respond() gets it.
void expect_same(const Engine &engine, const std::vector<uint8_t> &query, dns::Transport t) {
    const dns::ParsedQuery q = dns::parse_query(query);
    const Reply reply = respond(engine, query, t);
    if (reply.action != Reply::Action::Reply) return;
    dns::ReplySpec spec{.rcode = reply.rcode};
    Answer a;
    if (q.status == dns::ParsedQuery::Status::Ok && reply.in_zone &&
        reply.rcode != Rcode::BadVers) {
        engine.resolve(dns::name_to_text(q.question->name), q.question->qtype, q.question->qclass,
                       a);
        spec = {.rcode = a.rcode,
                .aa = a.authoritative,
                .answer = &a.answer,
                .authority = &a.authority,
                .limit = t == dns::Transport::Udp ? dns::udp_limit(q.edns) : dns::kTcpLimit};
    }
    EXPECT_EQ(reply.bytes, ldns_reply(q, spec))
        << (q.question ? dns::name_to_text(q.question->name) : "(no question)") << " type "
        << (q.question ? q.question->qtype : 0) << " size " << reply.bytes.size();
}

TEST(ReplyBytes, EqualLdnsForManyQueries) {
    EngineOptions zones = sample_engine_options();
    // "dns": its SOA's MNAME ns.dns.dns repeats a label, which must not be compressed into itself.
    zones.zones = {"global", "cluster.global", "Example.Org.", "dns"};
    zones.ttl = 30;
    Engine two_zones(zones);
    two_zones.set_services(sample_services());
    const Engine no_data(sample_engine_options());
    const auto sample = sample_engine();

    const std::vector<std::string> names = {"nginx.default.svc.global.",
                                            "NgInX.DeFault.SVC.Global.",
                                            "nginx.default.global.",
                                            "db.default.svc.global.",
                                            "DB.default.svc.GLOBAL.",
                                            "db-7.beijing.db.default.svc.global.",
                                            "beijing.db.default.svc.global.",
                                            "db.default.beijing.global.",
                                            "global.",
                                            "GLOBAL.",
                                            "ns.dns.global.",
                                            "NS.Dns.Global.",
                                            "hostmaster.global.",
                                            "x.dns.global.",
                                            "svc.global.",
                                            "default.svc.global.",
                                            "nope.default.svc.global.",
                                            "a.b.c.d.e.f.g.h.cluster.global.",
                                            "cluster.global.",
                                            "x.example.org.",
                                            "example.org.",
                                            "example.com.",
                                            "nope.dns.",
                                            "dns.",
                                            ".",
                                            "a\\.b.global.",
                                            "a\\000b.global.",
                                            std::string(60, 'x') + "." + std::string(60, 'y') +
                                                "." + std::string(60, 'z') + ".global."};
    const std::vector<uint16_t> types = {dnstype::A,    dnstype::AAAA, dnstype::SOA,
                                         dnstype::NS,   dnstype::ANY,  15,
                                         dnstype::AXFR, dnstype::IXFR, 16};
    std::vector<QueryOptions> variants(1);
    for (uint16_t payload : {0, 512, 600, 1232, 4096})
        for (bool do_bit : {false, true}) {
            QueryOptions &v = variants.emplace_back();
            v.cd = v.do_bit = do_bit;
            v.edns_payload = payload;
        }
    variants.emplace_back(edns(1232)).edns_version = 1;
    QueryOptions &chaos = variants.emplace_back();
    chaos.rd = false;
    chaos.qclass = 3;
    variants.emplace_back(edns(1232)).qclass = 255;

    size_t compared = 0;
    for (const Engine *engine : std::vector<const Engine *>{sample.get(), &two_zones, &no_data})
        for (const auto &name : names)
            for (uint16_t type : types)
                for (const auto &v : variants)
                    for (auto t : {dns::Transport::Udp, dns::Transport::Tcp}) {
                        expect_same(*engine, make_query(name, type, v), t);
                        ++compared;
                    }
    EXPECT_GT(compared, 10000u);
}

TEST(ReplyBytes, EqualLdnsForErrorsAndOddHeaders) {
    const auto engine = sample_engine();
    auto query = make_query("nginx.default.svc.global.", dnstype::A, edns(1232));
    for (uint8_t opcode = 0; opcode < 16; ++opcode) {
        auto q = query;
        q[dns::kOffFlags1] = static_cast<uint8_t>((q[dns::kOffFlags1] & ~dns::kMaskOpcode) |
                                                  (opcode << dns::kShiftOpcode));
        expect_same(*engine, q, dns::Transport::Udp);
    }
    auto trailing = query;
    trailing.push_back(0);
    expect_same(*engine, trailing, dns::Transport::Udp);  // FORMERR with the question
    auto no_question = query;
    dns::write16(no_question.data() + dns::kOffQdCount, 0);
    expect_same(*engine, no_question, dns::Transport::Udp);  // FORMERR without one
}

// Every limit from a bare header up: TC and the records kept must match, also for a reply
// with both answer and authority records (which the engine does not produce today) whose
// authority names point into the answer.
TEST(ReplyBytes, TruncationEqualsLdnsAtEveryLimit) {
    const auto engine = sample_engine();
    for (const char *name : {"db.default.svc.global.", "nope.global.", "global."}) {
        for (uint16_t type : {dnstype::A, dnstype::AAAA, dnstype::NS}) {
            for (const auto &v : {QueryOptions{}, edns(1232)}) {
                const auto query = make_query(name, type, v);
                const dns::ParsedQuery q = dns::parse_query(query);
                const Answer a = engine->resolve(dns::name_to_text(q.question->name), type);
                const Answer soa = engine->resolve("global", dnstype::SOA);
                std::vector<Record> authority = a.authority;
                authority.insert(authority.end(), soa.answer.begin(), soa.answer.end());
                for (size_t limit = dns::kHeaderSize; limit < 1300; limit += limit < 160 ? 1 : 11) {
                    for (const auto *auth :
                         {&a.authority, static_cast<const std::vector<Record> *>(&authority)}) {
                        const dns::ReplySpec spec{.rcode = a.rcode,
                                                  .aa = true,
                                                  .answer = &a.answer,
                                                  .authority = auth,
                                                  .limit = limit};
                        const auto built = dns::build_reply(q, spec);
                        const auto want = ldns_reply(q, spec);
                        ASSERT_EQ(built.bytes, want) << name << " " << type << " limit " << limit;
                        EXPECT_EQ(built.truncated, (want[dns::kOffFlags1] & dns::kFlagTC) != 0);
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace fabdns::test
