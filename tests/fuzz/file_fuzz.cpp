// libFuzzer target: the file source's loader (source_detail::decode_manifest_file, which
// FileSource runs on every file) on any bytes, as a .json and as a .yaml file; what decodes is
// loaded into an engine. A syntax error must come back as false with a reason, nothing else. As
// .json it is decoded through a SpanCache too (kept from input to input, as from one version of
// a file to the next), and read in pieces through a DocumentStream (as FileSource reads a JSON
// file), which must give the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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
        static fabdns::SpanCache stream_cache;
        fabdns::DocumentStream stream(fabdns::Container::Manifest, {}, stream_cache);
        const size_t piece = 1 + size % 61;
        for (size_t at = 0; at < size; at += piece)
            stream.feed(std::string_view(text).substr(at, piece));
        if (auto streamed = stream.finish()) fabdns::fuzz::require_same(plain, *streamed);
    }
    for (const char *name : {"gs.json", "gs.yaml"}) {
        fabdns::DecodeResult out;
        std::string why;
        if (fabdns::source_detail::decode_manifest_file(name, text, out, why))
            fabdns::fuzz::load_into_engine(std::move(out.services));
    }
    return 0;
}
