// libFuzzer target: the Kubernetes source's decoders on any bytes, as its list handler (one
// list page, Container::List) and its watch-event handler (each line of the stream) call them;
// what decodes is loaded into an engine. They must never throw, and the list page through the
// source's SpanCache (kept from input to input, as from list to list) must decode the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine_load.hpp"
#include "model/document.hpp"
#include "same_decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    fabdns::DecodeLimits limits;
    limits.max_object_bytes = 4096;
    fabdns::DocumentResult page =
        fabdns::decode_json_document(text, fabdns::Container::List, limits);
    static fabdns::SpanCache cache;
    fabdns::fuzz::require_same(
        page, fabdns::decode_json_document(text, fabdns::Container::List, limits, cache));
    if (page.error.empty()) fabdns::fuzz::load_into_engine(std::move(page.services));

    std::vector<fabdns::GlobalService> watched;
    for (size_t start = 0; start <= text.size();) {
        size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        fabdns::WatchEvent ev = fabdns::decode_watch_event(text.substr(start, nl - start), limits);
        if (ev.service) watched.push_back(std::move(*ev.service));
        start = nl + 1;
    }
    fabdns::fuzz::load_into_engine(std::move(watched));
    return 0;
}
