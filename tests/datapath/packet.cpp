// Frame building and independent reply checking for the datapath tests.
#include "packet.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

namespace fabdns::test {

static void put16(Bytes &b, uint16_t v) {
    b.push_back(v >> 8);
    b.push_back(v & 0xff);
}

Bytes dns_query(const QueryOpts &q) {
    ldns_rdf *name = ldns_dname_new_frm_str(q.name.c_str());
    if (!name) throw std::runtime_error("bad test name " + q.name);
    ldns_pkt *pkt = ldns_pkt_query_new(name, static_cast<ldns_rr_type>(q.qtype),
                                       static_cast<ldns_rr_class>(q.qclass), q.rd ? LDNS_RD : 0);
    ldns_pkt_set_id(pkt, q.id);
    ldns_pkt_set_cd(pkt, q.cd);
    uint8_t *wire = nullptr;
    size_t len = 0;
    if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK) throw std::runtime_error("pkt2wire");
    Bytes out(wire, wire + len);
    free(wire);
    ldns_pkt_free(pkt);
    if (q.edns) {
        out[11] = 1;  // ARCOUNT
        out.push_back(0);
        put16(out, LDNS_RR_TYPE_OPT);
        put16(out, q.edns_size);
        out.push_back(0);  // extended rcode
        out.push_back(q.edns_version);
        put16(out, q.do_bit ? 0x8000 : 0);
        put16(out, q.edns_options.size());
        out.insert(out.end(), q.edns_options.begin(), q.edns_options.end());
    }
    return out;
}

uint16_t inet_checksum(const uint8_t *data, size_t len, uint32_t seed) {
    uint64_t sum = seed;
    for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
    if (len & 1) sum += data[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

static uint32_t pseudo_sum(const uint8_t *src, const uint8_t *dst, size_t alen, size_t udp_len) {
    uint32_t sum = 0;
    for (size_t i = 0; i < alen; i += 2) sum += (src[i] << 8) | src[i + 1];
    for (size_t i = 0; i < alen; i += 2) sum += (dst[i] << 8) | dst[i + 1];
    return sum + 17 + uint32_t(udp_len);
}

Bytes frame(const FrameOpts &f, const Bytes &dns) {
    Bytes b;
    // Destination then source MAC (locally administered addresses).
    b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
    if (f.eth_dst.size() == 6) std::copy(f.eth_dst.begin(), f.eth_dst.end(), b.begin());
    if (f.eth_src.size() == 6) std::copy(f.eth_src.begin(), f.eth_src.end(), b.begin() + 6);
    if (f.vlan) {
        put16(b, 0x8100);
        put16(b, f.vlan_tci);
    }
    put16(b, f.v6 ? 0x86DD : 0x0800);
    size_t udp_len = 8 + dns.size();
    auto src = IpAddr::parse(f.src), dst = IpAddr::parse(f.dst);
    if (!src || !dst) throw std::runtime_error("bad test address");
    size_t alen = f.v6 ? 16 : 4;
    size_t ip_off = b.size();
    if (f.v6) {
        put16(b, static_cast<uint16_t>(0x6000 | f.tos << 4));
        put16(b, 0);
        put16(b, udp_len);
        b.push_back(17);
        b.push_back(f.ttl);
    } else {
        size_t ihl = 20 + f.ip_options.size();
        b.push_back(0x40 | (ihl / 4));
        b.push_back(f.tos);
        put16(b, ihl + udp_len);
        put16(b, 0xbeef);
        put16(b, f.frag);
        b.push_back(f.ttl);
        b.push_back(17);
        put16(b, 0);
    }
    b.insert(b.end(), src->bytes.begin(), src->bytes.begin() + alen);
    b.insert(b.end(), dst->bytes.begin(), dst->bytes.begin() + alen);
    if (!f.v6) {
        b.insert(b.end(), f.ip_options.begin(), f.ip_options.end());
        uint16_t c = inet_checksum(&b[ip_off], b.size() - ip_off);
        b[ip_off + 10] = c >> 8;
        b[ip_off + 11] = c & 0xff;
    }
    size_t udp_off = b.size();
    put16(b, f.sport);
    put16(b, f.dport);
    put16(b, udp_len);
    put16(b, 0);
    b.insert(b.end(), dns.begin(), dns.end());
    uint16_t c = inet_checksum(&b[udp_off], udp_len,
                               pseudo_sum(src->bytes.data(), dst->bytes.data(), alen, udp_len));
    if (c == 0) c = 0xffff;
    b[udp_off + 6] = c >> 8;
    b[udp_off + 7] = c & 0xff;
    return b;
}

Reply parse_reply(const Bytes &in, const Bytes &out) {
    Reply r;
    auto fail = [&](const std::string &e) {
        r.error = e;
        return std::move(r);
    };
    if (out.size() < 14 || in.size() < 14) return fail("frame too short");
    if (std::memcmp(&out[0], &in[6], 6) || std::memcmp(&out[6], &in[0], 6))
        return fail("MAC addresses not swapped");
    size_t off = 12;
    uint16_t proto = (out[off] << 8) | out[off + 1];
    if (proto == 0x8100) {
        if (std::memcmp(&out[12], &in[12], 4)) return fail("VLAN tag changed");
        off += 4;
        proto = (out[off] << 8) | out[off + 1];
    }
    off += 2;
    size_t in_ip = off;  // the query's IP header starts at the same offset
    bool v6 = proto == 0x86DD;
    size_t alen = v6 ? 16 : 4, udp_off;
    const uint8_t *src, *dst;
    if (v6) {
        if (out.size() < off + 40) return fail("short IPv6 header");
        if ((out[off] >> 4) != 6 || out[off + 6] != 17) return fail("bad IPv6 header");
        size_t plen = (out[off + 4] << 8) | out[off + 5];
        if (off + 40 + plen != out.size()) return fail("IPv6 payload length mismatch");
        src = &out[off + 8];
        dst = &out[off + 24];
        if (std::memcmp(src, &in[in_ip + 24], 16) || std::memcmp(dst, &in[in_ip + 8], 16))
            return fail("IPv6 addresses not swapped");
        udp_off = off + 40;
    } else {
        if (proto != 0x0800 || out.size() < off + 20) return fail("bad IPv4 header");
        size_t ihl = (out[off] & 0xf) * 4;
        if ((out[off] >> 4) != 4 || ihl < 20 || out[off + 9] != 17) return fail("bad IPv4 header");
        if (inet_checksum(&out[off], ihl) != 0) return fail("IPv4 header checksum wrong");
        size_t tot = (out[off + 2] << 8) | out[off + 3];
        if (off + tot != out.size()) return fail("IPv4 total length mismatch");
        if (((out[off + 6] << 8) | out[off + 7]) & 0x3fff) return fail("reply is fragmented");
        size_t in_ihl = (in[in_ip] & 0xf) * 4;
        (void)in_ihl;
        src = &out[off + 12];
        dst = &out[off + 16];
        if (std::memcmp(src, &in[in_ip + 16], 4) || std::memcmp(dst, &in[in_ip + 12], 4))
            return fail("IPv4 addresses not swapped");
        udp_off = off + ihl;
    }
    if (out.size() < udp_off + 8) return fail("short UDP header");
    size_t udp_len = (out[udp_off + 4] << 8) | out[udp_off + 5];
    if (udp_off + udp_len != out.size()) return fail("UDP length mismatch");
    size_t in_udp = in_ip + (v6 ? 40 : (in[in_ip] & 0xf) * 4);
    if (std::memcmp(&out[udp_off], &in[in_udp + 2], 2) ||
        std::memcmp(&out[udp_off + 2], &in[in_udp], 2))
        return fail("UDP ports not swapped");
    if (out[udp_off + 6] == 0 && out[udp_off + 7] == 0) return fail("UDP checksum is zero");
    if (inet_checksum(&out[udp_off], udp_len, pseudo_sum(src, dst, alen, udp_len)) != 0)
        return fail("UDP checksum wrong");
    r.dns.assign(out.begin() + udp_off + 8, out.end());
    if (ldns_wire2pkt(&r.pkt, r.dns.data(), r.dns.size()) != LDNS_STATUS_OK)
        return fail("DNS reply does not parse");
    r.ok = true;
    return r;
}

}  // namespace fabdns::test
