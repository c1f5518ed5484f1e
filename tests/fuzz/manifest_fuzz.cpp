// libFuzzer target: parse_manifests() (the file source's YAML reader) on arbitrary text; what
// decodes is loaded into an engine. Invalid YAML must end in std::runtime_error, nothing else.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine_load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        fabdns::fuzz::load_into_engine(fabdns::parse_manifests(text).services);
    } catch (const std::runtime_error &) {
        // Invalid YAML is reported by exception, as documented.
    }
    return 0;
}
