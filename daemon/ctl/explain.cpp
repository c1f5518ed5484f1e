// The explain report: built from an engine, a node and the kernel's answer table; rendered as a
// table followed by the records and the endpoints considered.
#include "ctl/explain.hpp"

#include <algorithm>
#include <optional>

#include "common/dns_name.hpp"
#include "compiler/compiler.hpp"
#include "ctl/format.hpp"

namespace fabdns::ctl {

namespace {

using json = nlohmann::ordered_json;

std::string tier_text(Tier t, const Config::Node &node) {
    switch (t) {
        case Tier::Cluster:
            return "cluster (this node's cluster " + node.cluster + ")";
        case Tier::Zone:
            return "zone (this node's zone " + node.zone + ")";
        case Tier::Region:
            return "region (this node's region " + node.region + ")";
        case Tier::All:
            return "all (no endpoint in this node's cluster, zone or region)";
        case Tier::Pinned:
            return "pinned (the name selects one cluster or pod: no fallback)";
        case Tier::None:
            break;
    }
    return "none";
}

// Addresses compared as a set: record order is not part of the contract.
bool same_content(maps::KernelAnswer a, maps::KernelAnswer b) {
    std::sort(a.addrs.begin(), a.addrs.end());
    std::sort(b.addrs.begin(), b.addrs.end());
    return a == b;
}

std::string entry_text(const maps::KernelAnswer &a) {
    return "TTL " + std::to_string(a.ttl) + ", " + kernel_answer_text(a);
}

// The kernel's entry for name/qtype against what the compiler would write.
std::string kernel_verdict(const ExplainSource &src, const std::string &name, uint16_t qtype,
                           const KernelChoice &want, uint64_t &hits) {
    if (!src.kernel) {
        const std::string would =
            want.entry ? std::string("hold this answer") : "not hold this name: " + want.why_not;
        return "unknown: " + src.kernel_missing + " (it would " + would + ")";
    }
    std::optional<maps::KernelAnswer> have;
    if (maps::fits_kernel_name(name) && (qtype == DNS_TYPE_A || qtype == DNS_TYPE_AAAA)) {
        const auto key = maps::make_key(name, qtype);
        if (auto v = src.kernel->lookup(key)) {
            auto k = maps::from_map(key, *v);
            if (k.name == name) have = std::move(k);
        }
    }
    if (have) hits = have->hits;
    if (want.entry && have && same_content(*want.entry, *have))
        return "yes (same answer, " + std::to_string(have->hits) + " hits)";
    if (want.entry && have)
        return "yes, but DIFFERENT from the engine's answer: kernel has " + entry_text(*have) +
               ", engine says " + entry_text(*want.entry) +
               " (fabdnsd has not synced yet, or runs with other data)";
    if (want.entry)
        return "no, but it should be (fabdnsd has not synced yet, or the map is over capacity)";
    if (have)
        return "yes, but should not be: " + want.why_not + "; the kernel has " + entry_text(*have) +
               " (fabdnsd has not synced yet?)";
    return "no (" + want.why_not + ")";
}

json lines(const std::vector<Record> &rrs) {
    json out = json::array();
    for (const auto &r : rrs) out.push_back(format_record(r));
    return out;
}

}  // namespace

json explain_report(const ExplainSource &src, std::string_view qname, uint16_t qtype) {
    const Explanation ex = src.engine.explain(qname, qtype);
    const std::string name = normalise_name(qname);
    const Config::Node &node = src.node;
    std::string rcode = ex.answer.in_zone ? rcode_name(ex.answer.rcode) : "not in a zone";
    if (ex.answer.in_zone && ex.answer.authoritative) rcode += ", authoritative";
    uint64_t hits = 0;
    const std::string verdict =
        kernel_verdict(src, name, qtype, kernel_choice(name, qtype, ex), hits);

    json j;
    j["explained_by"] = src.explained_by;
    j["query"] = name + ". " + type_name(qtype);
    j["node"] = "cluster " + node.cluster + (node.zone.empty() ? "" : ", zone " + node.zone) +
                (node.region.empty() ? "" : ", region " + node.region);
    j["services"] = src.services;
    j["rcode"] = rcode;
    j["form"] = ex.form + (ex.service.empty() ? "" : " (" + ex.service + ")");
    j["tier"] = tier_text(ex.tier, node);
    j["summary"] = ex.summary;
    j["in_kernel"] = verdict;
    j["kernel_hits"] = hits;
    j["answer"] = lines(ex.answer.answer);
    j["authority"] = lines(ex.answer.authority);
    j["endpoints"] = ex.endpoints;
    return j;
}

std::string render_explain(const json &r) {
    Table head;
    for (const char *field : {"explained_by", "query", "node", "services", "rcode", "form", "tier",
                              "summary", "in_kernel"}) {
        std::string label = field;
        std::replace(label.begin(), label.end(), '_', ' ');
        head.add({label + ":", r.at(field).get<std::string>()});
    }
    std::string out = head.render();
    for (const char *section : {"answer", "authority", "endpoints"}) {
        const auto &items = r.at(section);
        if (items.empty()) continue;
        out += std::string(section) + ":\n";
        for (const auto &line : items) out += "  " + line.get<std::string>() + "\n";
    }
    return out;
}

}  // namespace fabdns::ctl
