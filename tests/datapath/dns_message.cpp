// Strict DNS message parsing and semantic comparison for the datapath differential tests.
#include "dns_message.hpp"

#include <algorithm>
#include <sstream>

namespace fabdns::test {
namespace {

uint16_t rd16(std::span<const uint8_t> m, size_t p) {
    return static_cast<uint16_t>((m[p] << 8) | m[p + 1]);
}
uint32_t rd32(std::span<const uint8_t> m, size_t p) {
    return (uint32_t{m[p]} << 24) | (uint32_t{m[p + 1]} << 16) | (uint32_t{m[p + 2]} << 8) |
           m[p + 3];
}

// Reads a possibly compressed name at pos into `out` (uncompressed wire form). Pointers must
// point strictly backwards, which rules out loops. Returns the offset after the name as it
// lies at pos, or nothing.
std::optional<size_t> read_name(std::span<const uint8_t> m, size_t pos, Bytes &out) {
    out.clear();
    std::optional<size_t> end;
    size_t limit = pos;  // a pointer must target an offset below this
    for (;;) {
        if (pos >= m.size()) return std::nullopt;
        const uint8_t len = m[pos];
        if ((len & 0xc0) == 0xc0) {
            if (pos + 2 > m.size()) return std::nullopt;
            const size_t target = rd16(m, pos) & 0x3fff;
            if (!end) end = pos + 2;
            if (target >= limit) return std::nullopt;
            limit = target;
            pos = target;
            continue;
        }
        if (len & 0xc0) return std::nullopt;
        if (pos + 1 + len > m.size()) return std::nullopt;
        out.insert(out.end(), m.begin() + pos, m.begin() + pos + 1 + len);
        if (out.size() > 255) return std::nullopt;
        if (len == 0) return end ? *end : pos + 1;
        pos += 1 + len;
    }
}

// Rdata with embedded names decompressed, so that two writers that compress differently
// compare equal.
std::optional<Bytes> read_rdata(std::span<const uint8_t> m, uint16_t type, size_t pos, size_t len) {
    const size_t end = pos + len;
    Bytes out, name;
    auto take_name = [&]() -> bool {
        auto next = read_name(m, pos, name);
        if (!next || *next > end) return false;
        out.insert(out.end(), name.begin(), name.end());
        pos = *next;
        return true;
    };
    switch (type) {
        case 2:   // NS
        case 5:   // CNAME
        case 12:  // PTR
            if (!take_name() || pos != end) return std::nullopt;
            return out;
        case 15:  // MX
            if (len < 2) return std::nullopt;
            out.insert(out.end(), m.begin() + pos, m.begin() + pos + 2);
            pos += 2;
            if (!take_name() || pos != end) return std::nullopt;
            return out;
        case 6:  // SOA
            if (!take_name() || !take_name() || end - pos != 20) return std::nullopt;
            out.insert(out.end(), m.begin() + pos, m.begin() + end);
            return out;
        default:
            return Bytes(m.begin() + pos, m.begin() + end);
    }
}

std::string hex(const Bytes &b) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t c : b) {
        s += digits[c >> 4];
        s += digits[c & 0xf];
    }
    return s;
}

std::string show(const Rr &r) {
    std::ostringstream os;
    os << dotted_lower(r.owner) << " type=" << r.type << " class=" << r.klass << " ttl=" << r.ttl
       << " rdata=" << hex(r.rdata);
    return os.str();
}

void diff_sets(const char *section, std::vector<Rr> a, std::vector<Rr> b,
               std::vector<std::string> &out) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) return;
    out.push_back(std::string(section) + ": " + std::to_string(a.size()) + " vs " +
                  std::to_string(b.size()) + " records");
    std::vector<Rr> only_a, only_b;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
    for (const auto &r : only_a) out.push_back(std::string(section) + " only in first: " + show(r));
    for (const auto &r : only_b)
        out.push_back(std::string(section) + " only in second: " + show(r));
}

}  // namespace

std::string dotted_lower(const Bytes &w) {
    std::string s;
    size_t p = 0;
    while (p < w.size() && w[p] != 0) {
        if (!s.empty()) s += '.';
        for (size_t i = p + 1; i <= p + w[p] && i < w.size(); i++) {
            char c = static_cast<char>(w[i]);
            s += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
        p += 1 + w[p];
    }
    return s;
}

Message parse_message(std::span<const uint8_t> m) {
    Message msg;
    auto fail = [&](const std::string &e) {
        msg.ok = false;
        msg.error = e;
        return msg;
    };
    if (m.size() < 12) return fail("shorter than a header");
    msg.id = rd16(m, 0);
    msg.flags = rd16(m, 2);
    const uint16_t qd = rd16(m, 4), an = rd16(m, 6), ns = rd16(m, 8), ar = rd16(m, 10);
    size_t pos = 12;
    if (qd > 1) return fail("QDCOUNT " + std::to_string(qd));
    if (qd == 1) {
        auto next = read_name(m, pos, msg.qname);
        if (!next || *next + 4 > m.size()) return fail("question does not parse");
        msg.qtype = rd16(m, *next);
        msg.qclass = rd16(m, *next + 2);
        msg.question.assign(m.begin() + pos, m.begin() + *next + 4);
        pos = *next + 4;
    }
    auto read_section = [&](uint16_t count, std::vector<Rr> &into, bool additional) -> bool {
        for (uint16_t i = 0; i < count; i++) {
            Rr r;
            auto next = read_name(m, pos, r.owner);
            if (!next || *next + 10 > m.size()) return false;
            r.type = rd16(m, *next);
            r.klass = rd16(m, *next + 2);
            r.ttl = rd32(m, *next + 4);
            const size_t rdlen = rd16(m, *next + 8), rdata = *next + 10;
            if (rdata + rdlen > m.size()) return false;
            if (additional && r.type == 41) {
                Opt o;
                o.owner = r.owner;
                o.payload = r.klass;
                o.ext_rcode = static_cast<uint8_t>(r.ttl >> 24);
                o.version = static_cast<uint8_t>(r.ttl >> 16);
                o.flags = static_cast<uint16_t>(r.ttl);
                o.options.assign(m.begin() + rdata, m.begin() + rdata + rdlen);
                msg.opt_count++;
                msg.opt = std::move(o);
            } else {
                auto rd = read_rdata(m, r.type, rdata, rdlen);
                if (!rd) return false;
                r.rdata = std::move(*rd);
                into.push_back(std::move(r));
            }
            pos = rdata + rdlen;
        }
        return true;
    };
    if (!read_section(an, msg.answer, false)) return fail("answer section does not parse");
    if (!read_section(ns, msg.authority, false)) return fail("authority section does not parse");
    if (!read_section(ar, msg.additional, true)) return fail("additional section does not parse");
    if (pos != m.size())
        return fail(std::to_string(m.size() - pos) + " bytes after the last record");
    msg.ok = true;
    return msg;
}

std::string describe_flags(uint16_t f) {
    std::string s;
    static const std::pair<uint16_t, const char *> bits[] = {
        {0x8000, "QR"}, {0x0400, "AA"}, {0x0200, "TC"}, {0x0100, "RD"},
        {0x0080, "RA"}, {0x0040, "Z"},  {0x0020, "AD"}, {0x0010, "CD"}};
    for (const auto &[bit, name] : bits)
        if (f & bit) s += std::string(name) + " ";
    s += "opcode=" + std::to_string((f >> 11) & 0xf) + " rcode=" + std::to_string(f & 0xf);
    return s;
}

std::vector<std::string> semantic_diff(const Message &a, const Message &b) {
    std::vector<std::string> out;
    if (!a.ok || !b.ok) {
        out.push_back("unparsable: [" + a.error + "] vs [" + b.error + "]");
        return out;
    }
    if (a.id != b.id) out.push_back("ID " + std::to_string(a.id) + " vs " + std::to_string(b.id));
    if (a.flags != b.flags)
        out.push_back("flags [" + describe_flags(a.flags) + "] vs [" + describe_flags(b.flags) +
                      "]");
    if (a.rcode() != b.rcode())
        out.push_back("rcode " + std::to_string(a.rcode()) + " vs " + std::to_string(b.rcode()));
    if (a.question != b.question)
        out.push_back("question " + hex(a.question) + " vs " + hex(b.question));
    diff_sets("answer", a.answer, b.answer, out);
    diff_sets("authority", a.authority, b.authority, out);
    diff_sets("additional", a.additional, b.additional, out);
    if (a.opt_count != b.opt_count)
        out.push_back("OPT records " + std::to_string(a.opt_count) + " vs " +
                      std::to_string(b.opt_count));
    if (a.opt && b.opt) {
        const Opt &x = *a.opt, &y = *b.opt;
        if (x.owner != y.owner) out.push_back("OPT owner " + hex(x.owner) + " vs " + hex(y.owner));
        if (x.payload != y.payload)
            out.push_back("OPT payload " + std::to_string(x.payload) + " vs " +
                          std::to_string(y.payload));
        if (x.version != y.version)
            out.push_back("OPT version " + std::to_string(x.version) + " vs " +
                          std::to_string(y.version));
        if (x.ext_rcode != y.ext_rcode)
            out.push_back("OPT extended rcode " + std::to_string(x.ext_rcode) + " vs " +
                          std::to_string(y.ext_rcode));
        if ((x.flags & 0x8000) != (y.flags & 0x8000))
            out.push_back(std::string("OPT DO ") + ((x.flags & 0x8000) ? "1" : "0") + " vs " +
                          ((y.flags & 0x8000) ? "1" : "0"));
        if ((x.flags & 0x7fff) != (y.flags & 0x7fff))
            out.push_back("OPT Z " + std::to_string(x.flags & 0x7fff) + " vs " +
                          std::to_string(y.flags & 0x7fff));
        if (x.options != y.options)
            out.push_back("OPT options " + hex(x.options) + " vs " + hex(y.options));
    }
    return out;
}

}  // namespace fabdns::test
