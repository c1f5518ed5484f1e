// Test helper: puts one answer (addresses as text) into a kernel answer table, the way the map
// compiler writes it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/net.hpp"
#include "datapath_maps.hpp"

namespace fabdns::test {

inline void put_answer(maps::AnswerTable &table, const std::string &name, uint16_t qtype,
                       const std::vector<std::string> &addrs, uint32_t ttl = 5) {
    maps::KernelAnswer a;
    a.name = name;
    a.qtype = qtype;
    a.ttl = ttl;
    for (const auto &s : addrs) a.addrs.push_back(IpAddr::parse(s)->bytes);
    ASSERT_TRUE(maps::fits_kernel(a.name, a.addrs.size()));
    table.upsert(maps::make_key(a.name, qtype), maps::make_value(a));
}

}  // namespace fabdns::test
