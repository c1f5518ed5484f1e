// maps/datapath_maps.cpp: the key the compiler writes must be the key the kernel computes
// (bpf/lib/dns.h hashes the 8-byte words of the lowercase name in wire form, without the root
// label, with fabdns_hash_word), the names it
// accepts must be those the kernel can match, and values must read back as written.
#include "datapath_maps.hpp"

#include "answers.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace fabdns::maps {
namespace {

// The kernel's walk: words of the NUL-padded wire-form name, as many as hold name bytes.
uint64_t kernel_hash(const std::string &wire) {
    char buf[FABDNS_NAME_BUF + 8] = {};
    std::memcpy(buf, wire.data(), wire.size());
    uint64_t h = FABDNS_HASH_SEED;
    for (size_t w = 0; w < (wire.size() + 7) / 8; w++) {
        uint64_t word;
        std::memcpy(&word, buf + 8 * w, 8);
        h = fabdns_hash_word(h, word);
    }
    return h;
}

// The longest name: 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters, and its wire form.
const std::string kLongest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                             std::string(63, 'c') + "." + std::string(61, 'd');
const std::string kLongestWire = "\x3f" + std::string(63, 'a') + "\x3f" + std::string(63, 'b') +
                                 "\x3f" + std::string(63, 'c') + "\x3d" + std::string(61, 'd');

TEST(NameHash, IsTheKernelsWordHashOfTheWireForm) {
    const std::vector<std::pair<std::string, std::string>> names = {
        {"a",
         "\x01"
         "a"},
        {"global", "\x06global"},
        {"nginx.default.svc.global",
         "\x05nginx\x07"
         "default\x03svc\x06global"},
        {"exactly8",
         "\x08"
         "exactly8"},
        {"sixteen-bytes-a", "\x0fsixteen-bytes-a"},
        {kLongest, kLongestWire}};
    for (const auto &[name, wire] : names) {
        SCOPED_TRACE(name);
        EXPECT_EQ(name_hash(name), kernel_hash(wire));
    }
    EXPECT_NE(name_hash("nginx.default.svc.global"), name_hash("nginx.default.svc.globam"));
    EXPECT_NE(name_hash("a"), name_hash("b"));
    // One label holding a dot is another name than two labels.
    EXPECT_NE(name_hash("a.b"), kernel_hash("\x03"
                                            "a.b"));
}

// The stored name is readable text (what bpftool shows) and, word by word, the query's wire form
// with each length byte written as FABDNS_NAME_DOT, as the kernel compares them.
TEST(Values, HoldADotBeforeEveryLabelAndMatchTheWireForm) {
    KernelAnswer a;
    a.name = "nginx.default.svc.global";
    a.addrs.push_back({10, 0, 0, 1});
    const fabdns_answer v = make_value(a);
    EXPECT_EQ(std::string(v.name, strnlen(v.name, sizeof(v.name))), ".nginx.default.svc.global");
    EXPECT_EQ(dotted_name(v), a.name);
    a.name = kLongest;
    const fabdns_answer longest = make_value(a);
    EXPECT_EQ(dotted_name(longest), kLongest);

    auto matches = [](const fabdns_answer &stored, const std::string &wire) {
        char buf[FABDNS_NAME_BUF + 8] = {};
        std::memcpy(buf, wire.data(), wire.size());
        for (size_t pos = 0; pos < wire.size(); pos += static_cast<uint8_t>(wire[pos]) + 1)
            buf[pos] = FABDNS_NAME_DOT;
        for (size_t w = 0; w < (wire.size() + 7) / 8; w++) {
            uint64_t sw, qw;
            std::memcpy(&sw, stored.name + 8 * w, 8);
            std::memcpy(&qw, buf + 8 * w, 8);
            if (sw != qw) return false;
        }
        return true;
    };
    EXPECT_TRUE(matches(v,
                        "\x05nginx\x07"
                        "default\x03svc\x06global"));
    EXPECT_TRUE(matches(longest, kLongestWire));
    EXPECT_FALSE(matches(v,
                         "\x05nginx\x07"
                         "default\x03svc\x06globam"));
    EXPECT_FALSE(matches(v,
                         "\x05nginy\x07"
                         "default\x03svc\x06global"));
    // A length byte where the stored name has a letter.
    EXPECT_FALSE(matches(v,
                         "\x04ngin\x08"
                         "xdefault\x03svc\x06global"));
}

TEST(LowerWord, LowercasesAsciiLettersOnly) {
    auto lower = [](std::string s) {
        uint64_t w = 0;
        std::memcpy(&w, s.data(), 8);
        w = fabdns_lower_word(w);
        std::memcpy(s.data(), &w, 8);
        return s;
    };
    EXPECT_EQ(lower("NGINX.Ab"), "nginx.ab");
    EXPECT_EQ(lower("@[`{09-_"), "@[`{09-_") << "the bytes around A-Z and a-z stay";
    EXPECT_EQ(lower("\xc3\x89Z\x7f\x80\xff\x01\x06"), "\xc3\x89z\x7f\x80\xff\x01\x06");
}

TEST(Keys, CarryHashTypeAndLength) {
    const auto k = make_key("nginx.default.svc.global", DNS_TYPE_AAAA);
    EXPECT_EQ(k.hash, name_hash("nginx.default.svc.global"));
    EXPECT_EQ(k.qtype, DNS_TYPE_AAAA);
    EXPECT_EQ(k.name_len, 24);
    EXPECT_EQ(std::memcmp(k.pad, "\0\0\0\0\0", 5), 0);
    const auto z = zone_key("global");
    EXPECT_EQ(z.qtype, DNS_TYPE_SOA);
    EXPECT_EQ(z.hash, name_hash("global"));
}

TEST(FitsKernel, NamesTheKernelCanMatch) {
    EXPECT_TRUE(fits_kernel_name("a.global"));
    EXPECT_TRUE(fits_kernel_name(std::string(63, 'a') + ".global"));
    EXPECT_FALSE(fits_kernel_name(std::string(64, 'a') + ".global")) << "label over 63";
    std::string longest;
    while (longest.size() < FABDNS_NAME_MAX) {
        if (!longest.empty()) longest += '.';
        longest += std::string(std::min<size_t>(63, FABDNS_NAME_MAX - longest.size()), 'b');
    }
    ASSERT_EQ(longest.size(), size_t{FABDNS_NAME_MAX});
    EXPECT_TRUE(fits_kernel_name(longest));
    EXPECT_FALSE(fits_kernel_name("c" + longest));
    for (const std::string &bad :
         std::vector<std::string>{"", ".global", "global.", "a..global", "Nginx.global",
                                  std::string("a\0b.global", 10)}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(fits_kernel_name(bad));
    }
    EXPECT_FALSE(fits_kernel("a.global", 0));
    EXPECT_TRUE(fits_kernel("a.global", FABDNS_MAX_RECORDS));
    EXPECT_FALSE(fits_kernel("a.global", FABDNS_MAX_RECORDS + 1));
}

TEST(Values, ReadBackAsWrittenForEveryKind) {
    KernelAnswer a;
    a.name = "nginx.default.svc.global";
    a.qtype = DNS_TYPE_AAAA;
    a.ttl = 5;
    a.addrs = {{0xfd, 0, 2, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, {0xfd, 1}};
    KernelAnswer nodata;
    nodata.kind = FABDNS_ANSWER_NODATA;
    nodata.name = "mysql.default.svc.global";
    nodata.qtype = DNS_TYPE_AAAA;
    nodata.ttl = 5;
    nodata.zone = "global";
    nodata.soa = {0xc0, 0x2a, 0, 6, 0, 1, 0, 0, 0, 5, 0, 30};
    KernelAnswer zone;
    zone.kind = FABDNS_ANSWER_ZONE;
    zone.name = "global";
    zone.qtype = DNS_TYPE_SOA;
    zone.ttl = 5;
    zone.soa.assign(FABDNS_SOA_TAIL_LEN, 7);
    for (const KernelAnswer &k : {a, nodata, zone}) {
        SCOPED_TRACE(k.name);
        ASSERT_TRUE(fits_kernel(k));
        const fabdns_answer v = make_value(k);
        EXPECT_EQ(v.hits, 0u);
        EXPECT_EQ(from_map(make_key(k.name, k.qtype), v), k);
    }
    // A NODATA entry names its zone's entry by key, where the kernel reads it.
    fabdns_answer_key zk;
    std::memcpy(&zk, make_value(nodata).rdata, sizeof(zk));
    const fabdns_answer_key want = zone_key("global");
    EXPECT_EQ(std::memcmp(&zk, &want, sizeof(zk)), 0);
}

TEST(AnswerTable, OneChangeCallsAreBatchesOfOne) {
    test::FakeTable t(1);
    t.upsert(make_key("a.global", DNS_TYPE_A), fabdns_answer{});
    EXPECT_EQ(t.batches, 1u);
    try {
        t.upsert(make_key("b.global", DNS_TYPE_A), fabdns_answer{});
        FAIL() << "a failed addition throws";
    } catch (const std::system_error &e) {
        EXPECT_EQ(e.code().value(), E2BIG);
    }
    t.erase(make_key("a.global", DNS_TYPE_A));
    EXPECT_TRUE(t.entries.empty());
    t.upsert(make_key("b.global", DNS_TYPE_A), fabdns_answer{});
    const size_t before = t.batches;
    t.clear();
    EXPECT_TRUE(t.entries.empty());
    EXPECT_EQ(t.batches, before + 1) << "clear is one batch";
}

}  // namespace
}  // namespace fabdns::maps
