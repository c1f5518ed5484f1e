// NameCompressor: the compression rule of every reply fabdns writes (ldns's), on hand-made
// messages; tests/resolver/reply_bytes_test.cpp checks whole replies against ldns itself.
#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "common/name_compression.hpp"

namespace fabdns {
namespace {

using Bytes = std::vector<uint8_t>;

// "a.b" -> \1a\1b\0 (no escapes: the tests use plain labels).
Bytes wire(std::string_view dotted) {
    Bytes out;
    while (!dotted.empty()) {
        const size_t dot = std::min(dotted.find('.'), dotted.size());
        out.push_back(static_cast<uint8_t>(dot));
        out.insert(out.end(), dotted.begin(), dotted.begin() + static_cast<std::ptrdiff_t>(dot));
        dotted.remove_prefix(std::min(dot + 1, dotted.size()));
    }
    out.push_back(0);
    return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes &p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

constexpr size_t kHeader = 12;
Bytes ptr(size_t at) {
    return {static_cast<uint8_t>(0xc0 | at >> 8), static_cast<uint8_t>(at)};
}

TEST(NameCompressor, PointsToTheEarliestEqualSuffixWithoutCase) {
    Bytes msg(kHeader);
    std::vector<uint16_t> names;
    NameCompressor c(msg, names);
    c.write(wire("Web.Default.Global"));  // the first name: in full
    c.write(wire("default.global"));      // a suffix of it, other case: a pointer
    c.write(wire("ns.dns.global"));       // a new label, then "global" as a pointer
    c.write(wire("x.dns.GLOBAL"));        // "dns.global" now exists from the name before
    c.write(wire("other"));               // nothing to point to
    c.write(wire(""));                    // the root is never a pointer
    const size_t web = kHeader, dflt = web + 4, global = dflt + 8, ns = global + 8 + 2;
    EXPECT_EQ(msg, cat({Bytes(kHeader),
                        wire("Web.Default.Global"),
                        ptr(dflt),
                        {2, 'n', 's'},
                        {3, 'd', 'n', 's'},
                        ptr(global),
                        {1, 'x'},
                        ptr(ns + 3),
                        wire("other"),
                        {0}}));
}

TEST(NameCompressor, NeverPointsIntoTheNameBeingWritten) {
    // Bytes left past the end that would continue "a" into "a.b": comparing a suffix with the
    // unfinished name itself would find "a.b" there and point the name into itself.
    Bytes msg = cat({Bytes(kHeader), wire("a.b")});
    msg.resize(kHeader);
    std::vector<uint16_t> names;
    NameCompressor c(msg, names);
    c.write(wire("a.a.b"));
    c.write(wire("a.b"));
    c.write(wire("a.a.b"));
    EXPECT_EQ(msg, cat({Bytes(kHeader), wire("a.a.b"), ptr(kHeader + 2), ptr(kHeader)}));
}

TEST(NameCompressor, RemembersOffsetsBelow16384Only) {
    Bytes msg(0x4000 - 1);  // the name starts at the last offset a pointer can hold
    std::vector<uint16_t> names;
    NameCompressor c(msg, names);
    c.write(wire("a.b"));
    c.write(wire("a.b"));  // "a.b" is at 16383: a pointer
    c.write(wire("b"));    // "b" is at 16385: written again
    EXPECT_EQ(Bytes(msg.begin() + 0x4000 - 1, msg.end()),
              cat({wire("a.b"), ptr(0x3fff), wire("b")}));
}

TEST(NameCompressor, RewindForgetsTheNamesCut) {
    Bytes msg(kHeader);
    std::vector<uint16_t> names;
    NameCompressor c(msg, names);
    c.write(wire("a.b"));
    const size_t cut = msg.size();
    c.write(wire("c.d"));
    c.rewind(cut);
    EXPECT_EQ(msg.size(), cut);
    c.write(wire("x.c.d"));  // "c.d" was cut: written in full again
    c.write(wire("b"));
    EXPECT_EQ(msg, cat({Bytes(kHeader), wire("a.b"), wire("x.c.d"), ptr(kHeader + 2)}));
}

TEST(NameCompressor, FindsTheEndOfUncompressedNamesOnly) {
    const Bytes two = cat({wire("ns.dns.global"), wire("hostmaster.global")});
    EXPECT_EQ(uncompressed_name_end(two, 0), 15u);
    EXPECT_EQ(uncompressed_name_end(two, 15), two.size());
    EXPECT_EQ(uncompressed_name_end(Bytes{2, 'n', 's'}, 0), std::nullopt);  // runs out
    EXPECT_EQ(uncompressed_name_end(cat({{1, 'x'}, ptr(kHeader)}), 0), std::nullopt);
    EXPECT_EQ(uncompressed_name_end(Bytes{0x40, 0}, 0), std::nullopt);  // reserved type
    EXPECT_EQ(uncompressed_name_end(Bytes{}, 0), std::nullopt);
}

}  // namespace
}  // namespace fabdns
