// DNS name compression, the one rule for every reply fabdns writes: the resolver's replies and
// the NODATA SOA the compiler prepares for the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dns_wire.h"

namespace fabdns {

// A compression pointer: the top two bits set, a 14-bit offset below (RFC 1035 §4.1.4).
inline constexpr uint16_t kCompressionPointer = DNS_PTR;

// End of the uncompressed wire name at data[pos] (just past its root label), or nullopt when it
// runs past the end of `data` or holds a pointer or a reserved label type.
std::optional<size_t> uncompressed_name_end(std::span<const uint8_t> data, size_t pos);

// Writes names into a message with compression as ldns does it
// (ldns_dname2buffer_wire_compress): a name becomes a pointer to the earliest name written that
// equals it (compared without case), else its first label followed by the rest written the same
// way; every suffix written in full at an offset below 16384 can be pointed to. Offsets are
// those of the message: msg[0] is the header's first byte.
class NameCompressor {
  public:
    // `names` keeps the offsets that can be pointed to; it is cleared here. A caller writing many
    // messages passes the same vector each time, to allocate once.
    NameCompressor(std::vector<uint8_t> &msg, std::vector<uint16_t> &names);

    // Appends `name`, which starts with an uncompressed wire name (uncompressed_name_end() has
    // accepted it), compressed. The first name of a message is written in full.
    void write(std::span<const uint8_t> name);

    // Forgets the names written from offset `size` on and cuts the message there.
    void rewind(size_t size);

  private:
    bool same_name(std::span<const uint8_t> n, size_t at) const;

    std::vector<uint8_t> &msg_;
    std::vector<uint16_t> &names_;
};

}  // namespace fabdns
