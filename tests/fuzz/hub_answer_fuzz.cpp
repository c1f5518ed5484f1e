// libFuzzer target: the hub source's answer handler (source_detail::decide_hub_answer, which
// HubSource runs on every poll, on its snapshot, and fabdnsctl on the snapshot) on any bytes,
// holding a set so that keeping last good versions is exercised; the resulting set is loaded
// into an engine. It must never throw, and the same answer through the source's SpanCache (kept
// from input to input, as from poll to poll), and through an DocumentStream fed in pieces as a poll
// feeds it, must give the same decision.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine_load.hpp"
#include "same_decode.hpp"
#include "source/hub_source.hpp"

namespace {

// What the source holds before the answer: default/nginx and default/mysql.
const fabdns::ServiceList &held() {
    static const fabdns::ServiceList set = [] {
        auto d = fabdns::source_detail::decide_hub_answer(
            R"([{"metadata":{"name":"nginx","namespace":"default"},"spec":{"endpoints":[
                 {"addresses":["10.0.0.1"],"cluster":"beijing"}]}},
                {"metadata":{"name":"mysql","namespace":"default"},"spec":{"type":"Headless",
                 "endpoints":[{"addresses":["fd00::2"],"cluster":"c2","hostname":"m-0"}]}}])",
            {}, false, {}, "fuzz");
        return d.next.services;
    }();
    return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view body(reinterpret_cast<const char *>(data), size);
    fabdns::DecodeLimits limits;
    limits.max_object_bytes = 4096;  // small, so that the oversized-object path runs too
    auto d = fabdns::source_detail::decide_hub_answer(body, held(), true, limits, "fuzz");
    auto same = [&](const fabdns::source_detail::HubDecision &c) {
        bool same = d.refusal == c.refusal && d.category == c.category &&
                    d.next.kept == c.next.kept && d.next.services.size() == c.next.services.size();
        for (size_t i = 0; same && i < d.next.services.size(); ++i)
            same = *d.next.services[i] == *c.next.services[i];
        if (!same) std::abort();
    };
    static fabdns::SpanCache cache;
    same(fabdns::source_detail::decide_hub_answer(body, held(), true, limits, "fuzz", &cache));
    // As a poll decodes it while it arrives, in pieces (of a size the input picks).
    static fabdns::SpanCache stream_cache;
    fabdns::DocumentStream stream(fabdns::Container::Array, limits, stream_cache);
    const size_t piece = 1 + size % 61;
    for (size_t at = 0; at < size; at += piece) stream.feed(body.substr(at, piece));
    if (auto decoded = stream.finish())
        same(fabdns::source_detail::decide_hub_decoded(std::move(*decoded), held(), true, "fuzz"));
    if (d.refusal.empty()) fabdns::fuzz::load_into_engine(fabdns::copy_services(d.next.services));
    return 0;
}
