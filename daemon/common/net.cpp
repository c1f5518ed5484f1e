// Parsing and printing of IP and socket addresses (inet_pton/inet_ntop underneath).
#include "common/net.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace fabdns {

bool IpAddr::is_unspecified() const {
    for (size_t i = 0; i < size(); i++)
        if (bytes[i] != 0) return false;
    return true;
}

std::array<uint8_t, 16> IpAddr::mapped16() const {
    if (is_v6()) return bytes;
    std::array<uint8_t, 16> out{};
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(&out[12], bytes.data(), 4);
    return out;
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
    return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    std::string s(text);
    IpAddr a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
        a.family = Family::V4;
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.family = Family::V6;
        return a;
    }
    return std::nullopt;
}

IpAddr IpAddr::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    IpAddr ip;
    ip.bytes[0] = a;
    ip.bytes[1] = b;
    ip.bytes[2] = c;
    ip.bytes[3] = d;
    return ip;
}

std::string SocketAddr::to_string() const {
    std::string out;
    if (ip.is_v6()) {
        out.append("[").append(ip.to_string()).append("]");
    } else {
        out.append(ip.to_string());
    }
    return out.append(":").append(std::to_string(port));
}

static std::optional<uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > 65535)
        return std::nullopt;
    return static_cast<uint16_t>(v);
}

std::optional<SocketAddr> SocketAddr::parse(std::string_view text,
                                            std::optional<uint16_t> default_port) {
    SocketAddr out;
    std::string_view host = text, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
            if (port.empty()) return std::nullopt;
        }
    } else if (auto colon = text.rfind(':');
               colon != std::string_view::npos && text.find(':') == colon) {
        host = text.substr(0, colon);  // exactly one colon: IPv4 (or name) with a port
        port = text.substr(colon + 1);
        if (port.empty()) return std::nullopt;
    }
    auto ip = IpAddr::parse(host);
    if (!ip) return std::nullopt;
    out.ip = *ip;
    if (port.empty()) {
        if (!default_port) return std::nullopt;
        out.port = *default_port;
    } else {
        auto p = parse_port(port);
        if (!p) return std::nullopt;
        out.port = *p;
    }
    return out;
}

}  // namespace fabdns
