// Building the AnswerIndex (every name, per zone, with its precomputed address sets), from
// nothing or from the index before it, and answering from it. Answers are computed once per
// changed service, never per query.
#include "engine/index.hpp"

#include <algorithm>
#include <initializer_list>
#include <unordered_map>

#include "engine/topology.hpp"
#include "engine/wire.hpp"

namespace fabdns {

using namespace engine_detail;

namespace engine_detail {

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

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
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
        f.str(e.hostname.value_or(""));
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
    auto out = std::make_shared<ServiceInfo>();
    ServiceInfo &si = *out;
    si.key = svc.key();
    si.hash = service_hash(svc);
    si.sets.emplace_back();
    auto add_set = [&si](std::vector<IpAddr> &&addrs) -> uint32_t {
        if (addrs.empty()) return 0;
        normalise(addrs);
        si.sets.push_back(std::move(addrs));
        return static_cast<uint32_t>(si.sets.size() - 1);
    };
    for (size_t fam : {kV4, kV6}) {
        TierChoice c = choose_tier(svc, family_of(fam), node);
        si.tier[fam] = c.tier;
        si.service_sets[fam] = add_set(std::move(c.addresses));
    }

    std::vector<uint32_t> cluster_of(svc.endpoints.size());
    std::vector<std::array<std::vector<IpAddr>, 2>> per_cluster;
    for (size_t e = 0; e < svc.endpoints.size(); e++) {
        const Endpoint &ep = svc.endpoints[e];
        size_t c = 0;
        while (c < si.clusters.size() && si.clusters[c].name != ep.cluster) c++;
        if (c == si.clusters.size()) {
            si.clusters.push_back({ep.cluster, {0, 0}});
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
            if (svc.endpoints[e].hostname)
                pods.push_back({{cluster_of[e], *svc.endpoints[e].hostname}, e});
        std::sort(pods.begin(), pods.end());
        for (size_t p = 0; p < pods.size();) {
            std::array<std::vector<IpAddr>, 2> addrs;
            size_t q = p;
            for (; q < pods.size() && pods[q].first == pods[p].first; q++)
                for (const IpAddr &a : svc.endpoints[pods[q].second].addresses)
                    addrs[a.is_v6() ? kV6 : kV4].push_back(a);
            const uint32_t v4 = add_set(std::move(addrs[kV4]));
            const uint32_t v6 = add_set(std::move(addrs[kV6]));
            si.pods.push_back({pods[p].first.first, std::string(pods[p].first.second), {v4, v6}});
            p = q;
        }
    }
    si.sets.shrink_to_fit();
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
bool wins(const NameNode &a, const NameNode &b) {
    if (rank(a.form) != rank(b.form)) return rank(a.form) < rank(b.form);
    if (a.service != b.service) return a.service->key < b.service->key;
    if (claim_order(a.form) != claim_order(b.form))
        return claim_order(a.form) < claim_order(b.form);
    return a.slot < b.slot;
}

bool same_claim(const NameNode &a, const NameNode &b) {
    return a.service == b.service && a.form == b.form && a.slot == b.slot;
}

NameNode ent_node(uint16_t zone) {
    return NameNode{Form::EmptyNonTerminal, zone, kNone, nullptr, {0, 0}};
}

void add_claim(Shard &shard, std::string &&name, const NameNode &claim) {
    if (claim.form == Form::EmptyNonTerminal) {
        shard.ent_claims[name]++;
        shard.names.try_emplace(std::move(name), claim);
        return;
    }
    auto [it, fresh] = shard.names.try_emplace(name, claim);
    NameNode &best = it->second;
    if (fresh) return;
    if (best.form == Form::EmptyNonTerminal) {  // no service form so far
        best = claim;
        return;
    }
    auto c = shard.contested.find(name);
    if (c == shard.contested.end()) c = shard.contested.emplace(name, std::vector{best}).first;
    c->second.push_back(claim);
    if (wins(claim, best)) best = claim;
}

void remove_claim(Shard &shard, const std::string &name, const NameNode &claim) {
    auto it = shard.names.find(name);
    if (it == shard.names.end()) return;
    if (claim.form == Form::EmptyNonTerminal) {
        auto e = shard.ent_claims.find(name);
        if (e == shard.ent_claims.end() || --e->second > 0) return;
        shard.ent_claims.erase(e);
        if (it->second.form == Form::EmptyNonTerminal) shard.names.erase(it);
        return;
    }
    auto c = shard.contested.find(name);
    if (c == shard.contested.end()) {  // the one service form
        if (shard.ent_claims.count(name))
            it->second = ent_node(claim.zone);
        else
            shard.names.erase(it);
        return;
    }
    auto &claims = c->second;
    claims.erase(std::remove_if(claims.begin(), claims.end(),
                                [&](const NameNode &n) { return same_claim(n, claim); }),
                 claims.end());
    it->second = *std::min_element(claims.begin(), claims.end(), wins);
    if (claims.size() == 1) shard.contested.erase(c);
}

}  // namespace

size_t AnswerIndex::shard_of(std::string_view name) {
    // Not the low bits the shard's own table uses first: mixed, then the high ones.
    return (std::hash<std::string_view>{}(name)*0x9E3779B97F4A7C15ULL) >> 52;
}

template <typename Fn>
void AnswerIndex::for_each_claim(const ServiceInfo &si, Fn &&fn) const {
    const size_t slash = si.key.find('/');
    const std::string ns = lowered(std::string_view(si.key).substr(0, slash));
    const std::string name = lowered(std::string_view(si.key).substr(slash + 1));
    std::vector<std::string> cluster_labels;
    cluster_labels.reserve(si.clusters.size());
    for (const ClusterInfo &ci : si.clusters) cluster_labels.push_back(lowered(ci.name));
    uint16_t zi = 0;
    for (const ZoneInfo &zone : zones) {
        const std::string_view z = zone.name;
        auto add = [&](std::string n, const NameNode &node) {
            // With nested zones a name belongs to the innermost zone only.
            if (nested_zones_ && zone_of(n) != node.zone) return;
            fn(std::move(n), node);
        };
        // Empty non-terminals are shared by many services: they name none of them.
        const NameNode ent = ent_node(zi);
        add(dotted({name, ns, "svc"}, z), NameNode{Form::Service, zi, kNone, &si, si.service_sets});
        add(dotted({name, ns}, z), NameNode{Form::Short, zi, kNone, &si, si.service_sets});
        add(dotted({ns, "svc"}, z), ent);
        add(dotted({"svc"}, z), ent);
        add(dotted({ns}, z), ent);
        for (size_t c = 0; c < si.clusters.size(); c++) {
            const auto slot = static_cast<uint32_t>(c);
            const std::string &cl = cluster_labels[c];
            const auto &sets = si.clusters[c].sets;
            add(dotted({cl, name, ns, "svc"}, z), NameNode{Form::Cluster, zi, slot, &si, sets});
            add(dotted({name, ns, cl}, z), NameNode{Form::Old, zi, slot, &si, sets});
            add(dotted({ns, cl}, z), ent);
            add(dotted({cl}, z), ent);
        }
        for (size_t p = 0; p < si.pods.size(); p++) {
            const PodInfo &pi = si.pods[p];
            add(dotted({lowered(pi.hostname), cluster_labels[pi.cluster], name, ns, "svc"}, z),
                NameNode{Form::Pod, zi, static_cast<uint32_t>(p), &si, pi.sets});
        }
        zi++;
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
    : options(opts), ttl(opts.ttl), set(std::make_shared<const ServiceList>()), shards_(kShards) {
    make_zones();
    for (size_t a = 0; a < zones.size(); a++)
        for (size_t b = 0; b < zones.size(); b++)
            if (a != b && ends_with_zone(zones[a].name, zones[b].name)) nested_zones_ = true;
    std::vector<std::shared_ptr<Shard>> made(kShards);
    for (size_t z = 0; z < zones.size(); z++) {
        const std::string &name = zones[z].name;
        auto &shard = made[shard_of(name)];
        if (!shard) shard = std::make_shared<Shard>();
        shard->names.try_emplace(name,
                                 NameNode{Form::Apex, static_cast<uint16_t>(z), kNone, nullptr});
    }
    for (size_t s = 0; s < kShards; s++) shards_[s] = std::move(made[s]);
}

AnswerIndex::AnswerIndex(const AnswerIndex &before, ServiceSet input)
    : options(before.options),
      ttl(before.ttl),
      generation(before.generation + 1),
      set(sorted_unique(std::move(input))),
      nested_zones_(before.nested_zones_),
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
    auto shard = [&](std::string_view name) -> Shard & {
        const size_t s = shard_of(name);
        if (!writable[s]) {
            auto copy =
                shards_[s] ? std::make_shared<Shard>(*shards_[s]) : std::make_shared<Shard>();
            writable[s] = copy.get();
            shards_[s] = std::move(copy);
        }
        return *writable[s];
    };
    for (const ServiceInfo *si : gone)
        for_each_claim(*si, [&](std::string &&name, const NameNode &claim) {
            remove_claim(shard(name), name, claim);
            if (incremental && claim.form != Form::EmptyNonTerminal) changed.push_back(name);
        });
    for (const ServiceInfo *si : made)
        for_each_claim(*si, [&](std::string &&name, const NameNode &claim) {
            if (incremental && claim.form != Form::EmptyNonTerminal) changed.push_back(name);
            add_claim(shard(name), std::move(name), claim);
        });
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
}

const NameNode *AnswerIndex::find(std::string_view name) const {
    const auto &shard = shards_[shard_of(name)];
    if (!shard) return nullptr;
    auto it = shard->names.find(name);
    return it == shard->names.end() ? nullptr : &it->second;
}

const GlobalService &AnswerIndex::service(const NameNode &node) const {
    const std::string &key = node.service->key;
    const size_t slash = key.find('/');
    const std::string_view ns = std::string_view(key).substr(0, slash);
    const std::string_view name = std::string_view(key).substr(slash + 1);
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
    if (const NameNode *node = find(name)) {
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
    const std::vector<IpAddr> &addrs = node.service->sets[set_index];
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
