// Topology tier selection: nearest tier first, chosen separately for IPv4 and IPv6.
#include "engine/topology.hpp"

#include <algorithm>

namespace fabdns::engine_detail {

bool in_tier(const Endpoint &e, Tier t, const NodeTopology &node) {
    switch (t) {
        case Tier::Cluster:
            return !node.cluster.empty() && e.cluster == node.cluster;
        case Tier::Zone:
            return !node.zone.empty() && e.zone == node.zone;
        case Tier::Region:
            return !node.region.empty() && e.region == node.region;
        case Tier::All:
            return true;
        default:
            return false;
    }
}

void normalise(std::vector<IpAddr> &addresses) {
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
}

TierChoice choose_tier(const GlobalService &svc, IpAddr::Family family, const NodeTopology &node) {
    TierChoice out;
    for (Tier t : kTierOrder) {
        for (const Endpoint &e : svc.endpoints) {
            if (!in_tier(e, t, node)) continue;
            for (const IpAddr &a : e.addresses)
                if (a.family == family) out.addresses.push_back(a);
        }
        if (!out.addresses.empty()) {
            out.tier = t;
            normalise(out.addresses);
            return out;
        }
    }
    return out;
}

std::string describe_tier(Tier t, const NodeTopology &node) {
    switch (t) {
        case Tier::Cluster:
            return "cluster " + node.cluster;
        case Tier::Zone:
            return "zone " + node.zone;
        case Tier::Region:
            return "region " + node.region;
        case Tier::All:
            return "all endpoints";
        default:
            return to_string(t);
    }
}

}  // namespace fabdns::engine_detail
