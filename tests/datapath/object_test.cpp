// Checks of the built BPF object: verifier cost, BTF layout and pinned map shapes.
//
// The object's BTF and the pinned maps must agree with the C++ view of maps/fabdns_maps.h
// (struct sizes and member offsets, the counter enum, map key/value sizes).
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "loaded_datapath.hpp"
#include "root.hpp"

#ifndef FABDNS_BPF_OBJ_PATH
#error "FABDNS_BPF_OBJ_PATH must name the built fabdns.bpf.o"
#endif

namespace fabdns::test {
namespace {

using loader::Mode;

struct BtfDeleter {
    void operator()(btf *b) const { btf__free(b); }
};
struct ObjDeleter {
    void operator()(bpf_object *o) const { bpf_object__close(o); }
};

struct Field {
    const char *name;
    size_t offset, size;
};
#define FABDNS_FIELD(S, f)               \
    Field {                              \
#f, offsetof(S, f), sizeof(S::f) \
    }

struct Layout {
    const char *name;
    size_t size;
    std::vector<Field> fields;
};

const std::vector<Layout> &layouts() {
    static const std::vector<Layout> all = {
        {"fabdns_answer_key",
         sizeof(fabdns_answer_key),
         {FABDNS_FIELD(fabdns_answer_key, hash), FABDNS_FIELD(fabdns_answer_key, qtype),
          FABDNS_FIELD(fabdns_answer_key, name_len), FABDNS_FIELD(fabdns_answer_key, pad)}},
        {"fabdns_answer",
         sizeof(fabdns_answer),
         {FABDNS_FIELD(fabdns_answer, name), FABDNS_FIELD(fabdns_answer, ttl),
          FABDNS_FIELD(fabdns_answer, count), FABDNS_FIELD(fabdns_answer, kind),
          FABDNS_FIELD(fabdns_answer, soa_len), FABDNS_FIELD(fabdns_answer, zone_len),
          FABDNS_FIELD(fabdns_answer, hits), FABDNS_FIELD(fabdns_answer, rdata)}},
        {"fabdns_listen_key",
         sizeof(fabdns_listen_key),
         {FABDNS_FIELD(fabdns_listen_key, addr), FABDNS_FIELD(fabdns_listen_key, port),
          FABDNS_FIELD(fabdns_listen_key, pad)}},
        {"fabdns_listen_value",
         sizeof(fabdns_listen_value),
         {FABDNS_FIELD(fabdns_listen_value, flags)}},
        {"fabdns_config",
         sizeof(fabdns_config),
         {FABDNS_FIELD(fabdns_config, stamp_ns), FABDNS_FIELD(fabdns_config, stale_after_ns),
          FABDNS_FIELD(fabdns_config, listen_gen)}},
    };
    return all;
}

std::unique_ptr<btf, BtfDeleter> parse_object_btf() {
    btf *b = btf__parse_elf(FABDNS_BPF_OBJ_PATH, nullptr);
    if (!b) return nullptr;
    return std::unique_ptr<btf, BtfDeleter>(b);
}

// A regression budget, not the verifier's own 1M limit (a load that passes has met that): both
// programs verified at ~78k instructions on Linux 6.18 (2026-12; Linux 6.1's verifier counts
// ~89k for the same object). A change that costs the verifier more than this raises the budget
// here, in the same commit, with the reason.
constexpr uint32_t kVerifierBudget = 90000;

TEST(ObjectTest, BothProgramsLoadWithinTheVerifierBudget) {
    FABDNS_REQUIRE_ROOT();
    LoadedDatapath dp("object", 1024);
    const uint32_t xdp = dp.dp().verified_insns(Mode::XdpGeneric);
    const uint32_t tc = dp.dp().verified_insns(Mode::Tc);
    std::cout << "verified instructions: xdp " << xdp << ", tc " << tc << "\n";
    RecordProperty("xdp_verified_insns", static_cast<int>(xdp));
    RecordProperty("tc_verified_insns", static_cast<int>(tc));
    EXPECT_GT(xdp, 0u);
    EXPECT_GT(tc, 0u);
    EXPECT_LT(xdp, kVerifierBudget);
    EXPECT_LT(tc, kVerifierBudget);
}

TEST(ObjectTest, BtfStructLayoutsMatchTheHeader) {
    auto b = parse_object_btf();
    ASSERT_TRUE(b) << "cannot parse the BTF of " << FABDNS_BPF_OBJ_PATH;
    for (const Layout &l : layouts()) {
        SCOPED_TRACE(l.name);
        const int id = btf__find_by_name_kind(b.get(), l.name, BTF_KIND_STRUCT);
        ASSERT_GT(id, 0) << "struct " << l.name << " missing from the object's BTF";
        const btf_type *t = btf__type_by_id(b.get(), id);
        EXPECT_EQ(t->size, l.size) << "sizeof(struct " << l.name << ")";
        ASSERT_EQ(btf_vlen(t), l.fields.size()) << "member count of " << l.name;
        const btf_member *m = btf_members(t);
        for (size_t i = 0; i < l.fields.size(); i++) {
            const Field &f = l.fields[i];
            const std::string name = btf__name_by_offset(b.get(), m[i].name_off);
            EXPECT_EQ(name, f.name) << "member " << i << " of " << l.name;
            EXPECT_EQ(btf_member_bitfield_size(t, i), 0u) << l.name << "." << f.name;
            EXPECT_EQ(btf_member_bit_offset(t, i), f.offset * 8) << l.name << "." << f.name;
            EXPECT_EQ(static_cast<size_t>(btf__resolve_size(b.get(), m[i].type)), f.size)
                << "size of " << l.name << "." << f.name;
        }
    }
}

TEST(ObjectTest, BtfCarriesTheStatEnum) {
    auto b = parse_object_btf();
    ASSERT_TRUE(b);
    struct Value {
        const char *name;
        int value;
    };
    static const Value want[] = {
#define FABDNS_STAT_VALUE_(name, label) {"FABDNS_STAT_" #name, FABDNS_STAT_##name},
        FABDNS_STAT_LIST(FABDNS_STAT_VALUE_)
#undef FABDNS_STAT_VALUE_
            {"FABDNS_STAT_MAX", FABDNS_STAT_MAX}};
    const int id = btf__find_by_name_kind(b.get(), "fabdns_stat", BTF_KIND_ENUM);
    // Without the enum in BTF, `bpftool map dump pinned .../stats` shows bare indices and
    // nothing ties the kernel's counter numbering to the header the daemon was built with.
    ASSERT_GT(id, 0) << "KNOWN GAP in bpf/: enum fabdns_stat is not in the object's BTF (no BPF "
                        "code uses the enum as a type, e.g. as the stats map's key), so its "
                        "values cannot be checked against the header";
    const btf_type *t = btf__type_by_id(b.get(), id);
    ASSERT_EQ(btf_vlen(t), std::size(want));
    const struct btf_enum *e = btf_enum(t);
    for (size_t i = 0; i < std::size(want); i++) {
        EXPECT_STREQ(btf__name_by_offset(b.get(), e[i].name_off), want[i].name);
        EXPECT_EQ(e[i].val, want[i].value) << want[i].name;
    }
}

TEST(ObjectTest, MapDefinitionsMatchTheHeader) {
    // Opened, not loaded: no root needed.
    std::unique_ptr<bpf_object, ObjDeleter> obj(
        bpf_object__open_file(FABDNS_BPF_OBJ_PATH, nullptr));
    ASSERT_TRUE(obj) << "cannot open " << FABDNS_BPF_OBJ_PATH;
    struct Want {
        const char *map;
        bpf_map_type type;
        size_t key, value;
        uint32_t max_entries;  // 0: set by the loader
    };
    const Want want[] = {
        {FABDNS_MAP_ANSWERS, BPF_MAP_TYPE_HASH, sizeof(fabdns_answer_key), sizeof(fabdns_answer),
         0},
        {FABDNS_MAP_ANSWERS_STANDBY, BPF_MAP_TYPE_HASH, sizeof(fabdns_answer_key),
         sizeof(fabdns_answer), 0},
        {FABDNS_MAP_LISTEN, BPF_MAP_TYPE_HASH, sizeof(fabdns_listen_key),
         sizeof(fabdns_listen_value), FABDNS_MAX_LISTEN},
        {FABDNS_MAP_CONFIG, BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(fabdns_config), 1},
        {FABDNS_MAP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t), sizeof(uint64_t),
         FABDNS_STAT_MAX},
    };
    for (const Want &w : want) {
        SCOPED_TRACE(w.map);
        bpf_map *m = bpf_object__find_map_by_name(obj.get(), w.map);
        ASSERT_TRUE(m) << "map " << w.map << " missing from the object";
        EXPECT_EQ(bpf_map__type(m), w.type);
        EXPECT_EQ(bpf_map__key_size(m), w.key);
        EXPECT_EQ(bpf_map__value_size(m), w.value);
        if (w.max_entries) {
            EXPECT_EQ(bpf_map__max_entries(m), w.max_entries);
        }
        EXPECT_GT(bpf_map__btf_key_type_id(m), 0u) << "key type not described in BTF";
        EXPECT_GT(bpf_map__btf_value_type_id(m), 0u) << "value type not described in BTF";
    }
    // The switch between the two copies: one slot holding a map.
    bpf_map *active = bpf_object__find_map_by_name(obj.get(), FABDNS_MAP_ANSWERS_ACTIVE);
    ASSERT_TRUE(active);
    EXPECT_EQ(bpf_map__type(active), BPF_MAP_TYPE_ARRAY_OF_MAPS);
    EXPECT_EQ(bpf_map__max_entries(active), 1u);
    EXPECT_TRUE(bpf_object__find_program_by_name(obj.get(), FABDNS_PROG_XDP));
    EXPECT_TRUE(bpf_object__find_program_by_name(obj.get(), FABDNS_PROG_TC));
}

TEST(ObjectTest, PinnedMapsMatchTheHeader) {
    FABDNS_REQUIRE_ROOT();
    const uint32_t capacity = 2048;
    LoadedDatapath dp("object-pins", capacity);
    struct Want {
        const char *map;
        size_t key, value;
        uint32_t max_entries;
    };
    const Want want[] = {
        {FABDNS_MAP_ANSWERS, sizeof(fabdns_answer_key), sizeof(fabdns_answer), capacity},
        {FABDNS_MAP_ANSWERS_STANDBY, sizeof(fabdns_answer_key), sizeof(fabdns_answer), capacity},
        {FABDNS_MAP_LISTEN, sizeof(fabdns_listen_key), sizeof(fabdns_listen_value),
         FABDNS_MAX_LISTEN},
        {FABDNS_MAP_CONFIG, sizeof(uint32_t), sizeof(fabdns_config), 1},
        {FABDNS_MAP_STATS, sizeof(uint32_t), sizeof(uint64_t), FABDNS_STAT_MAX},
    };
    for (const Want &w : want) {
        SCOPED_TRACE(w.map);
        const std::string path = dp.pin_path() + "/" + w.map;
        const int fd = bpf_obj_get(path.c_str());
        ASSERT_GE(fd, 0) << "no pin at " << path;
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        const int err = bpf_obj_get_info_by_fd(fd, &info, &len);
        close(fd);
        ASSERT_EQ(err, 0);
        EXPECT_STREQ(info.name, w.map);
        EXPECT_EQ(info.key_size, w.key);
        EXPECT_EQ(info.value_size, w.value);
        EXPECT_EQ(info.max_entries, w.max_entries);
        // SPEC §4: pinned with BTF, so bpftool shows the answer map's names as text.
        EXPECT_GT(info.btf_id, 0u);
        EXPECT_GT(info.btf_value_type_id, 0u);
    }
}

}  // namespace
}  // namespace fabdns::test
