// DNS name compression shared by the resolver's reply writer and the map compiler.
#include "common/name_compression.hpp"

namespace fabdns {
namespace {

constexpr uint8_t kLabelTypeMask = DNS_LABEL_TYPE_MASK;
constexpr uint8_t kLabelPointer = DNS_LABEL_POINTER;
// A pointer holds a 14-bit offset.
constexpr size_t kMaxPointerTarget = 0x4000;

uint8_t ascii_lower(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c | 0x20) : c;
}

}  // namespace

std::optional<size_t> uncompressed_name_end(std::span<const uint8_t> data, size_t pos) {
    while (pos < data.size()) {
        const uint8_t len = data[pos];
        if (len == 0) return pos + 1;
        if (len & kLabelTypeMask) return std::nullopt;
        pos += 1 + size_t{len};
    }
    return std::nullopt;
}

NameCompressor::NameCompressor(std::vector<uint8_t> &msg, std::vector<uint16_t> &names)
    : msg_(msg), names_(names) {
    names_.clear();
}

void NameCompressor::write(std::span<const uint8_t> n) {
    // Only names written before this one: a suffix of it never equals a longer suffix of it
    // (ldns compares whole names), and this name's own bytes are not all written yet.
    const size_t known = names_.size();
    size_t pos = 0;
    while (n[pos] != 0) {
        for (size_t i = 0; i < known; ++i) {
            if (same_name(n.subspan(pos), names_[i])) {
                const auto ptr = static_cast<uint16_t>(kCompressionPointer | names_[i]);
                msg_.push_back(static_cast<uint8_t>(ptr >> 8));
                msg_.push_back(static_cast<uint8_t>(ptr));
                return;
            }
        }
        if (msg_.size() < kMaxPointerTarget) names_.push_back(static_cast<uint16_t>(msg_.size()));
        const size_t len = n[pos];
        msg_.insert(msg_.end(), n.begin() + static_cast<std::ptrdiff_t>(pos),
                    n.begin() + static_cast<std::ptrdiff_t>(pos + 1 + len));
        pos += 1 + len;
    }
    msg_.push_back(0);
}

void NameCompressor::rewind(size_t size) {
    msg_.resize(size);
    while (!names_.empty() && names_.back() >= size) names_.pop_back();
}

// Whether the uncompressed name `n` equals, without case, the name written at `at`.
bool NameCompressor::same_name(std::span<const uint8_t> n, size_t at) const {
    size_t pos = 0;
    for (;;) {
        while ((msg_[at] & kLabelTypeMask) == kLabelPointer)
            at = ((size_t{msg_[at]} << 8) | msg_[at + 1]) & ~size_t{kCompressionPointer};
        const size_t len = n[pos];
        if (msg_[at] != len) return false;
        if (len == 0) return true;
        for (size_t i = 1; i <= len; ++i)
            if (ascii_lower(n[pos + i]) != ascii_lower(msg_[at + i])) return false;
        pos += 1 + len;
        at += 1 + len;
    }
}

}  // namespace fabdns
