// Building the AnswerIndex (every name, per zone, with its precomputed address sets) and
// answering from it. Answers are computed once per set_services(), never per query.
#include "engine/index.hpp"

#include <algorithm>
#include <initializer_list>
#include <tuple>
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

// Same namespace/name twice: the last one wins, in the place of the first. A set without
// duplicates is kept itself; a sorted one (as the sources deliver) is checked without a map.
ServiceSet unique_by_key(ServiceSet input) {
    const std::vector<GlobalService> &in = *input;
    bool sorted = true;
    for (size_t i = 1; i < in.size() && sorted; i++)
        sorted = std::tie(in[i - 1].ns, in[i - 1].name) < std::tie(in[i].ns, in[i].name);
    if (sorted) return input;
    std::unordered_map<std::string, size_t> seen;
    seen.reserve(in.size());
    bool duplicates = false;
    for (size_t i = 0; i < in.size() && !duplicates; i++)
        duplicates = !seen.try_emplace(in[i].key(), i).second;
    if (!duplicates) return input;
    seen.clear();
    std::vector<GlobalService> out;
    out.reserve(in.size());
    for (const GlobalService &svc : in) {
        auto [it, fresh] = seen.try_emplace(svc.key(), out.size());
        if (fresh)
            out.push_back(svc);
        else
            out[it->second] = svc;
    }
    return std::make_shared<const std::vector<GlobalService>>(std::move(out));
}

}  // namespace

AnswerIndex::AnswerIndex(const EngineOptions &options, ServiceSet input)
    : ttl(options.ttl), set(unique_by_key(std::move(input))), services(*set) {
    // Content serial: order-independent over services, so a re-list in another order keeps it.
    uint32_t serial_sum = static_cast<uint32_t>(services.size());
    for (const auto &svc : services) serial_sum += service_hash(svc);
    serial = serial_sum;

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
    for (size_t a = 0; a < zones.size(); a++)
        for (size_t b = 0; b < zones.size(); b++)
            if (a != b && ends_with_zone(zones[a].name, zones[b].name)) nested_zones_ = true;

    // Address sets, computed once per service and shared by every zone and form.
    sets.emplace_back();
    auto add_set = [this](std::vector<IpAddr> &&addrs) -> uint32_t {
        if (addrs.empty()) return 0;
        normalise(addrs);
        sets.push_back(std::move(addrs));
        return static_cast<uint32_t>(sets.size() - 1);
    };

    info.resize(services.size());
    size_t name_estimate = zones.size() + 1;
    for (size_t i = 0; i < services.size(); i++) {
        const GlobalService &svc = services[i];
        ServiceInfo &si = info[i];
        for (size_t fam : {kV4, kV6}) {
            TierChoice c = choose_tier(svc, family_of(fam), options.node);
            si.tier[fam] = c.tier;
            si.sets[fam] = add_set(std::move(c.addresses));
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
                si.pods.push_back(
                    {pods[p].first.first,
                     std::string(pods[p].first.second),
                     {add_set(std::move(addrs[kV4])), add_set(std::move(addrs[kV6]))}});
                p = q;
            }
        }
        name_estimate += 6 + 2 * si.clusters.size() + si.pods.size();
    }

    // Names.
    names.reserve(name_estimate * zones.size());
    uint16_t zi = 0;
    auto add = [&](std::string name, const NameNode &node) {
        // With nested zones a name belongs to the innermost zone only.
        if (nested_zones_ && zone_of(name) != node.zone) return;
        auto [it, fresh] = names.try_emplace(std::move(name), node);
        if (!fresh && rank(node.form) < rank(it->second.form)) it->second = node;
    };
    for (const ZoneInfo &zone : zones) {
        const std::string_view z = zone.name;
        add(std::string(z), NameNode{Form::Apex, zi, kNone, kNone, {0, 0}});
        for (size_t i = 0; i < services.size(); i++) {
            const ServiceInfo &si = info[i];
            const std::string name = lowered(services[i].name), ns = lowered(services[i].ns);
            const auto svc = static_cast<uint32_t>(i);
            // Empty non-terminals are shared by many services: they name none of them.
            const NameNode ent{Form::EmptyNonTerminal, zi, kNone, kNone, {0, 0}};
            add(dotted({name, ns, "svc"}, z), NameNode{Form::Service, zi, svc, kNone, si.sets});
            add(dotted({name, ns}, z), NameNode{Form::Short, zi, svc, kNone, si.sets});
            add(dotted({ns, "svc"}, z), ent);
            add(dotted({"svc"}, z), ent);
            add(dotted({ns}, z), ent);
            std::vector<std::string> cluster_labels;
            cluster_labels.reserve(si.clusters.size());
            for (size_t c = 0; c < si.clusters.size(); c++) {
                const auto &ci = si.clusters[c];
                const auto slot = static_cast<uint32_t>(c);
                cluster_labels.push_back(lowered(ci.name));
                const std::string &cl = cluster_labels.back();
                add(dotted({cl, name, ns, "svc"}, z),
                    NameNode{Form::Cluster, zi, svc, slot, ci.sets});
                add(dotted({name, ns, cl}, z), NameNode{Form::Old, zi, svc, slot, ci.sets});
                add(dotted({ns, cl}, z), ent);
                add(dotted({cl}, z), ent);
            }
            for (size_t p = 0; p < si.pods.size(); p++) {
                const PodInfo &pi = si.pods[p];
                add(dotted({lowered(pi.hostname), cluster_labels[pi.cluster], name, ns, "svc"}, z),
                    NameNode{Form::Pod, zi, svc, static_cast<uint32_t>(p), pi.sets});
            }
        }
        zi++;
    }
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
    const std::vector<IpAddr> &addrs = sets[node.sets[family_index(qtype)]];
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
