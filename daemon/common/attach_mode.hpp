// How the datapath hooks into an interface: `datapath.attach[].mode` in the config and
// `fabdnsctl attach --mode`, and what the loader attaches. The one definition for all three.
#pragma once

#include <optional>
#include <string_view>

namespace fabdns {

enum class AttachMode { Xdp, XdpGeneric, Tc };

// "xdp", "xdp-generic", "tc".
const char *to_string(AttachMode mode);
std::optional<AttachMode> parse_attach_mode(std::string_view text);

}  // namespace fabdns
