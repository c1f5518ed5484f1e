// Map compiler: desired set from the engine, capacity ranking, and diff-apply to the map.
#include "compiler/compiler.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "common/log.hpp"
#include "common/name_compression.hpp"
#include "dns_wire.h"
#include "engine/wire.hpp"

namespace fabdns {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// FNV-1a 64 over the bytes fed, with a final avalanche. Two different values colliding would
// only skip one write of a changed entry (chance ~2^-64 per change); the next change of that
// entry writes it.
class Digest {
  public:
    Digest &add(const void *p, size_t n) {
        const auto *b = static_cast<const uint8_t *>(p);
        for (size_t i = 0; i < n; i++) h_ = (h_ ^ b[i]) * 0x100000001b3ULL;
        return *this;
    }
    template <typename T>
    Digest &add(T v) {
        return add(&v, sizeof(v));
    }
    uint64_t get() const {
        uint64_t z = h_;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

  private:
    uint64_t h_ = 0xcbf29ce484222325ULL;
};

// Everything but the kernel's hit counter: equal digests mean no write is needed.
uint64_t value_digest(const fabdns_answer &v) {
    return Digest{}
        .add(v.name, sizeof(v.name))
        .add(v.ttl)
        .add(v.count)
        .add(v.kind)
        .add(v.soa_len)
        .add(v.zone_len)
        .add(v.rdata, sizeof(v.rdata))
        .get();
}

// What the sync compares in place with an engine answer (see answer_held_digest()): the name,
// kind and TTL, then the addresses, or for NODATA the zone's length (its bytes follow from
// name, zone and TTL alone).
uint64_t held_digest(const fabdns_answer_key &k, const fabdns_answer &v) {
    Digest d;
    const std::string_view name = maps::dotted_name(v);
    d.add(name.data(), name.size()).add(v.kind).add(v.ttl);
    if (v.kind == FABDNS_ANSWER_NODATA) {
        d.add(v.zone_len);
    } else if (v.kind == FABDNS_ANSWER_ADDRESSES) {
        const size_t len = k.qtype == DNS_TYPE_A ? 4 : 16;
        d.add(v.count).add(v.rdata, std::min(sizeof(v.rdata), v.count * len));
    }
    return d.get();
}

// held_digest() of the value the map would hold for this answer, computed in place: this runs
// for every answer on every sync, so it builds nothing.
uint64_t answer_held_digest(std::string_view name, const Answer &ans) {
    Digest d;
    d.add(name.data(), name.size());
    if (ans.answer.empty()) {
        const Record &soa = ans.authority.front();
        d.add(static_cast<uint8_t>(FABDNS_ANSWER_NODATA)).add(soa.ttl);
        d.add(static_cast<uint8_t>(soa.owner.size()));
        return d.get();
    }
    d.add(static_cast<uint8_t>(FABDNS_ANSWER_ADDRESSES)).add(ans.answer.front().ttl);
    d.add(static_cast<uint8_t>(ans.answer.size()));
    for (const auto &rr : ans.answer) d.add(rr.rdata.data(), rr.rdata.size());
    return d.get();
}

maps::KernelAnswer to_kernel(std::string_view name, uint16_t qtype, const Answer &ans) {
    maps::KernelAnswer k;
    k.name = std::string(name);
    k.qtype = qtype;
    k.ttl = ans.answer.front().ttl;
    for (const auto &rr : ans.answer) {
        std::array<uint8_t, 16> a{};
        std::memcpy(a.data(), rr.rdata.data(), std::min<size_t>(16, rr.rdata.size()));
        k.addrs.push_back(a);
    }
    return k;
}

// Labels of an uncompressed wire name at data[pos], lowercase; pos moves past it.
std::optional<std::vector<std::string>> wire_labels(const std::vector<uint8_t> &data, size_t &pos) {
    std::vector<std::string> labels;
    while (pos < data.size()) {
        const size_t len = data[pos++];
        if (len == 0) return labels;
        if (len > DNS_LABEL_MAX || pos + len > data.size()) return std::nullopt;
        std::string l(reinterpret_cast<const char *>(&data[pos]), len);
        for (char &c : l)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        labels.push_back(std::move(l));
        pos += len;
    }
    return std::nullopt;
}

std::vector<std::string> dotted_labels(std::string_view dotted) {
    std::vector<std::string> labels;
    while (!dotted.empty()) {
        const size_t dot = dotted.find('.');
        labels.emplace_back(dotted.substr(0, dot));
        dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
    }
    return labels;
}

// The SOA record of the NODATA reply to `qname`, up to its serial, byte for byte as the
// resolver writes it after the question (the answer section is empty); nullopt when the record
// is not an SOA. Both compress names through NameCompressor.
std::optional<std::vector<uint8_t>> soa_head(std::string_view qname, const Record &soa) {
    if (soa.type != DNS_TYPE_SOA || soa.rdata.size() < FABDNS_SOA_TAIL_LEN) return std::nullopt;
    const std::span<const uint8_t> rd = soa.rdata;
    const auto rname = uncompressed_name_end(rd, 0);
    const auto names_end = rname ? uncompressed_name_end(rd, *rname) : std::nullopt;
    if (!names_end || *names_end + FABDNS_SOA_TAIL_LEN != rd.size()) return std::nullopt;

    // The reply from its header on, so that pointers hold the offsets the resolver's do.
    std::vector<uint8_t> msg(DNS_HDR_LEN), name;
    std::vector<uint16_t> offsets;
    NameCompressor c(msg, offsets);
    engine_detail::append_name(name, qname);
    c.write(name);
    msg.resize(msg.size() + DNS_QUESTION_FIXED_LEN);
    const size_t head = msg.size();
    name.clear();
    engine_detail::append_name(name, soa.owner);
    c.write(name);
    const size_t fixed = msg.size();
    msg.resize(fixed + DNS_RR_FIXED_LEN);
    c.write(rd);
    c.write(rd.subspan(*rname));
    const size_t rdlen = msg.size() - fixed - DNS_RR_FIXED_LEN + FABDNS_SOA_TAIL_LEN;
    const uint32_t ttl = soa.ttl;
    const uint8_t rr[DNS_RR_FIXED_LEN] = {0,
                                          DNS_TYPE_SOA,
                                          0,
                                          DNS_CLASS_IN,
                                          static_cast<uint8_t>(ttl >> 24),
                                          static_cast<uint8_t>(ttl >> 16),
                                          static_cast<uint8_t>(ttl >> 8),
                                          static_cast<uint8_t>(ttl),
                                          static_cast<uint8_t>(rdlen >> 8),
                                          static_cast<uint8_t>(rdlen)};
    std::memcpy(&msg[fixed], rr, sizeof(rr));
    return std::vector<uint8_t>(msg.begin() + static_cast<std::ptrdiff_t>(head), msg.end());
}

// soa_head() once per distinct shape of question. The SOA's names are compressed against the
// question, so the head depends on the question only through its length and its longest
// suffix that is also a suffix of one of the SOA's names (every shorter suffix of those matches
// too, no longer one does): for a zone's service names a few shapes, where compressing per name
// took a third of the compiler's time at 100,000 services.
class SoaHeads {
  public:
    const std::optional<std::vector<uint8_t>> &get(std::string_view qname, const Record &soa) {
        Zone &z = zone(soa);
        size_t matched = qname.size();
        for (size_t from = qname.size(); from > 0;) {
            // Back over one label: `from` is just after a dot.
            const size_t dot = from == qname.size() ? qname.rfind('.')
                               : from >= 2          ? qname.rfind('.', from - 2)
                                                    : std::string_view::npos;
            from = dot == std::string_view::npos ? 0 : dot + 1;
            if (!z.suffixes.count(qname.substr(from))) break;
            matched = from;
        }
        const size_t len = qname.size();
        key_.assign(reinterpret_cast<const char *>(&len), sizeof(len));
        key_.append(qname.substr(matched));
        auto it = z.heads.find(key_);
        if (it == z.heads.end()) it = z.heads.emplace(key_, soa_head(qname, soa)).first;
        return it->second;
    }

  private:
    struct Zone {
        Record soa;
        std::set<std::string, std::less<>> suffixes;  // of the owner, mname and rname, dotted
        std::unordered_map<std::string, std::optional<std::vector<uint8_t>>> heads;
    };

    Zone &zone(const Record &soa) {
        for (Zone &z : zones_)
            if (z.soa == soa) return z;
        Zone z;
        z.soa = soa;
        auto add = [&](const std::vector<std::string> &labels) {
            for (size_t i = 0; i < labels.size(); i++) {
                std::string suffix = labels[i];
                for (size_t l = i + 1; l < labels.size(); l++) (suffix += '.') += labels[l];
                z.suffixes.insert(std::move(suffix));
            }
        };
        // An SOA that does not parse gives no head to any question: no suffixes, one shape
        // per length.
        size_t pos = 0;
        auto mname = wire_labels(soa.rdata, pos);
        auto rname = mname ? wire_labels(soa.rdata, pos) : std::nullopt;
        if (rname) {
            add(dotted_labels(soa.owner));
            add(*mname);
            add(*rname);
        }
        zones_.push_back(std::move(z));
        return zones_.back();
    }

    std::vector<Zone> zones_;  // one per zone: a few
    std::string key_;          // reused: the question's length and its matched suffix
};

enum class Want { No, Unfit, Yes };

// Whether the kernel serves names of this naming form: a service's own names, never the names
// of a Headless service's pods (SPEC §4), nor apex or empty non-terminal names.
bool kernel_form(std::string_view form) {
    return form == "service" || form == "short" || form == "cluster" || form == "old";
}

// Whether the kernel serves an answer from for_each_service_answer(): address answers and
// NODATA of kernel_form() names, when they fit; never NXDOMAIN or other rcodes.
Want classify(std::string_view name, std::string_view form, const Answer &ans) {
    if (!kernel_form(form) || ans.rcode != Rcode::NoError) return Want::No;
    if (!ans.answer.empty())
        return maps::fits_kernel(name, ans.answer.size()) ? Want::Yes : Want::Unfit;
    if (ans.authority.size() != 1) return Want::No;
    return maps::fits_kernel_name(name) ? Want::Yes : Want::Unfit;
}

// The SOA head of the NODATA entry of an answer classify() wants, or nullptr when that entry
// does not fit: the ranking asks this of every answer without building the entry.
const std::vector<uint8_t> *nodata_head(std::string_view name, const Answer &ans, SoaHeads &heads) {
    const Record &soa = ans.authority.front();
    const auto &head = heads.get(name, soa);
    if (!head || !maps::fits_kernel_nodata(name, soa.owner, head->size())) return nullptr;
    return &*head;
}

std::optional<maps::KernelAnswer> nodata_entry(std::string_view name, uint16_t qtype,
                                               const Answer &ans, SoaHeads &heads) {
    const std::vector<uint8_t> *head = nodata_head(name, ans, heads);
    if (!head) return std::nullopt;
    const Record &soa = ans.authority.front();
    maps::KernelAnswer k;
    k.kind = FABDNS_ANSWER_NODATA;
    k.name = std::string(name);
    k.qtype = qtype;
    k.ttl = soa.ttl;
    k.zone = soa.owner;
    k.soa = *head;
    return k;
}

// The kernel entry of an answer classify() wants: its addresses, or its NODATA (nullopt when
// the SOA part does not fit the entry).
std::optional<maps::KernelAnswer> wanted_entry(std::string_view name, uint16_t qtype,
                                               const Answer &ans, SoaHeads &heads) {
    if (!ans.answer.empty()) return to_kernel(name, qtype, ans);
    return nodata_entry(name, qtype, ans, heads);
}

// The zone entry NODATA entries refer to: the SOA's serial and timers.
maps::KernelAnswer zone_entry(const Record &soa) {
    maps::KernelAnswer k;
    k.kind = FABDNS_ANSWER_ZONE;
    k.name = soa.owner;
    k.qtype = DNS_TYPE_SOA;
    k.ttl = soa.ttl;
    k.soa.assign(soa.rdata.end() - FABDNS_SOA_TAIL_LEN, soa.rdata.end());
    return k;
}

}  // namespace

std::vector<maps::KernelAnswer> kernel_answers(const Engine &engine, size_t *unfit) {
    std::vector<maps::KernelAnswer> out;
    // Sized once: growing by doubling would hold the old and the new array at once.
    out.reserve(engine.service_answer_count() + engine.options().zones.size());
    std::map<std::string, maps::KernelAnswer> zones;
    SoaHeads heads;
    size_t skipped = 0;
    engine.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &ans) {
            const Want w = classify(name, form, ans);
            if (w == Want::No) return;
            if (w == Want::Unfit) {
                skipped++;
                return;
            }
            auto k = wanted_entry(name, qtype, ans, heads);
            if (!k) {
                skipped++;
                return;
            }
            if (k->kind == FABDNS_ANSWER_NODATA)
                zones.try_emplace(k->zone, zone_entry(ans.authority.front()));
            out.push_back(std::move(*k));
        });
    for (auto &[zone, k] : zones) out.push_back(std::move(k));
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.name != b.name ? a.name < b.name : a.qtype < b.qtype;
    });
    if (unfit) *unfit = skipped;
    return out;
}

KernelChoice kernel_choice(std::string_view name, uint16_t qtype, const Explanation &ex) {
    const Answer &a = ex.answer;
    KernelChoice c;
    if (!a.in_zone) {
        c.why_not = "outside every zone: user space forwards it or answers REFUSED";
    } else if (a.rcode != Rcode::NoError) {
        c.why_not = "only NOERROR answers are served in the kernel; this one stays in user space";
    } else if (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA) {
        c.why_not = "the kernel answers only A and AAAA; other types stay in user space";
    } else if (ex.form == "pod") {
        c.why_not = "headless pod names stay in user space";
    } else if (!kernel_form(ex.form)) {
        c.why_not = "NODATA of apex and empty non-terminal names stays in user space";
    } else if (classify(name, ex.form, a) != Want::Yes) {
        c.why_not = a.answer.size() > FABDNS_MAX_RECORDS
                        ? std::to_string(a.answer.size()) + " records: answers of more than " +
                              std::to_string(FABDNS_MAX_RECORDS) + " stay in user space"
                        : "the name does not fit the kernel's key (length or characters)";
    } else if (SoaHeads heads; auto k = wanted_entry(name, qtype, a, heads)) {
        c.entry = std::move(k);
    } else {
        c.why_not = "its NODATA does not fit the kernel's entry (SOA names too long)";
    }
    return c;
}

MapCompiler::MapCompiler(maps::AnswerTable &table) : table_(table) {
    table_.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) {
        const Entry e = entry_for(k, v);
        count(e, 1);
        shadow_[k] = e;
    });
}

MapCompiler::Entry MapCompiler::entry_for(const fabdns_answer_key &k, const fabdns_answer &v) {
    Entry e{value_digest(v), held_digest(k, v), generation_, kNoZone};
    if (v.kind != FABDNS_ANSWER_NODATA) return e;
    fabdns_answer_key z;
    std::memcpy(&z, v.rdata, sizeof(z));
    size_t i = 0;
    while (i < zone_keys_.size() && std::memcmp(&zone_keys_[i], &z, sizeof(z)) != 0) i++;
    if (i == zone_keys_.size()) {
        if (i == kNoZone) return e;  // not counted: no 65,535 zones are configured
        zone_keys_.push_back(z);
        nodata_.push_back(0);
    }
    e.zone = static_cast<uint16_t>(i);
    return e;
}

void MapCompiler::count(const Entry &e, int delta) {
    if (e.zone != kNoZone) nodata_[e.zone] += static_cast<size_t>(delta);
}

void MapCompiler::note_query(std::string_view name, uint16_t qtype) {
    // Only A and AAAA answers can move into the kernel.
    if (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA) return;
    std::lock_guard lock(queries_mu_);
    auto it = user_queries_.find(name);
    if (it == user_queries_.end()) {
        // Bounded: a flood of distinct names must not grow memory without limit.
        if (user_queries_.size() > 1'000'000) user_queries_.clear();
        it = user_queries_.emplace(std::string(name), std::array<uint64_t, 2>{}).first;
    }
    it->second[qtype == DNS_TYPE_AAAA]++;
    noted_++;
}

bool MapCompiler::ranking_outdated() const {
    std::lock_guard lock(queries_mu_);
    return ranked_ && noted_ != noted_at_rank_;
}

void MapCompiler::stage(const fabdns_answer_key &k, const fabdns_answer &v, Batch &batch) {
    auto it = shadow_.find(k);
    if (it != shadow_.end() && it->second.value == value_digest(v)) {
        it->second.generation = generation_;
        return;
    }
    batch.push_back(maps::AnswerChange{k, v});
}

void MapCompiler::stage_removals(Batch &batch) {
    for (const auto &[k, e] : shadow_)
        if (e.generation != generation_) batch.push_back(maps::AnswerChange{k, std::nullopt});
}

bool MapCompiler::commit(const Batch &batch, CompileStats &st) {
    if (batch.empty()) return true;
    std::vector<maps::AnswerFailure> failed;
    try {
        failed = table_.apply(batch);
    } catch (const std::exception &e) {
        // The switch between the table's copies failed: the shadow keeps what it had, so the
        // next sync writes this batch again.
        log::warn(std::string("answer map batch not applied: ") + e.what());
        return false;
    }
    size_t f = 0;
    for (size_t i = 0; i < batch.size(); i++) {
        const auto &c = batch[i];
        if (f < failed.size() && failed[f].index == i) {
            log::warn(std::string("answer map update failed: ") + std::strerror(failed[f].error) +
                      " (" + c.value->name + ")");
            f++;
            continue;
        }
        auto it = shadow_.find(c.key);
        if (it != shadow_.end()) count(it->second, -1);
        if (!c.value) {
            if (it != shadow_.end()) shadow_.erase(it);
            st.removed++;
            continue;
        }
        (it == shadow_.end() ? st.added : st.updated)++;
        const Entry e = entry_for(c.key, *c.value);
        count(e, 1);
        shadow_[c.key] = e;
    }
    return failed.empty();
}

bool MapCompiler::commit_in_parts(size_t n, CompileStats &st,
                                  const std::function<void(size_t, Batch &)> &stage_one) {
    Batch batch;
    batch.reserve(std::min(n, kFirstSyncPart));
    bool made = true;
    for (size_t i = 0; i < n;) {
        for (; i < n && batch.size() < kFirstSyncPart; ++i) stage_one(i, batch);
        made = commit(batch, st) && made;
        batch.clear();
    }
    return made;
}

bool MapCompiler::sync_changes(const Engine &engine, CompileStats &st) {
    if (synced_generation_ == 0) return false;
    const auto t0 = std::chrono::steady_clock::now();
    SoaHeads heads;
    Batch removals, writes;
    auto remove = [&](const fabdns_answer_key &key) {
        if (shadow_.count(key)) removals.push_back(maps::AnswerChange{key, std::nullopt});
    };
    const bool known = engine.for_each_changed_answer(
        synced_generation_,
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &ans) {
            const auto key = maps::make_key(name, qtype);
            const Want w = classify(name, form, ans);
            if (w == Want::Unfit) st.unfit++;
            if (w != Want::Yes) return remove(key);
            auto it = shadow_.find(key);
            if (it != shadow_.end() && it->second.held == answer_held_digest(name, ans)) return;
            if (!ans.answer.empty())
                return writes.push_back({key, maps::make_value(to_kernel(name, qtype, ans))});
            auto k = nodata_entry(name, qtype, ans, heads);
            if (!k) {
                st.unfit++;
                return remove(key);
            }
            writes.push_back({key, maps::make_value(*k)});
        },
        [&](std::string_view name) {
            remove(maps::make_key(name, DNS_TYPE_A));
            remove(maps::make_key(name, DNS_TYPE_AAAA));
        });
    if (!known) return false;

    // Each zone's entry carries the serial, which every update changes; it is wanted while a
    // NODATA entry refers to it, counted as the map will hold them after this batch.
    std::vector<long> nodata(nodata_.begin(), nodata_.end());
    size_t added = 0;
    const size_t first_zone_write = writes.size();
    for (const Batch *b : {&removals, &writes})
        for (const auto &c : *b) {
            auto it = shadow_.find(c.key);
            if (it != shadow_.end() && it->second.zone != kNoZone) nodata[it->second.zone]--;
            if (it == shadow_.end()) added++;
            if (!c.value) continue;
            const Entry e = entry_for(c.key, *c.value);
            if (e.zone != kNoZone) {
                nodata.resize(zone_keys_.size(), 0);
                nodata[e.zone]++;
            }
        }
    for (const std::string &zone : engine.options().zones) {
        const auto key = maps::zone_key(zone);
        size_t i = 0;
        while (i < zone_keys_.size() && std::memcmp(&zone_keys_[i], &key, sizeof(key)) != 0) i++;
        if (i < nodata.size() && nodata[i] > 0) {
            const Answer soa = engine.resolve(zone, DNS_TYPE_SOA);
            if (soa.answer.size() != 1) return false;
            const auto value = maps::make_value(zone_entry(soa.answer.front()));
            auto it = shadow_.find(key);
            if (it == shadow_.end()) added++;
            if (it == shadow_.end() || it->second.value != value_digest(value))
                writes.push_back({key, value});
        } else {
            remove(key);
        }
    }
    if (shadow_.size() + added > table_.capacity()) {
        // Past capacity the full sync ranks what to keep; once it has, the names the map holds
        // are kept current and a changed name it does not hold stays in user space.
        if (!ranked_) return false;
        size_t kept = 0;
        for (size_t i = 0; i < writes.size(); i++) {
            if (i < first_zone_write && !shadow_.count(writes[i].key)) {
                added--;
                st.over_capacity++;
                continue;
            }
            writes[kept++] = writes[i];
        }
        writes.resize(kept);
        if (shadow_.size() + added > table_.capacity()) return false;
    }
    if (ranked_) st.over_capacity += last_.over_capacity;
    st.compile_ms = ms_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    // Removals first, so that additions have room in a full map.
    removals.insert(removals.end(), writes.begin(), writes.end());
    const uint64_t applied = synced_generation_ + 1;
    synced_generation_ = commit(removals, st) ? applied : 0;
    st.desired = st.entries = shadow_.size();
    st.apply_ms = ms_since(t1);
    return true;
}

bool MapCompiler::apply_all(std::vector<maps::KernelAnswer> desired, CompileStats &st) {
    if (shadow_.empty()) {
        return commit_in_parts(desired.size(), st, [&](size_t i, Batch &batch) {
            stage(maps::make_key(desired[i].name, desired[i].qtype), maps::make_value(desired[i]),
                  batch);
        });
    }
    size_t kept = 0;
    for (const auto &a : desired) {
        auto k = maps::make_key(a.name, a.qtype);
        auto it = shadow_.find(k);
        if (it != shadow_.end() && it->second.generation != generation_) {
            it->second.generation = generation_;
            kept++;
        }
    }
    // Sized once (~424 bytes a change, 27 MiB for a full default map): grown by doubling, the
    // batch would pass through one and a half times that at the first sync's peak.
    Batch batch;
    batch.reserve(shadow_.size() - kept + desired.size());
    // Removals are staged first and applied first, so that additions have room in a full map;
    // a removed name simply goes to user space, which answers the same.
    stage_removals(batch);
    for (const auto &a : desired)
        stage(maps::make_key(a.name, a.qtype), maps::make_value(a), batch);
    // The answers are in the batch now: not held beside it while it is written.
    std::vector<maps::KernelAnswer>().swap(desired);
    return commit(batch, st);
}

// The `cap` answers sync() keeps when the engine's set does not fit: zone entries first (the
// NODATA entries kept refer to them), then the highest scores, ties in (name, type) order. One
// walk counts and scores every wanted answer and keeps the best `cap` in a bounded heap, copying
// a name only when it enters the heap; then only the kept names are looked up and built.
std::optional<std::vector<maps::KernelAnswer>> MapCompiler::ranked_answers(const Engine &engine,
                                                                           size_t cap,
                                                                           CompileStats &st) {
    QueryCounts score;
    {
        std::lock_guard lock(queries_mu_);
        score = user_queries_;
        noted_at_rank_ = noted_;
    }
    table_.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) {
        if (k.qtype != DNS_TYPE_A && k.qtype != DNS_TYPE_AAAA) return;
        const std::string_view name = maps::dotted_name(v);
        auto it = score.find(name);
        if (it == score.end()) it = score.emplace(name, std::array<uint64_t, 2>{}).first;
        it->second[k.qtype == DNS_TYPE_AAAA] += v.hits;
    });

    struct Candidate {
        uint64_t points;
        std::string name;
        uint16_t qtype;
    };
    // Orders better answers first; the heap's top is the worst one kept.
    auto better = [](uint64_t ap, std::string_view an, uint16_t at, const Candidate &b) {
        if (ap != b.points) return ap > b.points;
        return an != b.name ? an < b.name : at < b.qtype;
    };
    auto heap_order = [&](const Candidate &a, const Candidate &b) {
        return better(a.points, a.name, a.qtype, b);
    };
    std::vector<Candidate> heap;
    std::map<std::string, maps::KernelAnswer, std::less<>> zones;
    SoaHeads heads;
    size_t wanted = 0;
    engine.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &ans) {
            const Want w = classify(name, form, ans);
            if (w == Want::No) return;
            if (w == Want::Unfit || (ans.answer.empty() && !nodata_head(name, ans, heads))) {
                st.unfit++;
                return;
            }
            wanted++;
            if (ans.answer.empty()) {
                const Record &soa = ans.authority.front();
                if (!zones.count(soa.owner)) zones.emplace(soa.owner, zone_entry(soa));
            }
            auto it = score.find(name);
            const uint64_t points = it == score.end() ? 0 : it->second[qtype == DNS_TYPE_AAAA];
            if (heap.size() < cap) {
                heap.push_back({points, std::string(name), qtype});
                std::push_heap(heap.begin(), heap.end(), heap_order);
            } else if (cap > 0 && better(points, name, qtype, heap.front())) {
                std::pop_heap(heap.begin(), heap.end(), heap_order);
                heap.back().points = points;
                heap.back().name.assign(name);  // reuses the evicted name's buffer
                heap.back().qtype = qtype;
                std::push_heap(heap.begin(), heap.end(), heap_order);
            }
        });
    st.desired = wanted + zones.size();
    if (st.desired <= cap) return std::nullopt;
    // Zones are kept whatever they cost: the worst candidates make room for them.
    while (!heap.empty() && heap.size() + zones.size() > cap) {
        std::pop_heap(heap.begin(), heap.end(), heap_order);
        heap.pop_back();
    }
    // Bit 0: A kept, bit 1: AAAA kept; the names are the heap's.
    std::unordered_map<std::string_view, uint8_t> chosen;
    chosen.reserve(heap.size());
    for (const auto &c : heap) chosen[c.name] |= c.qtype == DNS_TYPE_AAAA ? 2 : 1;

    std::vector<maps::KernelAnswer> kept;
    kept.reserve(std::min(cap, heap.size() + zones.size()));
    for (auto &[zone, k] : zones) {
        if (kept.size() >= cap) break;
        kept.push_back(std::move(k));
    }
    std::vector<std::string_view> names;
    names.reserve(chosen.size());
    for (const auto &[name, types] : chosen) names.push_back(name);
    engine.for_each_answer_of(names, [&](std::string_view name, std::string_view form,
                                         uint16_t qtype, const Answer &ans) {
        if (kept.size() >= cap) return;
        if (!(chosen.at(name) & (qtype == DNS_TYPE_AAAA ? 2 : 1))) return;
        if (classify(name, form, ans) != Want::Yes) return;
        if (auto k = wanted_entry(name, qtype, ans, heads)) kept.push_back(std::move(*k));
    });
    st.over_capacity = st.desired - std::min(st.desired, kept.size());
    return kept;
}

CompileStats MapCompiler::resync(const Engine &engine) {
    synced_generation_ = 0;
    return sync(engine);
}

CompileStats MapCompiler::sync(const Engine &engine) {
    CompileStats st;
    auto t0 = std::chrono::steady_clock::now();
    if (sync_changes(engine, st)) {
        last_ = st;
        return st;
    }
    st = CompileStats{};
    // Read before the walk: should an update land during it, the next sync applies it again.
    const uint64_t walked = engine.generation();
    generation_++;
    size_t cap = table_.capacity();

    // A set that may not fit is ranked first: its walk also counts what is wanted, and only
    // when that fits after all does the pass below run (collecting up to `cap` values, ~430
    // bytes each, only to drop them when the set turns out too big was most of the peak over
    // capacity).
    // Over capacity: rank by queries seen (kernel hits + user-space answers), keep the top;
    // every full sync ranks again (resync(), or an update sync_changes() cannot apply). False
    // when the set fits after all.
    auto rank = [&] {
        synced_generation_ = 0;
        auto kept = ranked_answers(engine, cap, st);
        if (!kept) return false;
        st.compile_ms = ms_since(t0);
        auto t1 = std::chrono::steady_clock::now();
        ranked_ = apply_all(std::move(*kept), st);
        synced_generation_ = ranked_ ? walked : 0;
        st.entries = shadow_.size();
        st.apply_ms = ms_since(t1);
        last_ = st;
        return true;
    };
    const size_t bound = engine.service_answer_count() + engine.options().zones.size();
    if (bound > cap) {
        if (rank()) return st;
        st = CompileStats{};
    }

    // The common case, everything fits: one pass over the engine's answers that marks what
    // the map already holds and collects only what changed, without materialising the whole
    // set (a one-service change costs a walk and a few writes).
    SoaHeads heads;
    bool over = false;
    std::vector<std::pair<fabdns_answer_key, fabdns_answer>> changed;
    // Into an empty map everything is a change: sized once, not doubled into a second copy.
    if (shadow_.empty()) changed.reserve(std::min(bound, cap));
    std::map<std::string, maps::KernelAnswer> zones;
    engine.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t qtype, const Answer &ans) {
            if (over) return;
            const Want w = classify(name, form, ans);
            if (w == Want::No) return;
            if (w == Want::Unfit) {
                st.unfit++;
                return;
            }
            const bool nodata = ans.answer.empty();
            auto key = maps::make_key(name, qtype);
            auto it = shadow_.find(key);
            if (it != shadow_.end() && it->second.held == answer_held_digest(name, ans)) {
                it->second.generation = generation_;
            } else if (nodata) {
                auto k = nodata_entry(name, qtype, ans, heads);
                if (!k) {
                    st.unfit++;
                    return;
                }
                changed.emplace_back(key, maps::make_value(*k));
            } else {
                changed.emplace_back(key, maps::make_value(to_kernel(name, qtype, ans)));
            }
            if (nodata) {
                const Record &soa = ans.authority.front();
                if (!zones.count(soa.owner)) zones.emplace(soa.owner, zone_entry(soa));
            }
            if (++st.desired + zones.size() > cap) over = true;
        });
    if (!over) {
        st.desired += zones.size();
        // The batch reaches the kernel at once; zones lead only to keep the order readable.
        std::vector<std::pair<fabdns_answer_key, fabdns_answer>> zone_values;
        for (const auto &[zone, k] : zones)
            zone_values.emplace_back(maps::zone_key(zone), maps::make_value(k));
        changed.insert(changed.begin(), zone_values.begin(), zone_values.end());
        st.compile_ms = ms_since(t0);
        auto t1 = std::chrono::steady_clock::now();
        // Changed keys are not marked yet: mark them so that removal keeps them, then remove
        // first so that additions have room in a full map.
        bool made;
        if (shadow_.empty()) {
            made = commit_in_parts(changed.size(), st, [&](size_t i, Batch &batch) {
                stage(changed[i].first, changed[i].second, batch);
            });
            changed = {};
        } else {
            for (auto &[k, v] : changed)
                if (auto it = shadow_.find(k); it != shadow_.end())
                    it->second.generation = generation_;
            Batch batch;
            stage_removals(batch);
            for (auto &[k, v] : changed) stage(k, v, batch);
            changed = {};
            made = commit(batch, st);
        }
        synced_generation_ = made ? walked : 0;
        ranked_ = false;
        st.entries = shadow_.size();
        st.apply_ms = ms_since(t1);
        last_ = st;
        return st;
    }

    // The data grew past the map since it was counted: rank it, marking afresh what is kept.
    changed = {};
    st = CompileStats{};
    generation_++;
    if (!rank()) last_ = st;  // it shrank again meanwhile: the next sync walks it anew
    return st;
}

}  // namespace fabdns
