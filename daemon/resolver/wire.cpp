// DNS message handling for the resolver: strict query parsing and the reply writer.
#include "resolver/wire.hpp"

#include "common/name_compression.hpp"
#include "resolver/ldns.hpp"

#include <algorithm>
#include <array>

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

// Writes a reply's question and records into `out`, names compressed by NameCompressor.
class Writer {
  public:
    explicit Writer(std::vector<uint8_t> &out) : out_(out), compressor_(out, name_offsets_) {}

    // The question as the client spelled it. It is the first name, so it is written in full
    // and each of its suffixes can be pointed to.
    void question(const Question &q) {
        size_t pos = 0;
        while (q.name[pos] != 0) {
            qlabels_[nq_++] = static_cast<uint16_t>(out_.size() + pos);
            pos += 1 + size_t{q.name[pos]};
        }
        compressor_.write(q.name);
        put16(q.qtype);
        put16(q.qclass);
    }

    // Appends one record; false (nothing written) when its owner is not a suffix of the
    // question, which the engine never produces.
    bool record(const Record &rec) {
        if (rec.owner_labels > nq_) return false;
        const size_t start = out_.size();
        if (rec.owner_labels == 0) {
            out_.push_back(0);
        } else {
            put16(static_cast<uint16_t>(kCompressionPointer | qlabels_[nq_ - rec.owner_labels]));
        }
        put16(rec.type);
        put16(kClassIn);
        put16(static_cast<uint16_t>(rec.ttl >> 16));
        put16(static_cast<uint16_t>(rec.ttl));
        const size_t rdlength_at = out_.size();
        put16(0);
        rdata(rec);
        const size_t rdlength = out_.size() - rdlength_at - 2;
        if (rdlength > UINT16_MAX) {
            rewind(start);
            return false;
        }
        write16(out_.data() + rdlength_at, static_cast<uint16_t>(rdlength));
        return true;
    }

    // Forgets everything written from `size` on.
    void rewind(size_t size) { compressor_.rewind(size); }

  private:
    void put16(uint16_t v) {
        out_.push_back(static_cast<uint8_t>(v >> 8));
        out_.push_back(static_cast<uint8_t>(v));
    }

    // Record data. The names in NS and SOA data are compressed, as RFC 1035 allows for its
    // own types; other data is written as it is.
    void rdata(const Record &rec) {
        const std::span<const uint8_t> rd = rec.rdata;
        size_t names = 0;
        if (rec.type == dnstype::NS) names = 1;
        if (rec.type == dnstype::SOA) names = 2;
        size_t pos = 0;
        std::array<size_t, 2> starts{};
        for (size_t i = 0; i < names; ++i) {
            starts[i] = pos;
            const auto end = uncompressed_name_end(rd, pos);
            if (!end) {
                names = 0;  // not names after all: written as they are
                pos = 0;
                break;
            }
            pos = *end;
        }
        for (size_t i = 0; i < names; ++i) compressor_.write(rd.subspan(starts[i]));
        out_.insert(out_.end(), rd.begin() + static_cast<std::ptrdiff_t>(pos), rd.end());
    }

    std::vector<uint8_t> &out_;
    // Offsets of the names written in full; reused per thread (a few entries each reply).
    static thread_local std::vector<uint16_t> name_offsets_;
    NameCompressor compressor_;
    std::array<uint16_t, DNS_MAX_LABELS> qlabels_{};  // offsets of the question's labels
    size_t nq_ = 0;
};

thread_local std::vector<uint16_t> Writer::name_offsets_;

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
    std::vector<uint8_t> &m = out.bytes;
    m.reserve(kUdpPlainLimit);
    m.resize(kHeaderSize);
    Writer w(m);
    if (query.question) w.question(*query.question);
    const size_t question_end = m.size();
    const size_t opt = query.edns ? EDNS_OPT_LEN : 0;

    // Each record's end, to cut the message after any of them.
    thread_local std::vector<size_t> answer_ends, authority_ends;
    answer_ends.assign(1, question_end);
    auto write_all = [&](const std::vector<Record> *records, std::vector<size_t> &ends) {
        if (!records) return;
        for (const Record &rec : *records)
            if (w.record(rec)) ends.push_back(m.size());
    };
    auto write_authority = [&] {
        authority_ends.assign(1, m.size());
        write_all(spec.authority, authority_ends);
    };
    write_all(spec.answer, answer_ends);
    write_authority();

    // Too big: TC, and answer records dropped from the end until the authority section fits
    // after them, then authority records from the end (RFC 2181 §9). The authority section is
    // written again after the answers kept: its names may point into the answers.
    size_t n_answer = answer_ends.size() - 1;
    while (m.size() + opt > spec.limit) {
        out.truncated = true;
        if (n_answer == 0) {
            size_t n = authority_ends.size() - 1;
            while (n > 0 && authority_ends[n] + opt > spec.limit) --n;
            w.rewind(authority_ends[n]);
            authority_ends.resize(n + 1);
            break;
        }
        const size_t authority = m.size() - answer_ends[n_answer];
        while (n_answer > 0 && answer_ends[n_answer] + authority + opt > spec.limit) --n_answer;
        w.rewind(answer_ends[n_answer]);
        write_authority();
    }

    uint8_t *h = m.data();
    write16(h + kOffId, query.id);
    h[kOffFlags1] =
        static_cast<uint8_t>(kFlagQR | (query.opcode << kShiftOpcode) | (spec.aa ? kFlagAA : 0) |
                             (out.truncated ? kFlagTC : 0) | (query.rd ? kFlagRD : 0));
    const auto rcode = static_cast<uint16_t>(spec.rcode);
    h[kOffFlags2] = static_cast<uint8_t>((query.cd ? kFlagCD : 0) | (rcode & kMaskRcode));
    write16(h + kOffQdCount, query.question ? 1 : 0);
    write16(h + kOffAnCount, static_cast<uint16_t>(n_answer));
    write16(h + kOffNsCount, static_cast<uint16_t>(authority_ends.size() - 1));
    write16(h + kOffArCount, query.edns ? 1 : 0);
    if (query.edns) {
        // OPT: root owner, our payload size, EXTENDED-RCODE, version 0, DO echoed, no options.
        const size_t at = m.size();
        m.resize(at + EDNS_OPT_LEN);
        uint8_t *o = m.data() + at;
        o[0] = 0;
        write16(o + 1, dnstype::OPT);
        write16(o + 3, kEdnsPayload);
        const uint32_t ttl = (uint32_t{static_cast<uint8_t>(rcode >> kExtRcodeShift)} << 24) |
                             (query.edns->do_bit ? kOptTtlDo : 0);
        write16(o + 5, static_cast<uint16_t>(ttl >> 16));
        write16(o + 7, static_cast<uint16_t>(ttl));
        write16(o + 9, 0);
    }
    return out;
}

std::optional<std::vector<uint8_t>> servfail_for(std::span<const uint8_t> query) {
    const ParsedQuery q = parse_query(query);
    if (q.status == ParsedQuery::Status::Drop) return std::nullopt;
    return build_reply(q, ReplySpec{.rcode = Rcode::ServFail}).bytes;
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
