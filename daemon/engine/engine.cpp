// Engine: holds the current AnswerIndex (swapped atomically on every set_services()) and serves
// resolve(), explain() and for_each_service_answer() from it.
#include "engine/engine.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "common/dns_name.hpp"
#include "engine/index.hpp"
#include "engine/topology.hpp"

namespace fabdns {

using namespace engine_detail;

const char *to_string(Tier tier) {
    switch (tier) {
        case Tier::None:
            return "none";
        case Tier::Cluster:
            return "cluster";
        case Tier::Zone:
            return "zone";
        case Tier::Region:
            return "region";
        case Tier::All:
            return "all";
        case Tier::Pinned:
            return "pinned";
    }
    return "none";
}

namespace {

// A DNS name is at most 255 bytes on the wire, so its text form (without the final dot) is at
// most 253; longer input cannot match and only needs the slow path.
constexpr size_t kNameBuffer = 256;

// normalise_name() of qname, in buf unless it is too long for it.
std::string_view normalise_qname(std::string_view q, char (&buf)[kNameBuffer], std::string &spill) {
    char *dst = buf;
    if (q.size() > kNameBuffer) {
        spill.resize(q.size());
        dst = spill.data();
    }
    return {dst, normalise_name(q, dst)};
}

EngineOptions normalise_options(EngineOptions o) {
    std::vector<std::string> zones;
    for (const std::string &given : o.zones) {
        std::optional<std::string> z = normalise_zone(given);
        if (!z) throw std::invalid_argument("zone '" + given + "' is not a valid DNS name");
        if (std::find(zones.begin(), zones.end(), *z) == zones.end()) zones.push_back(*z);
    }
    o.zones = std::move(zones);
    return o;
}

const char *family_text(size_t fam) {
    return fam == kV6 ? "IPv6" : "IPv4";
}

std::string endpoint_label(const Endpoint &e, const IpAddr &a) {
    std::string s = e.cluster.str() + "/" + a.to_string();
    if (!e.hostname.empty()) s += " (" + e.hostname + ")";
    return s;
}

std::string count_text(size_t n, size_t fam) {
    return std::to_string(n) + " " + family_text(fam) + (n == 1 ? " address" : " addresses");
}

// The decisions resolve() makes for an in-zone name before its data (see engine.hpp): replaces
// `out` and says why, or returns nullptr and leaves the data's answer.
const char *decide_before_data(bool has_data, uint16_t qtype, uint16_t qclass, Answer &out) {
    if (!out.in_zone) return nullptr;
    const char *why = nullptr;
    if (!has_data) {
        out.rcode = Rcode::ServFail;
        why =
            "SERVFAIL: no service data yet (the first sync has not happened): an NXDOMAIN now "
            "could be cached and would be wrong";
    } else if (qclass != dnsclass::IN) {
        out.rcode = Rcode::Refused;
        why = "REFUSED: only class IN is served";
    } else if (qtype == dnstype::AXFR || qtype == dnstype::IXFR) {
        out.rcode = Rcode::Refused;
        why = "REFUSED: zone transfers are not offered";
    } else {
        return nullptr;
    }
    out.authoritative = false;
    out.answer.clear();
    out.authority.clear();
    return why;
}

// Whether for_each_service_answer() visits a name.
bool enumerated(const NameNode &node) {
    return node.form != Form::Apex && node.form != Form::EmptyNonTerminal;
}

}  // namespace

std::string type_name(uint16_t qtype) {
    switch (qtype) {
        case dnstype::A:
            return "A";
        case dnstype::NS:
            return "NS";
        case dnstype::SOA:
            return "SOA";
        case dnstype::AAAA:
            return "AAAA";
        case dnstype::IXFR:
            return "IXFR";
        case dnstype::AXFR:
            return "AXFR";
        case dnstype::ANY:
            return "ANY";
        case 5:
            return "CNAME";
        case 12:
            return "PTR";
        case 15:
            return "MX";
        case 16:
            return "TXT";
        case 33:
            return "SRV";
        case 65:
            return "HTTPS";
    }
    return "TYPE" + std::to_string(qtype);
}

std::string rcode_name(Rcode rcode) {
    static constexpr const char *kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                             "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                             "NXRRSET", "NOTAUTH", "NOTZONE"};
    const auto code = static_cast<uint16_t>(rcode);
    if (code < std::size(kNames)) return kNames[code];
    if (rcode == Rcode::BadVers) return "BADVERS";
    return "RCODE" + std::to_string(code);
}

Engine::Engine(EngineOptions options) : options_(normalise_options(std::move(options))) {
    index_.store(std::make_shared<const AnswerIndex>(options_));
}

Engine::~Engine() = default;

std::shared_ptr<const AnswerIndex> Engine::current() const {
    return index_.load();
}

void Engine::set_services(std::vector<GlobalService> services) {
    set_service_set(make_service_set(std::move(services)));
}

std::shared_ptr<const void> Engine::set_service_set(ServiceSet services) {
    std::lock_guard lock(write_mu_);
    // Derived from the current index outside any reader's way; readers keep the old index
    // until the store.
    auto next = std::make_shared<const AnswerIndex>(*current(), std::move(services));
    const bool small = next->incremental;
    std::shared_ptr<const void> before = index_.exchange(std::move(next));
    has_data_.store(true, std::memory_order_release);
    if (!small) before.reset();
    return before;
}

size_t Engine::service_count() const {
    return current()->set->size();
}

uint32_t Engine::serial() const {
    return current()->serial;
}

Answer Engine::resolve(std::string_view qname, uint16_t qtype, uint16_t qclass) const {
    Answer out;
    resolve(qname, qtype, qclass, out);
    return out;
}

void Engine::resolve(std::string_view qname, uint16_t qtype, uint16_t qclass, Answer &out) const {
    char buf[kNameBuffer];
    std::string spill;
    std::string_view name = normalise_qname(qname, buf, spill);
    // Read before current(): when true, the index loaded next holds the first data set.
    const bool has_data = has_data_.load(std::memory_order_acquire);
    current()->answer(name, qtype, out);
    decide_before_data(has_data, qtype, qclass, out);
}

Explanation Engine::explain(std::string_view qname, uint16_t qtype, uint16_t qclass) const {
    Explanation ex;
    char buf[kNameBuffer];
    std::string spill;
    std::string_view name = normalise_qname(qname, buf, spill);
    const bool has_data = has_data_.load(std::memory_order_acquire);
    auto idx = current();
    idx->answer(name, qtype, ex.answer);
    const std::string type = type_name(qtype);
    if (const char *why = decide_before_data(has_data, qtype, qclass, ex.answer)) {
        const std::optional<NameNode> node = idx->find(name);
        ex.form = node ? to_string(node->form) : "none";
        ex.summary = why;
        return ex;
    }

    const std::optional<NameNode> node = idx->find(name);
    if (!node) {
        ex.form = "none";
        int zone = idx->zone_of(name);
        ex.summary = zone < 0 ? "not under any zone: forwarded upstream, or REFUSED"
                              : "NXDOMAIN: no service, cluster or pod has this name in zone '" +
                                    idx->zones[static_cast<size_t>(zone)].name + "'";
        return ex;
    }
    ex.form = to_string(node->form);
    const std::string &zone = idx->zones[node->zone].name;
    if (node->form == Form::Apex) {
        ex.summary = "apex of zone '" + zone +
                     "': " + (ex.answer.answer.empty() ? "NODATA for " + type : "answered " + type);
        return ex;
    }
    if (node->form == Form::EmptyNonTerminal) {
        ex.summary = "empty non-terminal in zone '" + zone + "': NODATA";
        return ex;
    }

    const GlobalService &svc = idx->service(*node);
    const ServiceInfo &si = *node->service;
    ex.service = svc.key();
    const bool address_query = qtype == dnstype::A || qtype == dnstype::AAAA;
    const size_t fam = family_index(qtype);
    const IpAddr::Family family = family_of(fam);
    const size_t used = ex.answer.answer.size();

    if (!address_query) {
        ex.summary = std::string(to_string(node->form)) + " name of " + ex.service + ": " + type +
                     " has no records here (NODATA)";
        for (const Endpoint &e : svc.endpoints)
            for (const IpAddr &a : e.addresses)
                ex.endpoints.push_back(endpoint_label(e, a) + ": skipped: " + type +
                                       " queries get no address records");
        return ex;
    }

    if (node->form == Form::Service || node->form == Form::Short) {
        const Tier t = si.tier[fam];
        ex.tier = t;
        const std::string tier = describe_tier(t, options_.node);
        ex.summary = t == Tier::None
                         ? ex.service + " has no " + family_text(fam) + " address: NODATA"
                         : ex.service + ", tier " + tier + ": " + count_text(used, fam);
        for (const Endpoint &e : svc.endpoints)
            for (const IpAddr &a : e.addresses) {
                std::string line = endpoint_label(e, a) + ": ";
                if (a.family != family)
                    line += std::string("skipped: not an ") + family_text(fam) + " address";
                else if (in_tier(e, t, options_.node))
                    line += "used (" + tier + ")";
                else
                    line += "skipped: a nearer tier (" + tier + ") has " + family_text(fam) +
                            " addresses";
                ex.endpoints.push_back(std::move(line));
            }
        return ex;
    }

    // Pinned forms: one cluster, or one pod of one cluster; no topology fallback.
    ex.tier = Tier::Pinned;
    const bool pod = node->form == Form::Pod;
    const std::string cluster(
        si.str(si.clusters()[pod ? si.pods()[node->slot].cluster : node->slot].name));
    const std::string hostname(pod ? si.str(si.pods()[node->slot].hostname) : "");
    const std::string what =
        pod ? "pod " + hostname + " in cluster " + cluster : "cluster " + cluster;
    ex.summary =
        ex.service + ", " + what + ": " +
        (used ? count_text(used, fam) : std::string("no ") + family_text(fam) + " address: NODATA");
    for (const Endpoint &e : svc.endpoints)
        for (const IpAddr &a : e.addresses) {
            std::string line = endpoint_label(e, a) + ": ";
            if (e.cluster != cluster || (pod && e.hostname != hostname))
                line += "skipped: not " + what;
            else if (a.family != family)
                line += std::string("skipped: not an ") + family_text(fam) + " address";
            else
                line += "used (" + what + ")";
            ex.endpoints.push_back(std::move(line));
        }
    return ex;
}

void Engine::for_each_service_answer(const ServiceAnswerFn &fn) const {
    auto idx = current();
    Answer scratch;  // reused: each call overwrites it in place
    idx->for_each_name([&](std::string_view name, const NameNode &node) {
        if (!enumerated(node)) return;
        const std::string_view form = to_string(node.form);
        for (size_t fam : {kV4, kV6}) {
            const uint16_t type = family_type(fam);
            idx->answer(node, name, type, scratch);
            fn(name, form, type, scratch);
        }
    });
}

void Engine::for_each_answer_of(const std::vector<std::string_view> &names,
                                const ServiceAnswerFn &fn) const {
    auto idx = current();
    Answer scratch;
    for (std::string_view name : names) {
        const std::optional<NameNode> node = idx->find(name);
        if (!node || !enumerated(*node)) continue;
        const std::string_view form = to_string(node->form);
        for (size_t fam : {kV4, kV6}) {
            const uint16_t type = family_type(fam);
            idx->answer(*node, name, type, scratch);
            fn(name, form, type, scratch);
        }
    }
}

uint64_t Engine::generation() const {
    return current()->generation;
}

bool Engine::for_each_changed_answer(uint64_t since, const ServiceAnswerFn &fn,
                                     const std::function<void(std::string_view)> &gone) const {
    auto idx = current();
    if (!idx->incremental || idx->generation != since + 1) return false;
    Answer scratch;
    for (const std::string &name : idx->changed) {
        const std::optional<NameNode> node = idx->find(name);
        if (!node || !enumerated(*node)) {
            gone(name);
            continue;
        }
        const std::string_view form = to_string(node->form);
        for (size_t fam : {kV4, kV6}) {
            const uint16_t type = family_type(fam);
            idx->answer(*node, name, type, scratch);
            fn(name, form, type, scratch);
        }
    }
    return true;
}

size_t Engine::service_answer_count() const {
    return current()->service_name_count() * 2;  // A and AAAA
}

}  // namespace fabdns
