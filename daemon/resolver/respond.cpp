// respond(): one query in, the resolver's action and reply bytes out. No I/O, no state.
#include "resolver/respond.hpp"

#include <algorithm>
#include <exception>

namespace fabdns {
namespace {

Reply make(const dns::ParsedQuery &q, const dns::ReplySpec &spec) {
    Reply r;
    auto built = dns::build_reply(q, spec);
    r.action = Reply::Action::Reply;
    r.bytes = std::move(built.bytes);
    r.truncated = built.truncated;
    r.rcode = spec.rcode;
    return r;
}

}  // namespace

Reply respond(const Engine &engine, std::span<const uint8_t> query, Transport transport,
              const RespondOptions &options) {
    using Status = dns::ParsedQuery::Status;
    const dns::ParsedQuery q = dns::parse_query(query);
    switch (q.status) {
        case Status::Drop:
            return {};
        case Status::NotImp:
            return make(q, {.rcode = Rcode::NotImp});
        case Status::FormErr:
            return make(q, {.rcode = Rcode::FormErr});
        case Status::Ok:
            break;
    }
    if (q.edns && q.edns->version > 0) return make(q, {.rcode = Rcode::BadVers});

    const dns::Question &question = *q.question;
    std::string qname = dns::name_to_text(question.name);
    const size_t limit = transport == Transport::Udp ? dns::udp_limit(q.edns) : dns::kTcpLimit;
    try {
        // Reused per thread: the engine refills it without reallocating on the hot path.
        thread_local Answer answer;
        engine.resolve(qname, question.qtype, question.qclass, answer);
        Reply r;
        if (!answer.in_zone) {
            if (options.forward) {
                r.action = Reply::Action::Forward;
            } else {
                r = make(q, {.rcode = Rcode::Refused});
            }
        } else {
            r = make(q, {.rcode = answer.rcode,
                         .aa = answer.authoritative,
                         .answer = &answer.answer,
                         .authority = &answer.authority,
                         .limit = limit});
            r.in_zone = true;
            r.has_addresses = (question.qtype == dnstype::A || question.qtype == dnstype::AAAA) &&
                              answer.rcode == Rcode::NoError && !answer.answer.empty();
        }
        r.qtype = question.qtype;
        r.qname = std::move(qname);
        // A relayed answer gets the same limit as ours (SPEC §4): a large EDNS size asked for
        // by a spoofed query must not turn fabdns into an amplifier for upstream answers.
        r.udp_limit = dns::udp_limit(q.edns);
        return r;
    } catch (const std::exception &) {
        // The engine could not answer (out of memory): the client may retry elsewhere.
        return make(q, {.rcode = Rcode::ServFail});
    }
}

}  // namespace fabdns
