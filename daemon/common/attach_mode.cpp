// The attach modes' names as the config and fabdnsctl spell them.
#include "common/attach_mode.hpp"

namespace fabdns {

const char *to_string(AttachMode mode) {
    switch (mode) {
        case AttachMode::Xdp:
            return "xdp";
        case AttachMode::XdpGeneric:
            return "xdp-generic";
        case AttachMode::Tc:
            return "tc";
    }
    return "?";
}

std::optional<AttachMode> parse_attach_mode(std::string_view text) {
    if (text == "xdp") return AttachMode::Xdp;
    if (text == "xdp-generic") return AttachMode::XdpGeneric;
    if (text == "tc") return AttachMode::Tc;
    return std::nullopt;
}

}  // namespace fabdns
