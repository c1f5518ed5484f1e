// Set building shared by the sources.
#include "source/objects.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/log.hpp"

namespace fabdns::source_detail {

namespace {

bool ptr_less(const ServicePtr &a, const ServicePtr &b) {
    return key_less(*a, *b);
}

bool same_key(const GlobalService &x, const GlobalService &y) {
    return !key_less(x, y) && !key_less(y, x);
}

SortKey sort_key(const GlobalService &s, uint32_t pos) {
    unsigned char bytes[16] = {};
    size_t n = std::min(s.ns.size(), sizeof bytes);
    std::memcpy(bytes, s.ns.data(), n);
    if (n < sizeof bytes) {
        ++n;  // the NUL after the namespace
        size_t m = std::min(s.name.size(), sizeof bytes - n);
        std::memcpy(bytes + n, s.name.data(), m);
    }
    SortKey k;
    for (int i = 0; i < 8; ++i) k.high = k.high << 8 | bytes[i];
    for (int i = 8; i < 16; ++i) k.low = k.low << 8 | bytes[i];
    k.pos = pos;
    return k;
}

bool same_prefix(const SortKey &a, const SortKey &b) {
    return a.high == b.high && a.low == b.low;
}

// The keys of `in` sorted by namespace/name, stably (among equal keys the last in the document
// stays last): by the keys' first 16 bytes held apart, a 100,000-service set being far larger
// than the caches. The caller walks `in` in their order and compares neighbours by them too.
std::vector<SortKey> sorted_keys(const std::vector<ServicePtr> &in) {
    std::vector<SortKey> keys;
    keys.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i)
        keys.push_back(sort_key(*in[i], static_cast<uint32_t>(i)));
    std::sort(keys.begin(), keys.end(), [&](const SortKey &a, const SortKey &b) {
        if (a.high != b.high) return a.high < b.high;
        if (a.low != b.low) return a.low < b.low;
        if (key_less(*in[a.pos], *in[b.pos])) return true;
        if (key_less(*in[b.pos], *in[a.pos])) return false;
        return a.pos < b.pos;
    });
    return keys;
}

// Whether memo.keys is the sorted order of `in` too: the names at every position are the same
// (an unchanged service is the very pointer, so mostly no name is read). memo.input takes the
// new pointers on the way.
bool memo_holds(SortMemo &memo, const std::vector<ServicePtr> &in) {
    if (memo.input.size() != in.size()) return false;
    for (size_t i = 0; i < in.size(); ++i) {
        if (memo.input[i] == in[i]) continue;
        if (memo.input[i]->ns != in[i]->ns || memo.input[i]->name != in[i]->name) return false;
        memo.input[i] = in[i];
    }
    return true;
}

}  // namespace

const ServicePtr *find_held(const ServiceList &held, const std::string &key) {
    size_t slash = key.find('/');
    if (slash == std::string::npos) return nullptr;
    GlobalService probe;
    probe.ns = key.substr(0, slash);
    probe.name = key.substr(slash + 1);
    auto it = std::lower_bound(
        held.begin(), held.end(), probe,
        [](const ServicePtr &s, const GlobalService &k) { return key_less(*s, k); });
    if (it == held.end() || !same_key(**it, probe)) return nullptr;
    return &*it;
}

ServiceList unique_services(std::vector<GlobalService> &in, const ServiceList &held,
                            const std::string &label, const std::string &where) {
    std::vector<ServicePtr> shared;
    shared.reserve(in.size());
    for (auto &svc : in) shared.push_back(std::make_shared<const GlobalService>(std::move(svc)));
    in = std::vector<GlobalService>();
    return unique_services(shared, held, label, where);
}

ServiceList unique_services(std::vector<ServicePtr> &in, const ServiceList &held,
                            const std::string &label, const std::string &where, SortMemo *memo) {
    std::vector<SortKey> fresh;
    if (memo && memo_holds(*memo, in)) {
        ++memo->reuses;
    } else {
        fresh = sorted_keys(in);
        if (memo) {
            memo->input = in;
            memo->keys = std::move(fresh);
        }
    }
    const std::vector<SortKey> &keys = memo ? memo->keys : fresh;
    ServiceList out;
    out.reserve(in.size());
    // Few services against a large held set (one file of many): each is searched; else `held`
    // is walked alongside, both being sorted.
    const bool search = in.size() * 16 < held.size();
    size_t h = 0;
    bool run_starts = true;  // the service before ended a run (it may be moved out already)
    for (size_t r = 0; r < keys.size(); ++r) {
        ServicePtr &s = in[keys[r].pos];
        bool last_of_run = r + 1 == keys.size() || !same_prefix(keys[r], keys[r + 1]) ||
                           ptr_less(s, in[keys[r + 1].pos]);
        bool first_of_run = run_starts;
        run_starts = last_of_run;
        if (!last_of_run) {
            if (first_of_run)
                log::warn(label + ": " + s->key() + " appears more than once" + where +
                          "; the last one is used");
            continue;
        }
        if (search) {
            h = static_cast<size_t>(std::lower_bound(held.begin(), held.end(), s, ptr_less) -
                                    held.begin());
        } else {
            // Mostly the very pointer held (an unchanged object): no names compared.
            while (h < held.size() && held[h] != s && ptr_less(held[h], s)) ++h;
        }
        // The held pointer itself is moved rather than copied: its count, beside the service in
        // memory, is then not touched (once here, once when `in` goes).
        if (h < held.size() && held[h] != s && *held[h] == *s)
            out.push_back(held[h]);
        else
            out.push_back(std::move(s));
    }
    in = std::vector<ServicePtr>();
    return out;
}

NextSet build_set(DecodeResult &decoded, const ServiceList &held, const std::string &label,
                  SortMemo *memo) {
    NextSet next;
    if (decoded.services.empty()) {
        next.services = unique_services(decoded.shared, held, label, "", memo);
    } else {
        if (memo) memo->clear();  // values, decoded without a SpanCache: no pointer recurs
        next.services = unique_services(decoded.services, held, label);
    }
    next.kept = keep_last_good(next.services, decoded.rejected, held);
    return next;
}

size_t keep_last_good(ServiceList &out, const std::vector<Rejection> &rejected,
                      const ServiceList &held) {
    ServiceList kept;
    for (const Rejection &r : rejected) {
        if (r.key.empty()) continue;
        const ServicePtr *old = find_held(held, r.key);
        if (!old) continue;
        // A valid object of the same name in the new set wins over the old version.
        auto in_doc = std::lower_bound(out.begin(), out.end(), *old, ptr_less);
        if (in_doc != out.end() && same_key(**in_doc, **old)) continue;
        kept.push_back(*old);
    }
    if (kept.empty()) return 0;
    std::sort(kept.begin(), kept.end(), ptr_less);
    kept.erase(std::unique(kept.begin(), kept.end()), kept.end());  // rejected twice
    size_t n = kept.size();
    size_t mid = out.size();
    for (auto &s : kept) out.push_back(std::move(s));
    std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(mid), out.end(),
                       ptr_less);
    return n;
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
