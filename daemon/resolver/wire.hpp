// DNS message handling for the resolver: named header constants, the strict query parser that
// decides drop / FORMERR / NOTIMP / BADVERS, and the reply writer (question echoed with the
// client's case, compressed owners, the OPT record we send).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dns_wire.h"
#include "engine/engine.hpp"

namespace fabdns::dns {

// Sizes, limits, offsets and flags come from maps/dns_wire.h, the definition the kernel
// datapath uses too, so both paths apply the same numbers (RFC 1035 §2.3.4, §4.1.1, §4.2.1;
// RFC 6891; DNS flag day 2020).
inline constexpr size_t kHeaderSize = DNS_HDR_LEN;
inline constexpr size_t kMaxLabel = DNS_LABEL_MAX;
inline constexpr size_t kMaxNameWire = DNS_NAME_MAX;
inline constexpr size_t kUdpPlainLimit = DNS_UDP_PLAIN_MAX;   // UDP answer size without EDNS
inline constexpr uint16_t kEdnsPayload = EDNS_REPLY_PAYLOAD;  // advertised and honoured at most
inline constexpr size_t kTcpLimit = 65535;  // a TCP message's 2-byte length prefix
inline constexpr size_t kFixedQuestionTail = DNS_QUESTION_FIXED_LEN;  // QTYPE, QCLASS
inline constexpr size_t kFixedRrTail = DNS_RR_FIXED_LEN;              // TYPE, CLASS, TTL, RDLENGTH
inline constexpr size_t kEdnsOptionHeader = EDNS_OPTION_HDR_LEN;      // OPTION-CODE, OPTION-LENGTH

// Header field offsets, and flag bits of the two flag bytes (dns_wire.h defines them on the
// 16-bit word: the first byte holds its upper half).
inline constexpr size_t kOffId = DNS_OFF_ID, kOffFlags1 = DNS_OFF_FLAGS,
                        kOffFlags2 = DNS_OFF_FLAGS + 1, kOffQdCount = DNS_OFF_QDCOUNT,
                        kOffAnCount = DNS_OFF_ANCOUNT, kOffNsCount = DNS_OFF_NSCOUNT,
                        kOffArCount = DNS_OFF_ARCOUNT;
inline constexpr uint8_t kFlagQR = DNS_FLAG_QR >> 8, kFlagAA = DNS_FLAG_AA >> 8,
                         kFlagTC = DNS_FLAG_TC >> 8, kFlagRD = DNS_FLAG_RD >> 8,
                         kFlagCD = DNS_FLAG_CD;
inline constexpr uint8_t kMaskOpcode = DNS_OPCODE_MASK >> 8, kShiftOpcode = 3;
inline constexpr uint8_t kMaskRcode = 0x0f;

// Name wire format: the top two bits of a length byte say what it is.
inline constexpr uint8_t kLabelTypeMask = DNS_LABEL_TYPE_MASK;
inline constexpr uint8_t kLabelPointer = DNS_LABEL_POINTER;

inline constexpr uint8_t kOpcodeQuery = 0;
inline constexpr uint16_t kClassIn = DNS_CLASS_IN;
inline constexpr unsigned kExtRcodeShift = 4;  // OPT's EXTENDED-RCODE holds the upper 8 bits

// OPT TTL field: EXTENDED-RCODE(8) VERSION(8) DO(1) Z(15).
inline constexpr uint32_t kOptTtlDo = EDNS_FLAG_DO;
inline constexpr unsigned kOptTtlVersionShift = 16;

inline uint16_t read16(const uint8_t *p) {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t read32(const uint8_t *p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
// The header's RCODE of a message (0 when it is shorter than a header): the lower 4 bits only,
// as counted for relayed replies.
inline Rcode rcode_of(std::span<const uint8_t> msg) {
    return static_cast<Rcode>(msg.size() >= kHeaderSize ? msg[kOffFlags2] & kMaskRcode : 0);
}
inline void write16(uint8_t *p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

enum class Transport : uint8_t { Udp = 0, Tcp = 1 };

// The client's EDNS0 OPT record, when it sent exactly one well-formed one.
struct Edns {
    uint16_t payload = 0;  // requestor's UDP payload size, as sent
    uint8_t version = 0;
    bool do_bit = false;
};

// The single question, as the client sent it.
struct Question {
    std::span<const uint8_t> name;  // wire bytes, uncompressed, root label included
    uint16_t qtype = 0;
    uint16_t qclass = 0;
};

// What the parser made of a message. `status` decides the action; the other fields are filled
// as far as parsing got, so that error replies can echo what was readable.
struct ParsedQuery {
    enum class Status : uint8_t {
        Ok,
        Drop,     // shorter than a header, or a response (QR=1): never answered
        NotImp,   // opcode other than QUERY
        FormErr,  // header readable, the rest is not a valid query
    };
    Status status = Status::Drop;
    uint16_t id = 0;
    uint8_t opcode = 0;
    bool rd = false, cd = false;
    std::optional<Question> question;
    std::optional<Edns> edns;
};

// Parses a query strictly: QDCOUNT must be 1, the question name may not use compression,
// ANCOUNT and NSCOUNT must be 0, every additional record must be well-formed, at most one OPT
// owned by the root with well-formed options, and no bytes may follow the last record.
ParsedQuery parse_query(std::span<const uint8_t> msg);

// The UDP answer size limit for a query: 512 without EDNS, else the client's payload size
// clamped to [512, 1232].
size_t udp_limit(const std::optional<Edns> &edns);

// Lowercase dotted form of a wire name without the trailing dot ("" for the root), the form the
// engine takes. Bytes that cannot stand in a plain label ('.', '\\', non-printable) are
// written as \DDD, so they can never match a service name.
std::string name_to_text(std::span<const uint8_t> wire_name);

// What goes into a reply besides the echoed header fields.
struct ReplySpec {
    Rcode rcode = Rcode::NoError;  // may be extended (BADVERS)
    bool aa = false;
    const std::vector<Record> *answer = nullptr;
    const std::vector<Record> *authority = nullptr;
    size_t limit = kTcpLimit;  // largest message allowed; answer records are dropped to fit
};

struct BuiltReply {
    std::vector<uint8_t> bytes;
    bool truncated = false;
};

// Writes a reply to `query`: ID, opcode, RD and CD copied; QR set; RA, AD, Z clear; the
// question echoed with the client's bytes; each record's owner a pointer into the question
// (Record::owner_labels), names in NS and SOA data compressed as ldns compresses them; an OPT
// (payload 1232, version 0, DO copied, no options) when the query had one. When the message
// exceeds spec.limit, TC is set and answer records are dropped from the end (then the
// authority section) until it fits; the OPT stays.
BuiltReply build_reply(const ParsedQuery &query, const ReplySpec &spec);

// A SERVFAIL for a query the forwarder could not get answered, or nothing when the query is
// not answerable at all.
std::optional<std::vector<uint8_t>> servfail_for(std::span<const uint8_t> query);

// True when `reply` answers `query`: same ID, QR set, QDCOUNT 1 in both, and the same question
// name (case-insensitively), type and class.
bool reply_matches(std::span<const uint8_t> query, std::span<const uint8_t> reply);

// A minimal truncated form of an upstream reply that is too big for the client: header and
// question only, TC set.
std::vector<uint8_t> truncated_copy(std::span<const uint8_t> reply);

}  // namespace fabdns::dns
