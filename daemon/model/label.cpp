// The process-wide pool behind Label: one map from text to entry under a mutex. Lookups and the
// drop of an entry's last reference take the mutex; copies and other releases are atomic
// counts only.
#include "model/label.hpp"

#include <mutex>
#include <ostream>
#include <unordered_map>

namespace fabdns {

namespace {

struct Pool {
    std::mutex mu;
    // Keys view the entries' own text, which lives as long as the entry.
    std::unordered_map<std::string_view, void *> entries;
};

// Never destroyed: Labels in static objects or on threads still running at exit may outlive
// any destruction order.
Pool &pool() {
    static Pool *p = new Pool;
    return *p;
}

}  // namespace

Label::Entry *Label::intern(std::string_view text) {
    if (text.empty()) return nullptr;
    Pool &p = pool();
    std::lock_guard lock(p.mu);
    auto it = p.entries.find(text);
    if (it != p.entries.end()) {
        // An entry in the map has a reference: its count reaches zero only under this mutex,
        // and it leaves the map in the same step.
        auto *e = static_cast<Entry *>(it->second);
        e->refs.fetch_add(1, std::memory_order_relaxed);
        return e;
    }
    auto *e = new Entry{{1}, std::string(text)};
    p.entries.emplace(e->text, e);
    return e;
}

void Label::release(Entry *e) noexcept {
    // Not the last reference: drop it without the mutex. A count of one may be the last, and
    // only under the mutex may it reach zero, so that no lookup can find (and revive) an entry
    // that is being deleted.
    uint32_t n = e->refs.load(std::memory_order_relaxed);
    while (n > 1)
        if (e->refs.compare_exchange_weak(n, n - 1, std::memory_order_release,
                                          std::memory_order_relaxed))
            return;
    Pool &p = pool();
    std::lock_guard lock(p.mu);
    if (e->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    p.entries.erase(std::string_view(e->text));
    delete e;
}

const std::string &Label::empty_string() noexcept {
    static const std::string empty;
    return empty;
}

size_t Label::pool_size() {
    Pool &p = pool();
    std::lock_guard lock(p.mu);
    return p.entries.size();
}

std::ostream &operator<<(std::ostream &out, const Label &label) {
    return out << label.str();
}

}  // namespace fabdns
