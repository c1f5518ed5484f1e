// Topology tiers (SPEC §3): which endpoints of a service this node uses, per address family.
// Shared by the index builder and explain(), so the explanation is the decision itself.
#pragma once

#include <vector>

#include "engine/engine.hpp"

namespace fabdns::engine_detail {

// The tiers in the order they are tried.
inline constexpr Tier kTierOrder[] = {Tier::Cluster, Tier::Zone, Tier::Region, Tier::All};

// True when `e` belongs to tier `t` for this node. An empty node label matches nothing: a node
// without a zone has no zone tier, and an endpoint without a zone is never "in the same zone".
bool in_tier(const Endpoint &e, Tier t, const NodeTopology &node);

struct TierChoice {
    Tier tier = Tier::None;         // None: the service has no address of this family
    std::vector<IpAddr> addresses;  // sorted, without duplicates
};

// The first tier with at least one address of `family`, and that tier's addresses of it.
TierChoice choose_tier(const GlobalService &svc, IpAddr::Family family, const NodeTopology &node);

// "cluster beijing", "zone shanghai", "region south", "all endpoints".
std::string describe_tier(Tier t, const NodeTopology &node);

// Sorts and removes duplicates.
void normalise(std::vector<IpAddr> &addresses);

}  // namespace fabdns::engine_detail
