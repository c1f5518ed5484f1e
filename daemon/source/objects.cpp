// Set building shared by the sources.
#include "source/objects.hpp"

#include <algorithm>
#include <tuple>

#include "common/log.hpp"

namespace fabdns::source_detail {

bool key_less(const GlobalService &a, const GlobalService &b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
}

const GlobalService *find_held(const std::vector<GlobalService> &held, const std::string &key) {
    size_t slash = key.find('/');
    if (slash == std::string::npos) return nullptr;
    GlobalService probe;
    probe.ns = key.substr(0, slash);
    probe.name = key.substr(slash + 1);
    auto it = std::lower_bound(held.begin(), held.end(), probe, key_less);
    if (it == held.end() || it->ns != probe.ns || it->name != probe.name) return nullptr;
    return &*it;
}

NextSet build_set(DecodeResult &decoded, const std::vector<GlobalService> &held,
                  const std::string &label) {
    NextSet next;
    std::vector<GlobalService> &out = next.services;
    out = std::move(decoded.services);
    decoded.services.clear();
    // Stable, so that among equal keys the last in the document is the last in the run.
    std::stable_sort(out.begin(), out.end(), key_less);
    size_t w = 0;
    for (size_t r = 0; r < out.size(); ++r) {
        bool last_of_run = r + 1 == out.size() || key_less(out[r], out[r + 1]);
        if (!last_of_run) {
            if (r == 0 || key_less(out[r - 1], out[r]))
                log::warn(label + ": " + out[r].key() +
                          " appears more than once; the last one is used");
            continue;
        }
        if (w != r) out[w] = std::move(out[r]);
        ++w;
    }
    out.resize(w);

    auto same = [](const GlobalService &x, const GlobalService &y) {
        return !key_less(x, y) && !key_less(y, x);
    };
    std::vector<GlobalService> kept;
    for (const Rejection &r : decoded.rejected) {
        if (r.key.empty()) continue;
        const GlobalService *old = find_held(held, r.key);
        if (!old) continue;
        // A valid object of the same name in the same document wins over the old version.
        auto in_doc = std::lower_bound(out.begin(), out.end(), *old, key_less);
        if (in_doc != out.end() && same(*in_doc, *old)) continue;
        kept.push_back(*old);
    }
    if (!kept.empty()) {
        std::sort(kept.begin(), kept.end(), key_less);
        kept.erase(std::unique(kept.begin(), kept.end(), same), kept.end());  // rejected twice
        next.kept = kept.size();
        size_t mid = out.size();
        for (auto &s : kept) out.push_back(std::move(s));
        std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(mid), out.end(),
                           key_less);
    }
    return next;
}

void log_rejections(const DecodeResult &decoded, const std::string &label) {
    constexpr size_t kMaxLines = 20;
    const auto &rejected = decoded.rejected;
    for (size_t i = 0; i < rejected.size() && i < kMaxLines; ++i) {
        log::warn(label + ": rejected " + rejected[i].object + ": " + rejected[i].reason);
    }
    size_t total = decoded.rejected_count();
    if (total > kMaxLines)
        log::warn(label + ": " + std::to_string(total - kMaxLines) + " more object(s) rejected");
}

}  // namespace fabdns::source_detail
