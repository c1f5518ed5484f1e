// IP addresses and socket addresses as plain values: parsing, printing, comparison.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fabdns {

// An IPv4 or IPv6 address. IPv4 is kept in its own family (not v4-mapped) so that A and AAAA
// answers can be told apart; bytes are in network order.
struct IpAddr {
    enum class Family : uint8_t { V4 = 4, V6 = 6 };
    Family family = Family::V4;
    std::array<uint8_t, 16> bytes{};  // V4 uses bytes[0..3]

    bool is_v4() const { return family == Family::V4; }
    bool is_v6() const { return family == Family::V6; }
    size_t size() const { return is_v4() ? 4 : 16; }
    bool is_unspecified() const;
    // The 16-byte form used in the kernel's listen map: IPv4 as ::ffff:a.b.c.d.
    std::array<uint8_t, 16> mapped16() const;
    std::string to_string() const;

    static std::optional<IpAddr> parse(std::string_view text);
    static IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);

    auto operator<=>(const IpAddr &) const = default;
};

// An address and port: "127.0.0.1:53", "[::1]:53". parse() also takes a bare address when
// default_port is given ("10.0.0.1" -> 10.0.0.1:default_port).
struct SocketAddr {
    IpAddr ip;
    uint16_t port = 0;

    std::string to_string() const;
    static std::optional<SocketAddr> parse(std::string_view text,
                                           std::optional<uint16_t> default_port = std::nullopt);

    auto operator<=>(const SocketAddr &) const = default;
};

}  // namespace fabdns
