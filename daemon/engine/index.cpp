// Building the AnswerIndex (every name, per zone, with its precomputed address sets), from
// nothing or from the index before it, and answering from it. Answers are computed once per
// changed service, never per query.
#include "engine/index.hpp"

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <unordered_map>

#include "engine/topology.hpp"
#include "engine/wire.hpp"

namespace fabdns {

using namespace engine_detail;

namespace engine_detail {

uint64_t name_hash_mask = ~uint64_t{0};

const char *to_string(Form form) {
    switch (form) {
        case Form::Apex:
            return "apex";
        case Form::Service:
            return "service";
        case Form::Short:
            return "short";
        case Form::Cluster:
            return "cluster";
        case Form::Old:
            return "old";
        case Form::Pod:
            return "pod";
        case Form::EmptyNonTerminal:
            return "empty-non-terminal";
    }
    return "none";
}

ServiceInfo::ServiceInfo(const Parts &parts)
    : n_clusters_(static_cast<uint32_t>(parts.clusters.size())),
      n_pods_(static_cast<uint32_t>(parts.pods.size())),
      key_size_(parts.key_size) {
    static_assert(alignof(ClusterInfo) == 4 && alignof(PodInfo) == 4 && alignof(IpAddr) == 1);
    static_assert(std::is_trivially_copyable_v<IpAddr>);
    auto bytes = [](const auto &v) { return static_cast<uint32_t>(v.size() * sizeof(v[0])); };
    pods_at_ = bytes(parts.clusters);
    set_end_at_ = pods_at_ + bytes(parts.pods);
    addresses_at_ = set_end_at_ + bytes(parts.set_end);
    text_at_ = addresses_at_ + bytes(parts.addresses);
    const size_t size = text_at_ + parts.text.size();
    data_ = std::make_unique_for_overwrite<std::byte[]>(size);
    std::byte *d = data_.get();
    std::uninitialized_copy(parts.clusters.begin(), parts.clusters.end(),
                            reinterpret_cast<ClusterInfo *>(d));
    std::uninitialized_copy(parts.pods.begin(), parts.pods.end(),
                            reinterpret_cast<PodInfo *>(d + pods_at_));
    std::uninitialized_copy(parts.set_end.begin(), parts.set_end.end(),
                            reinterpret_cast<uint32_t *>(d + set_end_at_));
    std::uninitialized_copy(parts.addresses.begin(), parts.addresses.end(),
                            reinterpret_cast<IpAddr *>(d + addresses_at_));
    std::copy(parts.text.begin(), parts.text.end(), reinterpret_cast<char *>(d + text_at_));
    lowercase_ = std::none_of(parts.text.begin(), parts.text.end(),
                              [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace engine_detail

namespace {

// Lower rank wins when two forms spell the same name (see engine.hpp).
int rank(Form f) {
    switch (f) {
        case Form::Apex:
            return 0;
        case Form::Service:
        case Form::Short:
        case Form::Cluster:
        case Form::Pod:
            return 1;
        case Form::Old:
            return 2;
        case Form::EmptyNonTerminal:
            return 3;
    }
    return 3;
}

bool ends_with_zone(std::string_view name, std::string_view zone) {
    if (zone.empty()) return true;
    if (name.size() == zone.size()) return name == zone;
    return name.size() > zone.size() && name.ends_with(zone) &&
           name[name.size() - zone.size() - 1] == '.';
}

// "a.b.c" + zone, built in one allocation.
std::string dotted(std::initializer_list<std::string_view> labels, std::string_view zone) {
    size_t n = zone.size();
    for (auto l : labels) n += l.size() + 1;
    std::string s;
    s.reserve(n);
    for (auto l : labels) {
        if (!s.empty()) s += '.';
        s += l;
    }
    if (!zone.empty()) {
        if (!s.empty()) s += '.';
        s += zone;
    }
    return s;
}

// FNV-1a, for the content serial.
struct Fnv {
    uint32_t h = 2166136261u;
    void bytes(const void *p, size_t n) {
        auto *b = static_cast<const uint8_t *>(p);
        for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    }
    void str(std::string_view s) {
        bytes(s.data(), s.size());
        uint8_t sep = 0;
        bytes(&sep, 1);
    }
};

uint32_t service_hash(const GlobalService &s) {
    Fnv f;
    f.str(s.ns);
    f.str(s.name);
    f.str(to_string(s.type));
    for (const Endpoint &e : s.endpoints) {
        f.str(e.cluster);
        f.str(e.zone);
        f.str(e.region);
        f.str(e.hostname);
        for (const IpAddr &a : e.addresses) f.bytes(a.bytes.data(), a.size());
    }
    return f.h;
}

// The set sorted by namespace/name with one service per namespace/name, the last one given
// winning. A source's set already is, and is kept itself.
ServiceSet sorted_unique(ServiceSet input) {
    const ServiceList &in = *input;
    bool sorted = true;
    for (size_t i = 1; i < in.size() && sorted; i++) sorted = key_less(*in[i - 1], *in[i]);
    if (sorted) return input;
    ServiceList out(in);
    // Stable, so that among equal keys the last given is the last in its run.
    std::stable_sort(out.begin(), out.end(),
                     [](const ServicePtr &a, const ServicePtr &b) { return key_less(*a, *b); });
    size_t w = 0;
    for (size_t r = 0; r < out.size(); r++)
        if (r + 1 == out.size() || key_less(*out[r], *out[r + 1])) out[w++] = std::move(out[r]);
    out.resize(w);
    return std::make_shared<const ServiceList>(std::move(out));
}

// Whether two versions of a service answer the same (ports and resourceVersion do not count).
bool same_answers(const GlobalService &a, const GlobalService &b) {
    return a.type == b.type && a.endpoints == b.endpoints;
}

std::shared_ptr<const ServiceInfo> compute(const GlobalService &svc, const NodeTopology &node) {
    ServiceInfo::Parts si;
    size_t text_size = svc.ns.size() + 1 + svc.name.size();
    for (const Endpoint &ep : svc.endpoints) text_size += ep.cluster.size();
    if (svc.type == ServiceType::Headless)
        for (const Endpoint &ep : svc.endpoints) text_size += ep.hostname.size();
    si.text.reserve(text_size);
    si.text.append(svc.ns).append("/").append(svc.name);
    si.key_size = static_cast<uint32_t>(si.text.size());
    auto add_text = [&si](std::string_view s) {
        const TextRef r{static_cast<uint32_t>(si.text.size()), static_cast<uint32_t>(s.size())};
        si.text.append(s);
        return r;
    };
    auto str = [&si](TextRef r) { return std::string_view(si.text).substr(r.offset, r.size); };
    std::array<Tier, 2> tier{};
    std::array<uint32_t, 2> service_sets{};
    size_t address_count = 0;
    for (const Endpoint &ep : svc.endpoints) address_count += ep.addresses.size();
    si.addresses.reserve(address_count * 2);  // the service's own sets, then per cluster
    auto add_set = [&si](std::vector<IpAddr> &&addrs) -> uint32_t {
        if (addrs.empty()) return 0;
        normalise(addrs);
        si.addresses.insert(si.addresses.end(), addrs.begin(), addrs.end());
        si.set_end.push_back(static_cast<uint32_t>(si.addresses.size()));
        return static_cast<uint32_t>(si.set_end.size());
    };
    for (size_t fam : {kV4, kV6}) {
        TierChoice c = choose_tier(svc, family_of(fam), node);
        tier[fam] = c.tier;
        service_sets[fam] = add_set(std::move(c.addresses));
    }

    std::vector<uint32_t> cluster_of(svc.endpoints.size());
    std::vector<std::array<std::vector<IpAddr>, 2>> per_cluster;
    for (size_t e = 0; e < svc.endpoints.size(); e++) {
        const Endpoint &ep = svc.endpoints[e];
        size_t c = 0;
        while (c < si.clusters.size() && str(si.clusters[c].name) != ep.cluster) c++;
        if (c == si.clusters.size()) {
            si.clusters.push_back({add_text(ep.cluster), {0, 0}});
            per_cluster.emplace_back();
        }
        cluster_of[e] = static_cast<uint32_t>(c);
        for (const IpAddr &a : ep.addresses) per_cluster[c][a.is_v6() ? kV6 : kV4].push_back(a);
    }
    for (size_t c = 0; c < si.clusters.size(); c++)
        for (size_t fam : {kV4, kV6})
            si.clusters[c].sets[fam] = add_set(std::move(per_cluster[c][fam]));

    if (svc.type == ServiceType::Headless) {
        // Endpoints sharing a hostname in one cluster are one name with all their addresses.
        std::vector<std::pair<std::pair<uint32_t, std::string_view>, size_t>> pods;
        for (size_t e = 0; e < svc.endpoints.size(); e++)
            if (!svc.endpoints[e].hostname.empty())
                pods.push_back({{cluster_of[e], svc.endpoints[e].hostname}, e});
        std::sort(pods.begin(), pods.end());
        for (size_t p = 0; p < pods.size();) {
            std::array<std::vector<IpAddr>, 2> addrs;
            size_t q = p;
            for (; q < pods.size() && pods[q].first == pods[p].first; q++)
                for (const IpAddr &a : svc.endpoints[pods[q].second].addresses)
                    addrs[a.is_v6() ? kV6 : kV4].push_back(a);
            const uint32_t v4 = add_set(std::move(addrs[kV4]));
            const uint32_t v6 = add_set(std::move(addrs[kV6]));
            si.pods.push_back({pods[p].first.first, add_text(pods[p].first.second), {v4, v6}});
            p = q;
        }
    }
    auto out = std::make_shared<ServiceInfo>(si);
    out->hash = service_hash(svc);
    out->tier = tier;
    out->service_sets = service_sets;
    return out;
}

// Within one service, the order its forms were first claimed in (for a tie of rank).
int claim_order(Form f) {
    switch (f) {
        case Form::Service:
            return 0;
        case Form::Short:
            return 1;
        case Form::Cluster:
        case Form::Old:
            return 2;
        default:
            return 3;
    }
}

// Which of two service claims on one name wins: the lower rank, then the service first in key
// order, then the form that service claims first.
bool wins(const Claim &a, const Claim &b) {
    if (rank(a.the_form()) != rank(b.the_form())) return rank(a.the_form()) < rank(b.the_form());
    if (a.service != b.service) return a.service->key() < b.service->key();
    if (claim_order(a.the_form()) != claim_order(b.the_form()))
        return claim_order(a.the_form()) < claim_order(b.the_form());
    return a.slot < b.slot;
}

bool same_claim(const Claim &a, const Claim &b) {
    return a.service == b.service && a.form == b.form && a.slot == b.slot;
}

Claim make_claim(Form form, uint16_t zone, const ServiceInfo *si, uint32_t slot) {
    Claim c;
    c.service = si;
    c.slot = slot == kNone ? Claim::kNoSlot : slot;
    c.form = static_cast<uint32_t>(form);
    c.zone = zone;
    return c;
}

// Where an entry with this tag starts looking in a table of `size` entries. A tag has 16 bits:
// past 65,536 entries a shard (268 M names in all) still works, only with longer probes.
size_t home(uint16_t tag, size_t size) {
    return size <= 65536 ? tag & (size - 1) : tag * (size >> 16);
}

void insert(Shard &shard, const Claim &claim) {
    if ((shard.used + 1) * 8 > shard.table.size() * 7) {
        std::vector<Claim> old(std::max<size_t>(8, shard.table.size() * 2));
        old.swap(shard.table);
        shard.used = 0;
        for (const Claim &c : old)
            if (c.service) insert(shard, c);
    }
    const size_t mask = shard.table.size() - 1;
    size_t i = home(claim.tag, shard.table.size());
    while (shard.table[i].service) i = (i + 1) & mask;
    shard.table[i] = claim;
    shard.used++;
}

// Removes entry i, moving back the entries after it that could not be at their home.
void erase(Shard &shard, size_t i) {
    const size_t size = shard.table.size(), mask = size - 1;
    for (size_t j = (i + 1) & mask; shard.table[j].service; j = (j + 1) & mask) {
        const size_t h = home(shard.table[j].tag, size);
        const bool stays = i < j ? (i < h && h <= j) : (i < h || h <= j);
        if (stays) continue;
        shard.table[i] = shard.table[j];
        i = j;
    }
    shard.table[i] = Claim{};
    shard.used--;
}

// The labels of a service claim's name, before its zone.
struct Labels {
    std::array<std::string_view, 5> part;
    size_t n = 0;
};

Labels labels_of(const Claim &c) {
    const ServiceInfo &si = *c.service;
    const std::string_view key = si.key();
    const size_t slash = key.find('/');
    const std::string_view ns = key.substr(0, slash), name = key.substr(slash + 1);
    switch (c.the_form()) {
        case Form::Service:
            return {{name, ns, "svc"}, 3};
        case Form::Short:
            return {{name, ns}, 2};
        case Form::Cluster:
            return {{si.str(si.clusters()[c.slot].name), name, ns, "svc"}, 4};
        case Form::Old:
            return {{name, ns, si.str(si.clusters()[c.slot].name)}, 3};
        case Form::Pod: {
            const PodInfo &pod = si.pods()[c.slot];
            return {
                {si.str(pod.hostname), si.str(si.clusters()[pod.cluster].name), name, ns, "svc"},
                5};
        }
        default:
            return {};
    }
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// "a.b.c" + zone, lowercased, in buf.
std::string_view spell_labels(std::initializer_list<std::string_view> labels, std::string_view zone,
                              std::string &buf) {
    buf.clear();
    for (std::string_view l : labels) {
        if (!buf.empty()) buf += '.';
        for (char c : l) buf += lower(c);
    }
    if (!zone.empty()) {
        if (!buf.empty()) buf += '.';
        buf += zone;
    }
    return buf;
}

}  // namespace

size_t AnswerIndex::shard_of(uint64_t hash) {
    // Not the low bits a shard's tags use: mixed, then the high ones.
    return (hash * 0x9E3779B97F4A7C15ULL) >> 52;
}

NameNode AnswerIndex::node_of(const Claim &c) {
    const ServiceInfo &si = *c.service;
    NameNode node{c.the_form(), c.zone, c.the_slot(), &si, si.service_sets};
    if (c.the_form() == Form::Cluster || c.the_form() == Form::Old)
        node.sets = si.clusters()[c.slot].sets;
    else if (c.the_form() == Form::Pod)
        node.sets = si.pods()[c.slot].sets;
    return node;
}

std::string_view AnswerIndex::spell(const Claim &c, std::string &buf) const {
    const Labels l = labels_of(c);
    buf.clear();
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0) buf += '.';
        for (char ch : l.part[i]) buf += lower(ch);
    }
    const std::string &zone = zones[c.zone].name;
    if (!zone.empty()) (buf += '.') += zone;
    return buf;
}

bool AnswerIndex::spells(const Claim &c, std::string_view q) const {
    const Labels l = labels_of(c);
    const std::string &zone = zones[c.zone].name;
    size_t size = l.n - 1 + (zone.empty() ? 0 : zone.size() + 1);
    for (size_t i = 0; i < l.n; i++) size += l.part[i].size();
    if (size != q.size()) return false;
    const bool fold = !c.service->lowercase();
    size_t pos = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0 && q[pos++] != '.') return false;
        const std::string_view part = l.part[i];
        if (!fold) {
            if (q.compare(pos, part.size(), part) != 0) return false;
        } else {
            for (size_t k = 0; k < part.size(); k++)
                if (lower(part[k]) != q[pos + k]) return false;
        }
        pos += part.size();
    }
    return zone.empty() || (q[pos] == '.' && q.substr(pos + 1) == zone);
}

size_t AnswerIndex::locate(const Shard &shard, std::string_view name, uint16_t tag) const {
    if (shard.table.empty()) return SIZE_MAX;
    const size_t mask = shard.table.size() - 1;
    for (size_t i = home(tag, shard.table.size());; i = (i + 1) & mask) {
        const Claim &c = shard.table[i];
        if (!c.service) return SIZE_MAX;  // never full: a free entry ends every probe
        if (c.tag == tag && spells(c, name)) return i;
    }
}

void AnswerIndex::add_claim(Shard &shard, std::string_view name, uint64_t hash, Claim claim) const {
    if (claim.the_form() == Form::EmptyNonTerminal) {
        auto it = shard.others.find(name);
        if (it == shard.others.end())
            it = shard.others
                     .emplace(std::string(name), OtherName{Form::EmptyNonTerminal, claim.zone})
                     .first;
        it->second.claims++;
        return;
    }
    // A service form never spells an apex: a name is claimed in its innermost zone only, where
    // every service form is longer than the apex.
    claim.tag = static_cast<uint16_t>(hash);
    const size_t at = locate(shard, name, claim.tag);
    if (at == SIZE_MAX) {
        insert(shard, claim);
        return;
    }
    Claim &best = shard.table[at];
    auto c = shard.contested.find(name);
    if (c == shard.contested.end()) c = shard.contested.emplace(name, std::vector{best}).first;
    c->second.push_back(claim);
    if (wins(claim, best)) best = claim;
}

void AnswerIndex::remove_claim(Shard &shard, std::string_view name, uint64_t hash,
                               const Claim &claim) const {
    if (claim.the_form() == Form::EmptyNonTerminal) {
        auto it = shard.others.find(name);
        if (it == shard.others.end() || --it->second.claims > 0) return;
        if (it->second.form == Form::EmptyNonTerminal) shard.others.erase(it);
        return;
    }
    const size_t at = locate(shard, name, static_cast<uint16_t>(hash));
    if (at == SIZE_MAX) return;
    auto c = shard.contested.find(name);
    if (c == shard.contested.end()) {  // the one service form
        erase(shard, at);
        return;
    }
    auto &claims = c->second;
    claims.erase(std::remove_if(claims.begin(), claims.end(),
                                [&](const Claim &n) { return same_claim(n, claim); }),
                 claims.end());
    // The winner's tag is the name's, whichever claim it is.
    const uint16_t tag = shard.table[at].tag;
    shard.table[at] = *std::min_element(claims.begin(), claims.end(), wins);
    shard.table[at].tag = tag;
    if (claims.size() == 1) shard.contested.erase(c);
}

template <typename Fn>
void AnswerIndex::for_each_claim(const ServiceInfo &si, Fn &&fn) const {
    const std::string_view ns = si.ns();
    std::string buf;
    for (size_t z = 0; z < zones.size(); z++) {
        const auto zi = static_cast<uint16_t>(z);
        const std::string_view zone = zones[z].name;
        auto claim = [&](std::string_view name, const Claim &c) {
            // With nested zones a name belongs to the innermost zone only.
            if (nested_zones_ && zone_of(name) != zi) return;
            fn(name, c);
        };
        auto service_form = [&](Form form, uint32_t slot) {
            const Claim c = make_claim(form, zi, &si, slot);
            claim(spell(c, buf), c);
        };
        // Empty non-terminals are shared by many services: they name none of them.
        const Claim ent = make_claim(Form::EmptyNonTerminal, zi, nullptr, kNone);
        service_form(Form::Service, kNone);
        service_form(Form::Short, kNone);
        claim(spell_labels({ns, "svc"}, zone, buf), ent);
        claim(spell_labels({"svc"}, zone, buf), ent);
        claim(spell_labels({ns}, zone, buf), ent);
        for (size_t c = 0; c < si.clusters().size(); c++) {
            const auto slot = static_cast<uint32_t>(c);
            const std::string_view cl = si.str(si.clusters()[c].name);
            service_form(Form::Cluster, slot);
            service_form(Form::Old, slot);
            claim(spell_labels({ns, cl}, zone, buf), ent);
            claim(spell_labels({cl}, zone, buf), ent);
        }
        // A slot has 24 bits: a Headless service's 16,777,215th pod and later ones (gigabytes
        // of endpoints in one object) get no name.
        for (size_t p = 0; p < std::min<size_t>(si.pods().size(), Claim::kNoSlot); p++)
            service_form(Form::Pod, static_cast<uint32_t>(p));
    }
}

void AnswerIndex::make_zones() {
    zones.clear();
    for (const auto &z : options.zones) {
        ZoneInfo zi;
        zi.name = z;
        std::string mname = dotted({"ns", "dns"}, z), rname = dotted({"hostmaster"}, z);
        zi.soa = Record{z, dnstype::SOA, ttl,
                        soa_rdata(mname, rname, serial, kSoaRefresh, kSoaRetry, kSoaExpire, ttl),
                        label_count(z)};
        zi.ns = Record{z, dnstype::NS, ttl, {}, label_count(z)};
        append_name(zi.ns.rdata, mname);
        zones.push_back(std::move(zi));
    }
}

AnswerIndex::AnswerIndex(const EngineOptions &opts)
    : options(opts),
      ttl(opts.ttl),
      set(std::make_shared<const ServiceList>()),
      hash_mask_(name_hash_mask),
      shards_(kShards) {
    make_zones();
    for (size_t a = 0; a < zones.size(); a++)
        for (size_t b = 0; b < zones.size(); b++)
            if (a != b && ends_with_zone(zones[a].name, zones[b].name)) nested_zones_ = true;
    std::vector<std::shared_ptr<Shard>> made(kShards);
    for (size_t z = 0; z < zones.size(); z++) {
        const std::string &name = zones[z].name;
        auto &shard = made[shard_of(name_hash(name))];
        if (!shard) shard = std::make_shared<Shard>();
        shard->others.try_emplace(name, OtherName{Form::Apex, static_cast<uint16_t>(z)});
    }
    for (size_t s = 0; s < kShards; s++) shards_[s] = std::move(made[s]);
}

AnswerIndex::AnswerIndex(const AnswerIndex &before, ServiceSet input)
    : options(before.options),
      ttl(before.ttl),
      generation(before.generation + 1),
      set(sorted_unique(std::move(input))),
      nested_zones_(before.nested_zones_),
      hash_mask_(before.hash_mask_),
      shards_(before.shards_) {
    const ServiceList &olds = *before.set, &news = *set;
    // Which services changed: a walk of the two sorted sets side by side. A service the new set
    // shares with the old one (the same pointer) is unchanged without a look at its content, so
    // an update that keeps most of a large set costs a pointer walk.
    std::vector<const ServiceInfo *> gone;
    std::vector<const ServiceInfo *> made;
    info_.reserve(news.size());
    uint32_t serial_sum = static_cast<uint32_t>(news.size());
    size_t i = 0;
    for (const ServicePtr &ptr : news) {
        if (i < olds.size() && olds[i] == ptr) {
            info_.push_back(before.info_[i++]);
            serial_sum += info_.back()->hash;
            continue;
        }
        const GlobalService &svc = *ptr;
        while (i < olds.size() && key_less(*olds[i], svc)) gone.push_back(before.info_[i++].get());
        if (i < olds.size() && !key_less(svc, *olds[i]) && same_answers(*olds[i], svc)) {
            info_.push_back(before.info_[i++]);
        } else {
            if (i < olds.size() && !key_less(svc, *olds[i]))
                gone.push_back(before.info_[i++].get());
            info_.push_back(compute(svc, options.node));
            made.push_back(info_.back().get());
        }
        serial_sum += info_.back()->hash;
    }
    while (i < olds.size()) gone.push_back(before.info_[i++].get());
    // Content serial: order-independent over services, so a re-list in another order keeps it.
    serial = serial_sum;
    make_zones();

    // A first set, or most of one changed: the names are not worth listing.
    incremental = before.generation > 0 && (gone.size() + made.size()) * 8 <= news.size() + 64;
    std::vector<Shard *> writable(kShards, nullptr);
    auto shard = [&](uint64_t hash) -> Shard & {
        const size_t s = shard_of(hash);
        if (!writable[s]) {
            auto copy =
                shards_[s] ? std::make_shared<Shard>(*shards_[s]) : std::make_shared<Shard>();
            writable[s] = copy.get();
            shards_[s] = std::move(copy);
        }
        return *writable[s];
    };
    for (const ServiceInfo *si : gone)
        for_each_claim(*si, [&](std::string_view name, const Claim &claim) {
            const uint64_t hash = name_hash(name);
            remove_claim(shard(hash), name, hash, claim);
            if (incremental && claim.the_form() != Form::EmptyNonTerminal)
                changed.emplace_back(name);
        });
    for (const ServiceInfo *si : made)
        for_each_claim(*si, [&](std::string_view name, const Claim &claim) {
            const uint64_t hash = name_hash(name);
            if (incremental && claim.the_form() != Form::EmptyNonTerminal)
                changed.emplace_back(name);
            add_claim(shard(hash), name, hash, claim);
        });
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
}

std::optional<NameNode> AnswerIndex::find(std::string_view name) const {
    const uint64_t hash = name_hash(name);
    const auto &shard = shards_[shard_of(hash)];
    if (!shard) return std::nullopt;
    const size_t at = locate(*shard, name, static_cast<uint16_t>(hash));
    if (at != SIZE_MAX) return node_of(shard->table[at]);
    if (shard->others.empty()) return std::nullopt;
    auto it = shard->others.find(name);
    if (it == shard->others.end()) return std::nullopt;
    return NameNode{it->second.form, it->second.zone, kNone, nullptr};
}

const GlobalService &AnswerIndex::service(const NameNode &node) const {
    const std::string_view ns = node.service->ns(), name = node.service->name();
    auto it = std::lower_bound(
        set->begin(), set->end(), std::pair{ns, name}, [](const ServicePtr &s, const auto &k) {
            return std::pair<std::string_view, std::string_view>(s->ns, s->name) < k;
        });
    return **it;
}

int AnswerIndex::zone_of(std::string_view name) const {
    int best = -1;
    size_t best_len = 0;
    for (size_t z = 0; z < zones.size(); z++) {
        const std::string &zn = zones[z].name;
        if ((best < 0 || zn.size() > best_len) && ends_with_zone(name, zn)) {
            best = static_cast<int>(z);
            best_len = zn.size();
        }
    }
    return best;
}

void AnswerIndex::nxdomain_or_nodata(Rcode rcode, size_t zone, Answer &out) const {
    out.rcode = rcode;
    out.answer.clear();
    out.authority.resize(1);
    out.authority[0] = zones[zone].soa;
}

void AnswerIndex::answer(std::string_view name, uint16_t qtype, Answer &out) const {
    if (const std::optional<NameNode> node = find(name)) {
        answer(*node, name, qtype, out);
        return;
    }
    int zone = zone_of(name);
    out.in_zone = zone >= 0;
    out.authoritative = out.in_zone;
    if (!out.in_zone) {
        out.rcode = Rcode::NoError;
        out.answer.clear();
        out.authority.clear();
        return;
    }
    nxdomain_or_nodata(Rcode::NxDomain, static_cast<size_t>(zone), out);
}

void AnswerIndex::answer(const NameNode &node, std::string_view name, uint16_t qtype,
                         Answer &out) const {
    out.in_zone = true;
    out.authoritative = true;
    out.rcode = Rcode::NoError;

    if (node.form == Form::Apex && (qtype == dnstype::SOA || qtype == dnstype::NS)) {
        out.answer.resize(1);
        out.answer[0] = qtype == dnstype::SOA ? zones[node.zone].soa : zones[node.zone].ns;
        out.authority.clear();
        return;
    }
    if (qtype != dnstype::A && qtype != dnstype::AAAA) {
        nxdomain_or_nodata(Rcode::NoError, node.zone, out);
        return;
    }
    const uint32_t set_index = node.sets[family_index(qtype)];
    if (!node.service || set_index == 0) {
        nxdomain_or_nodata(Rcode::NoError, node.zone, out);
        return;
    }
    const std::span<const IpAddr> addrs = node.service->set(set_index);
    if (addrs.empty()) {
        nxdomain_or_nodata(Rcode::NoError, node.zone, out);
        return;
    }
    // resize() keeps the existing records, so a reused Answer keeps their buffers.
    out.answer.resize(addrs.size());
    const uint8_t labels = label_count(name);
    for (size_t i = 0; i < addrs.size(); i++) {
        Record &r = out.answer[i];
        r.owner.assign(name);
        r.owner_labels = labels;
        r.type = qtype;
        r.ttl = ttl;
        address_rdata(r.rdata, addrs[i]);
    }
    out.authority.clear();
}

}  // namespace fabdns
