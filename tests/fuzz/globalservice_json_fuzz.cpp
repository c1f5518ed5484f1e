// libFuzzer target: decode_globalservice_list() (the hub and Kubernetes sources' decoder) on
// any JSON document; what decodes is loaded into an engine. It must never throw.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "engine_load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const auto doc = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_discarded())
        fabdns::fuzz::load_into_engine(fabdns::decode_globalservice_list(doc).services);
    return 0;
}
