// DNS message handling for the resolver: strict query parsing and ldns-built replies.
#include "resolver/wire.hpp"

#include "resolver/ldns.hpp"

#include <algorithm>
#include <memory>

namespace fabdns::dns {
namespace {

// End of a question name starting at pos, or nullopt. Compression is refused: a query's
// question has nothing earlier to point to, and the kernel path refuses it too.
std::optional<size_t> question_name_end(std::span<const uint8_t> msg, size_t pos) {
    size_t total = 0;
    for (;;) {
        if (pos >= msg.size()) return std::nullopt;
        const uint8_t len = msg[pos];
        if (len == 0) return pos + 1;
        if (len & kLabelTypeMask) return std::nullopt;  // pointer or reserved label type
        total += 1 + size_t{len};
        if (total + 1 > kMaxNameWire) return std::nullopt;
        pos += 1 + size_t{len};
    }
}

// End of a possibly compressed owner name of a record we only skip. Pointer targets are not
// followed: the name is never used.
std::optional<size_t> skip_name(std::span<const uint8_t> msg, size_t pos) {
    size_t total = 0;
    for (;;) {
        if (pos >= msg.size()) return std::nullopt;
        const uint8_t len = msg[pos];
        if ((len & kLabelTypeMask) == kLabelPointer) {
            if (pos + 2 > msg.size()) return std::nullopt;
            return pos + 2;
        }
        if (len & kLabelTypeMask) return std::nullopt;
        if (len == 0) return pos + 1;
        total += 1 + size_t{len};
        if (total + 1 > kMaxNameWire) return std::nullopt;
        pos += 1 + size_t{len};
    }
}

// Options inside OPT rdata must tile it exactly (RFC 6891 §6.1.2).
bool options_well_formed(std::span<const uint8_t> rdata) {
    size_t p = 0;
    while (p < rdata.size()) {
        if (p + kEdnsOptionHeader > rdata.size()) return false;
        p += kEdnsOptionHeader + read16(rdata.data() + p + 2);
    }
    return p == rdata.size();
}

uint8_t ascii_lower(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c | 0x20) : c;
}

// Wire form of a lowercase dotted name from the engine ("" is the root).
std::optional<std::vector<uint8_t>> text_to_wire(std::string_view dotted) {
    std::vector<uint8_t> out;
    out.reserve(dotted.size() + 2);
    while (!dotted.empty()) {
        const size_t dot = dotted.find('.');
        const std::string_view label = dotted.substr(0, dot);
        if (label.empty() || label.size() > kMaxLabel) return std::nullopt;
        out.push_back(static_cast<uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
    }
    out.push_back(0);
    if (out.size() > kMaxNameWire) return std::nullopt;
    return out;
}

struct PktDeleter {
    void operator()(ldns_pkt *p) const { ldns_pkt_free(p); }
};
struct RrDeleter {
    void operator()(ldns_rr *r) const { ldns_rr_free(r); }
};
struct BufferDeleter {
    void operator()(ldns_buffer *b) const { ldns_buffer_free(b); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrDeleter>;

// One growing output buffer per thread: ldns_pkt2wire would allocate 64 KiB per reply.
ldns_buffer *thread_buffer() {
    thread_local std::unique_ptr<ldns_buffer, BufferDeleter> buf{ldns_buffer_new(kUdpPlainLimit)};
    return buf.get();
}

// Converts an engine record to an ldns RR. Owners equal to the query name take the client's
// bytes (0x20 case kept, and ldns then compresses them to a pointer at the question).
RrPtr make_rr(const Record &rec, std::string_view qname_lower, const ldns_rdf *qname_rdf) {
    RrPtr rr{ldns_rr_new()};
    if (!rr) return nullptr;
    ldns_rdf *owner = nullptr;
    if (qname_rdf && rec.owner == qname_lower) {
        owner = ldns_rdf_clone(qname_rdf);
    } else {
        auto wire = text_to_wire(rec.owner);
        if (!wire) return nullptr;
        owner = ldns_dname_new_frm_data(static_cast<uint16_t>(wire->size()), wire->data());
    }
    if (!owner) return nullptr;
    ldns_rr_set_owner(rr.get(), owner);
    ldns_rr_set_type(rr.get(), static_cast<ldns_rr_type>(rec.type));
    ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr.get(), rec.ttl);
    ldns_rr_set_question(rr.get(), false);

    const auto &rd = rec.rdata;
    if (rec.type == dnstype::A && rd.size() == LDNS_IP4ADDRLEN) {
        ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, rd.size(), rd.data()));
        return rr;
    }
    if (rec.type == dnstype::AAAA && rd.size() == LDNS_IP6ADDRLEN) {
        ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, rd.size(), rd.data()));
        return rr;
    }
    if (rd.size() > UINT16_MAX) return nullptr;
    // Other types (SOA, NS) go through ldns's descriptor so their names get compressed.
    std::vector<uint8_t> framed(2 + rd.size());
    write16(framed.data(), static_cast<uint16_t>(rd.size()));
    std::copy(rd.begin(), rd.end(), framed.begin() + 2);
    size_t pos = 0;
    if (ldns_wire2rdf(rr.get(), framed.data(), framed.size(), &pos) == LDNS_STATUS_OK &&
        pos == framed.size()) {
        return rr;
    }
    // ldns could not split it: send the rdata as it is.
    while (ldns_rr_rd_count(rr.get()) > 0) ldns_rdf_deep_free(ldns_rr_pop_rdf(rr.get()));
    if (!rd.empty()) {
        ldns_rr_push_rdf(rr.get(),
                         ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, rd.size(), rd.data()));
    }
    return rr;
}

// A packet whose sections borrow RRs owned elsewhere, so that the same RRs can be written
// with different section sizes while searching for what fits.
class BorrowingPkt {
  public:
    BorrowingPkt() : pkt_(ldns_pkt_new()) {}
    ~BorrowingPkt() {
        if (!pkt_) return;
        // Detach the borrowed RRs before ldns frees the lists deeply.
        for (ldns_rr_list *l : {ldns_pkt_question(pkt_.get()), ldns_pkt_answer(pkt_.get()),
                                ldns_pkt_authority(pkt_.get()), ldns_pkt_additional(pkt_.get())}) {
            if (l) ldns_rr_list_set_rr_count(l, 0);
        }
    }
    BorrowingPkt(const BorrowingPkt &) = delete;
    BorrowingPkt &operator=(const BorrowingPkt &) = delete;

    ldns_pkt *get() const { return pkt_.get(); }

    void push(ldns_pkt_section section, ldns_rr *rr) { ldns_pkt_push_rr(pkt_.get(), section, rr); }

    // Shows only the first n answer and m authority records.
    void limit(size_t n_answer, size_t n_authority, size_t all_answer, size_t all_authority) {
        ldns_rr_list_set_rr_count(ldns_pkt_answer(pkt_.get()), std::min(n_answer, all_answer));
        ldns_pkt_set_ancount(pkt_.get(), static_cast<uint16_t>(std::min(n_answer, all_answer)));
        ldns_rr_list_set_rr_count(ldns_pkt_authority(pkt_.get()),
                                  std::min(n_authority, all_authority));
        ldns_pkt_set_nscount(pkt_.get(),
                             static_cast<uint16_t>(std::min(n_authority, all_authority)));
    }

    // Wire form, or empty on an ldns error.
    std::vector<uint8_t> wire() const {
        ldns_buffer *buf = thread_buffer();
        ldns_buffer_clear(buf);
        if (ldns_pkt2buffer_wire(buf, pkt_.get()) != LDNS_STATUS_OK) return {};
        const auto *data = static_cast<const uint8_t *>(ldns_buffer_begin(buf));
        return {data, data + ldns_buffer_position(buf)};
    }

  private:
    std::unique_ptr<ldns_pkt, PktDeleter> pkt_;
};

}  // namespace

ParsedQuery parse_query(std::span<const uint8_t> msg) {
    ParsedQuery q;
    if (msg.size() < kHeaderSize) return q;
    const uint8_t *h = msg.data();
    if (LDNS_QR_WIRE(h)) return q;

    q.id = LDNS_ID_WIRE(h);
    q.opcode = static_cast<uint8_t>(LDNS_OPCODE_WIRE(h));
    q.rd = LDNS_RD_WIRE(h) != 0;
    q.cd = LDNS_CD_WIRE(h) != 0;

    const bool query_opcode = q.opcode == kOpcodeQuery;
    auto fail = [&] {
        q.status = query_opcode ? ParsedQuery::Status::FormErr : ParsedQuery::Status::NotImp;
        return q;
    };

    size_t pos = kHeaderSize;
    if (LDNS_QDCOUNT(h) != 1) return fail();
    const auto name_end = question_name_end(msg, pos);
    if (!name_end || *name_end + kFixedQuestionTail > msg.size()) return fail();
    q.question = Question{msg.subspan(pos, *name_end - pos), read16(h + *name_end),
                          read16(h + *name_end + 2)};
    pos = *name_end + kFixedQuestionTail;

    // A query carries nothing in these sections; accepting records there would only invite
    // parser differences.
    if (LDNS_ANCOUNT(h) != 0 || LDNS_NSCOUNT(h) != 0) return fail();

    bool seen_opt = false;
    for (unsigned i = 0, n = LDNS_ARCOUNT(h); i < n; ++i) {
        const size_t start = pos;
        const auto owner_end = skip_name(msg, pos);
        if (!owner_end || *owner_end + kFixedRrTail > msg.size()) return fail();
        const uint8_t *f = h + *owner_end;
        const uint16_t type = read16(f), klass = read16(f + 2);
        const uint32_t ttl = read32(f + 4);
        const size_t rdlen = read16(f + 8);
        const size_t rdata = *owner_end + kFixedRrTail;
        if (rdata + rdlen > msg.size()) return fail();
        pos = rdata + rdlen;
        if (type != dnstype::OPT) continue;  // e.g. TSIG: not supported, ignored

        // RFC 6891 §6.1.1: more than one OPT is FORMERR; the owner must be the root.
        const bool root_owner = *owner_end == start + 1 && msg[start] == 0;
        if (seen_opt || !root_owner || !options_well_formed(msg.subspan(rdata, rdlen))) {
            q.edns.reset();
            return fail();
        }
        seen_opt = true;
        q.edns =
            Edns{klass, static_cast<uint8_t>(ttl >> kOptTtlVersionShift), (ttl & kOptTtlDo) != 0};
    }
    if (pos != msg.size()) return fail();  // trailing bytes

    q.status = query_opcode ? ParsedQuery::Status::Ok : ParsedQuery::Status::NotImp;
    return q;
}

size_t udp_limit(const std::optional<Edns> &edns) {
    if (!edns) return kUdpPlainLimit;
    return std::clamp<size_t>(edns->payload, kUdpPlainLimit, kEdnsPayload);
}

std::string name_to_text(std::span<const uint8_t> wire_name) {
    std::string out;
    out.reserve(wire_name.size());
    size_t pos = 0;
    while (pos < wire_name.size() && wire_name[pos] != 0) {
        const size_t len = wire_name[pos];
        if (!out.empty()) out.push_back('.');
        for (size_t i = pos + 1; i <= pos + len && i < wire_name.size(); ++i) {
            const uint8_t c = ascii_lower(wire_name[i]);
            if (c == '.' || c == '\\' || c <= ' ' || c >= 0x7f) {
                static const char digits[] = "0123456789";
                out.push_back('\\');
                out.push_back(digits[c / 100]);
                out.push_back(digits[(c / 10) % 10]);
                out.push_back(digits[c % 10]);
            } else {
                out.push_back(static_cast<char>(c));
            }
        }
        pos += 1 + len;
    }
    return out;
}

BuiltReply build_reply(const ParsedQuery &query, const ReplySpec &spec) {
    BuiltReply out;
    BorrowingPkt pkt;
    if (!pkt.get()) return out;
    ldns_pkt *p = pkt.get();
    ldns_pkt_set_id(p, query.id);
    ldns_pkt_set_qr(p, true);
    // The opcode is written into the bytes afterwards: ldns's opcode enum cannot hold every
    // 4-bit value.
    ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
    ldns_pkt_set_aa(p, spec.aa);
    ldns_pkt_set_rd(p, query.rd);
    ldns_pkt_set_cd(p, query.cd);
    ldns_pkt_set_ra(p, false);
    ldns_pkt_set_ad(p, false);
    const auto rcode = static_cast<uint16_t>(spec.rcode);
    ldns_pkt_set_rcode(p, static_cast<uint8_t>(rcode & kMaskRcode));
    if (query.edns) {
        ldns_pkt_set_edns_udp_size(p, kEdnsPayload);
        ldns_pkt_set_edns_version(p, 0);
        ldns_pkt_set_edns_extended_rcode(p, static_cast<uint8_t>(rcode >> kExtRcodeShift));
        ldns_pkt_set_edns_z(p, query.edns->do_bit ? kOptTtlDo : 0);
    }

    std::vector<RrPtr> owned;
    RrPtr question;
    std::string computed_qname;
    std::string_view qname_lower;
    if (query.question) {
        question.reset(ldns_rr_new());
        ldns_rdf *name = ldns_dname_new_frm_data(static_cast<uint16_t>(query.question->name.size()),
                                                 query.question->name.data());
        if (!question || !name) {
            ldns_rdf_deep_free(name);
            return out;
        }
        ldns_rr_set_owner(question.get(), name);
        ldns_rr_set_type(question.get(), static_cast<ldns_rr_type>(query.question->qtype));
        ldns_rr_set_class(question.get(), static_cast<ldns_rr_class>(query.question->qclass));
        ldns_rr_set_question(question.get(), true);
        pkt.push(LDNS_SECTION_QUESTION, question.get());
        if (spec.qname_lower) {
            qname_lower = *spec.qname_lower;
        } else {
            computed_qname = name_to_text(query.question->name);
            qname_lower = computed_qname;
        }
    }
    const ldns_rdf *qname_rdf = question ? ldns_rr_owner(question.get()) : nullptr;

    auto add = [&](const std::vector<Record> *records, ldns_pkt_section section) {
        size_t n = 0;
        if (!records) return n;
        for (const Record &rec : *records) {
            RrPtr rr = make_rr(rec, qname_lower, qname_rdf);
            if (!rr) continue;
            pkt.push(section, rr.get());
            owned.push_back(std::move(rr));
            ++n;
        }
        return n;
    };
    const size_t n_answer = add(spec.answer, LDNS_SECTION_ANSWER);
    const size_t n_authority = add(spec.authority, LDNS_SECTION_AUTHORITY);

    auto set_opcode = [&] {
        if (!out.bytes.empty()) {
            out.bytes[kOffFlags1] = static_cast<uint8_t>((out.bytes[kOffFlags1] & ~kMaskOpcode) |
                                                         (query.opcode << kShiftOpcode));
        }
    };
    out.bytes = pkt.wire();
    if (out.bytes.size() <= spec.limit) {
        set_opcode();
        return out;
    }

    // Too big: set TC and keep the longest prefix of the answer section (then of the
    // authority section) that fits. Sizes grow with the prefix, so search for it.
    out.truncated = true;
    ldns_pkt_set_tc(p, true);
    auto size_with = [&](size_t a, size_t n) {
        pkt.limit(a, n, n_answer, n_authority);
        return pkt.wire().size();
    };
    size_t keep_answer = 0, keep_authority = 0;
    if (size_with(0, n_authority) <= spec.limit) {
        keep_authority = n_authority;
        size_t lo = 0, hi = n_answer;  // lo fits, hi does not
        while (hi - lo > 1) {
            const size_t mid = lo + (hi - lo) / 2;
            (size_with(mid, n_authority) <= spec.limit ? lo : hi) = mid;
        }
        keep_answer = lo;
    } else {
        size_t lo = 0, hi = n_authority;
        while (hi - lo > 1) {
            const size_t mid = lo + (hi - lo) / 2;
            (size_with(0, mid) <= spec.limit ? lo : hi) = mid;
        }
        keep_authority = lo;
    }
    pkt.limit(keep_answer, keep_authority, n_answer, n_authority);
    out.bytes = pkt.wire();
    set_opcode();
    // The borrowed lists must show every owned RR again so the destructor detaches them all.
    pkt.limit(n_answer, n_authority, n_answer, n_authority);
    return out;
}

std::optional<std::vector<uint8_t>> servfail_for(std::span<const uint8_t> query) {
    const ParsedQuery q = parse_query(query);
    if (q.status == ParsedQuery::Status::Drop) return std::nullopt;
    auto built = build_reply(q, ReplySpec{.rcode = Rcode::ServFail});
    if (built.bytes.empty()) return std::nullopt;
    return std::move(built.bytes);
}

bool reply_matches(std::span<const uint8_t> query, std::span<const uint8_t> reply) {
    if (query.size() < kHeaderSize || reply.size() < kHeaderSize) return false;
    if (read16(query.data() + kOffId) != read16(reply.data() + kOffId)) return false;
    if (!(reply[kOffFlags1] & kFlagQR)) return false;
    // Exactly the question asked: a reply without one (even a FORMERR) proves nothing about
    // which query it answers.
    if (read16(query.data() + kOffQdCount) != 1 || read16(reply.data() + kOffQdCount) != 1)
        return false;
    const auto q_end = question_name_end(query, kHeaderSize);
    const auto r_end = question_name_end(reply, kHeaderSize);
    if (!q_end || !r_end || *q_end != *r_end) return false;
    if (*q_end + kFixedQuestionTail > query.size() || *r_end + kFixedQuestionTail > reply.size())
        return false;
    for (size_t i = kHeaderSize; i < *q_end + kFixedQuestionTail; ++i) {
        if (ascii_lower(query[i]) != ascii_lower(reply[i])) return false;
    }
    return true;
}

std::vector<uint8_t> truncated_copy(std::span<const uint8_t> reply) {
    if (reply.size() < kHeaderSize) return {};
    size_t end = kHeaderSize;
    uint16_t qd = 0;
    if (read16(reply.data() + kOffQdCount) == 1) {
        const auto name_end = question_name_end(reply, kHeaderSize);
        if (name_end && *name_end + kFixedQuestionTail <= reply.size()) {
            end = *name_end + kFixedQuestionTail;
            qd = 1;
        }
    }
    std::vector<uint8_t> out(reply.begin(), reply.begin() + static_cast<std::ptrdiff_t>(end));
    out[kOffFlags1] |= kFlagTC;
    write16(out.data() + kOffQdCount, qd);
    write16(out.data() + kOffAnCount, 0);
    write16(out.data() + kOffNsCount, 0);
    write16(out.data() + kOffArCount, 0);
    return out;
}

}  // namespace fabdns::dns
