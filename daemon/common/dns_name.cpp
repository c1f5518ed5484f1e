// DNS label and zone spelling rules (see dns_name.hpp).
#include "common/dns_name.hpp"

#include <algorithm>

namespace fabdns {

namespace {

constexpr size_t kMaxLabel = 63;

bool lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

bool is_dns_label(std::string_view s) {
    if (s.empty() || s.size() > kMaxLabel) return false;
    if (!lower_alnum(s.front()) || !lower_alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return lower_alnum(c) || c == '-'; });
}

size_t normalise_name(std::string_view name, char *out) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    for (size_t i = 0; i < name.size(); i++) {
        const char c = name[i];
        out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return name.size();
}

std::string normalise_name(std::string_view name) {
    std::string out(name.size(), '\0');
    out.resize(normalise_name(name, out.data()));
    return out;
}

std::optional<std::string> normalise_zone(std::string_view zone) {
    std::string z = normalise_name(zone);
    if (z.empty() || z.size() > kMaxZoneText) return std::nullopt;
    size_t start = 0;
    while (start <= z.size()) {
        size_t dot = z.find('.', start);
        if (dot == std::string::npos) dot = z.size();
        std::string_view label(z.data() + start, dot - start);
        if (label.empty() || label.size() > kMaxLabel) return std::nullopt;
        const bool ok = std::all_of(label.begin(), label.end(),
                                    [](char c) { return lower_alnum(c) || c == '-' || c == '_'; });
        if (!ok || label.front() == '-' || label.back() == '-') return std::nullopt;
        start = dot + 1;
    }
    return z;
}

}  // namespace fabdns
