// For the fuzz targets: a decode through a SpanCache must give exactly what the whole decode
// gives; any difference stops the fuzzer (a crash it reports with the input).
#pragma once

#include <cstdlib>

#include "model/document.hpp"

namespace fabdns::fuzz {

inline void require_same(const DocumentResult &plain, const DocumentResult &cached) {
    bool same = plain.error == cached.error && cached.services.empty() &&
                plain.services.size() == cached.shared.size() &&
                plain.rejected.size() == cached.rejected.size() &&
                plain.unlisted_rejections == cached.unlisted_rejections &&
                plain.skipped == cached.skipped &&
                plain.resource_version == cached.resource_version &&
                plain.continue_token == cached.continue_token;
    for (size_t i = 0; same && i < plain.services.size(); ++i)
        same = plain.services[i] == *cached.shared[i];
    for (size_t i = 0; same && i < plain.rejected.size(); ++i)
        same = plain.rejected[i].object == cached.rejected[i].object &&
               plain.rejected[i].reason == cached.rejected[i].reason &&
               plain.rejected[i].key == cached.rejected[i].key;
    if (!same) std::abort();
}

}  // namespace fabdns::fuzz
