// libFuzzer target: the file source's loader (source_detail::decode_manifest_file, which
// FileSource runs on every file) on any bytes, as a .json and as a .yaml file; what decodes is
// loaded into an engine. A syntax error must come back as false with a reason, nothing else. As
// .json it is decoded through a SpanCache too (kept from input to input, as from one version of
// a file to the next), which must give the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine_load.hpp"
#include "same_decode.hpp"
#include "source/file_source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    {
        static fabdns::SpanCache cache;
        fabdns::DocumentResult plain =
            fabdns::decode_json_document(text, fabdns::Container::Manifest);
        fabdns::DocumentResult cached =
            fabdns::decode_json_document(text, fabdns::Container::Manifest, {}, cache);
        fabdns::fuzz::require_same(plain, cached);
    }
    for (const char *name : {"gs.json", "gs.yaml"}) {
        fabdns::DecodeResult out;
        std::string why;
        if (fabdns::source_detail::decode_manifest_file(name, text, out, why))
            fabdns::fuzz::load_into_engine(std::move(out.services));
    }
    return 0;
}
