// Unit tests of daemon/ctl/format: table alignment, durations, types, records and names.
#include "ctl/format.hpp"

#include <gtest/gtest.h>

namespace fabdns::ctl {
namespace {

TEST(Table, AlignsColumnsWithoutTrailingSpaces) {
    Table t({"NAME", "TTL", "HITS"});
    t.right_align(2);
    t.add({"a.global", "5", "0"});
    t.add({"longer.name.global", "3600", "12345"});
    EXPECT_EQ(t.render("  "),
              "  NAME                TTL    HITS\n"
              "  a.global            5         0\n"
              "  longer.name.global  3600  12345\n");
}

TEST(Table, LastColumnIsNotPadded) {
    Table t;
    t.add({"key:", "v"});
    t.add({"k:", ""});
    EXPECT_EQ(t.render(), "key:  v\nk:\n");
}

TEST(Duration, PicksAReadableUnit) {
    EXPECT_EQ(format_duration_ns(400000), "0.4ms");
    EXPECT_EQ(format_duration_ns(250000000), "250ms");
    EXPECT_EQ(format_duration_ns(1500000000), "1.5s");
    EXPECT_EQ(format_duration_ns(5000000000), "5s");
    EXPECT_EQ(format_duration_ns(120000000000), "2m0s");
    EXPECT_EQ(format_duration_ns(5400000000000), "1h30m");
    EXPECT_EQ(format_duration_ns(90000000000000), "1d1h");
}

TEST(Types, ParseAndName) {
    EXPECT_EQ(parse_type("A"), 1);
    EXPECT_EQ(parse_type("aaaa"), 28);
    EXPECT_EQ(parse_type("TYPE65"), 65);
    EXPECT_EQ(parse_type("16"), 16);
    EXPECT_EQ(parse_type("BOGUS"), 0);
    EXPECT_EQ(parse_type("TYPE70000"), 0);
    EXPECT_EQ(parse_type(""), 0);
    EXPECT_EQ(type_name(28), "AAAA");
    EXPECT_EQ(type_name(999), "TYPE999");
}

TEST(Records, AddressesAndSoa) {
    Record a{"nginx.default.svc.global", 1, 5, {10, 234, 0, 10}, 4};
    EXPECT_EQ(format_record(a), "nginx.default.svc.global.  5  IN  A  10.234.0.10");
    Record aaaa{"x.global", 28, 5, {0xfd, 0, 2, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, 2};
    EXPECT_EQ(format_record(aaaa), "x.global.  5  IN  AAAA  fd00:234::10");
    std::vector<uint8_t> soa = {2, 'n', 's', 6,   'g', 'l', 'o', 'b', 'a', 'l', 0,
                                1, 'h', 6,   'g', 'l', 'o', 'b', 'a', 'l', 0};
    for (uint32_t v : {1u, 7200u, 1800u, 86400u, 5u})
        for (int s = 24; s >= 0; s -= 8) soa.push_back(uint8_t(v >> s));
    Record r{"global", 6, 5, soa, 1};
    EXPECT_EQ(format_record(r), "global.  5  IN  SOA  ns.global. h.global. 1 7200 1800 86400 5");
    Record odd{"", 99, 0, {0xab}, 0};
    EXPECT_EQ(format_record(odd), ".  0  IN  TYPE99  \\# 1 ab");
    Record bad_soa{"global", 6, 5, {3, 'a'}, 1};
    EXPECT_EQ(format_record(bad_soa), "global.  5  IN  SOA  \\# 2 0361");
}

}  // namespace
}  // namespace fabdns::ctl
