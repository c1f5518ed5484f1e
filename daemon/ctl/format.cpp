// Text helpers for fabdnsctl: tables, durations, addresses and records.
#include "ctl/format.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

namespace fabdns::ctl {

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::right_align(size_t column) {
    if (right_.size() <= column) right_.resize(column + 1, false);
    right_[column] = true;
}

void Table::add(std::vector<std::string> row) {
    rows_.push_back(std::move(row));
}

std::string Table::render(std::string_view indent) const {
    std::vector<size_t> width;
    auto measure = [&](const std::vector<std::string> &row) {
        if (width.size() < row.size()) width.resize(row.size(), 0);
        for (size_t i = 0; i < row.size(); i++) width[i] = std::max(width[i], row[i].size());
    };
    if (!header_.empty()) measure(header_);
    for (const auto &r : rows_) measure(r);

    std::string out;
    auto line = [&](const std::vector<std::string> &row) {
        std::string l(indent);
        for (size_t i = 0; i < row.size(); i++) {
            bool last = i + 1 == row.size();
            size_t pad = width[i] - row[i].size();
            bool right = i < right_.size() && right_[i];
            if (right) l.append(pad, ' ');
            l += row[i];
            if (!right && !last) l.append(pad, ' ');
            if (!last) l += "  ";
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        out += l;
        out += '\n';
    };
    if (!header_.empty()) line(header_);
    for (const auto &r : rows_) line(r);
    return out;
}

std::string format_duration_ns(uint64_t ns) {
    char buf[64];
    const uint64_t ms = ns / 1000000;
    if (ns < 1000000) {
        std::snprintf(buf, sizeof(buf), "%.1fms", double(ns) / 1e6);
    } else if (ms < 1000) {
        std::snprintf(buf, sizeof(buf), "%llums", static_cast<unsigned long long>(ms));
    } else if (ms < 60000) {
        if (ms % 1000 == 0)
            std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(ms / 1000));
        else
            std::snprintf(buf, sizeof(buf), "%.1fs", double(ms) / 1000.0);
    } else {
        const unsigned long long s = ms / 1000;
        if (s < 3600)
            std::snprintf(buf, sizeof(buf), "%llum%llus", s / 60, s % 60);
        else if (s < 86400)
            std::snprintf(buf, sizeof(buf), "%lluh%llum", s / 3600, (s % 3600) / 60);
        else
            std::snprintf(buf, sizeof(buf), "%llud%lluh", s / 86400, (s % 86400) / 3600);
    }
    return buf;
}

std::string format_address(const uint8_t *bytes, size_t len) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (len == 4) {
        if (!inet_ntop(AF_INET, bytes, buf, sizeof(buf))) return "?";
    } else if (len == 16) {
        if (!inet_ntop(AF_INET6, bytes, buf, sizeof(buf))) return "?";
    } else {
        return "?";
    }
    return buf;
}

uint16_t parse_type(std::string_view text) {
    std::string up;
    for (char c : text) up += (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
    for (uint16_t t : {1, 2, 5, 6, 12, 15, 16, 28, 33, 65, 251, 252, 255})
        if (up == type_name(t)) return t;
    std::string_view digits = up;
    if (digits.substr(0, 4) == "TYPE") digits.remove_prefix(4);
    if (digits.empty() || digits.size() > 5) return 0;
    uint32_t v = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + uint32_t(c - '0');
    }
    return v > 0 && v <= 65535 ? uint16_t(v) : 0;
}

namespace {

// Reads an uncompressed wire name at `pos`; false when it runs past the end.
bool read_name(const std::vector<uint8_t> &d, size_t &pos, std::string &out) {
    out.clear();
    while (pos < d.size()) {
        uint8_t len = d[pos++];
        if (len == 0) {
            out += out.empty() ? "." : "";
            return true;
        }
        if (len > 63 || pos + len > d.size()) return false;
        out.append(reinterpret_cast<const char *>(&d[pos]), len);
        out += '.';
        pos += len;
    }
    return false;
}

std::string generic_rdata(const std::vector<uint8_t> &d) {
    std::string out = "\\# " + std::to_string(d.size());
    if (!d.empty()) out += ' ';
    char hex[3];
    for (uint8_t b : d) {
        std::snprintf(hex, sizeof(hex), "%02x", b);
        out += hex;
    }
    return out;
}

std::string rdata_text(const Record &r) {
    const auto &d = r.rdata;
    if (r.type == dnstype::A && d.size() == 4) return format_address(d.data(), 4);
    if (r.type == dnstype::AAAA && d.size() == 16) return format_address(d.data(), 16);
    if (r.type == dnstype::NS) {
        size_t pos = 0;
        std::string name;
        if (read_name(d, pos, name) && pos == d.size()) return name;
    }
    if (r.type == dnstype::SOA) {
        size_t pos = 0;
        std::string mname, rname;
        if (read_name(d, pos, mname) && read_name(d, pos, rname) && d.size() - pos == 20) {
            std::string out = mname + " " + rname;
            for (int i = 0; i < 5; i++, pos += 4) {
                uint32_t v = uint32_t(d[pos]) << 24 | uint32_t(d[pos + 1]) << 16 |
                             uint32_t(d[pos + 2]) << 8 | uint32_t(d[pos + 3]);
                out += " " + std::to_string(v);
            }
            return out;
        }
    }
    return generic_rdata(d);
}

}  // namespace

std::string format_record(const Record &record) {
    std::string owner = record.owner.empty() ? "." : record.owner + ".";
    return owner + "  " + std::to_string(record.ttl) + "  IN  " + type_name(record.type) + "  " +
           rdata_text(record);
}

std::string kernel_answer_text(const maps::KernelAnswer &a) {
    if (a.kind == FABDNS_ANSWER_NODATA)
        return "NODATA (SOA of " + (a.zone.empty() ? std::string(".") : a.zone) + ")";
    if (a.kind == FABDNS_ANSWER_ZONE) {
        const uint32_t serial = a.soa.size() >= 4
                                    ? uint32_t{a.soa[0]} << 24 | uint32_t{a.soa[1]} << 16 |
                                          uint32_t{a.soa[2]} << 8 | a.soa[3]
                                    : 0;
        return "zone SOA, serial " + std::to_string(serial);
    }
    std::string out;
    const size_t len = a.qtype == DNS_TYPE_A ? 4 : 16;
    for (const auto &addr : a.addrs) {
        if (!out.empty()) out += ' ';
        out += format_address(addr.data(), len);
    }
    return out;
}

}  // namespace fabdns::ctl
