// The minimum kernel in docs/kernels.md stays true: what the built BPF object needs (helpers it
// calls, map types and flags, bpf-to-bpf calls, loops, global functions) is read from the
// object itself and must match the doc's table row for row, and the documented minimum must be
// the latest "since" of that table and the loader's. On a kernel that new, every helper the
// object calls must be available (probed).
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "root.hpp"

#ifndef FABDNS_BPF_OBJ_PATH
#error "FABDNS_BPF_OBJ_PATH must name the built fabdns.bpf.o"
#endif

namespace {

// Helper names by id, from the uapi header's own list (its order is the id; Debian 12's
// 6.1 header separates the entries with commas).
#define FABDNS_HELPER_NAME(x) "bpf_" #x
const std::vector<std::string> kHelperNames = {__BPF_FUNC_MAPPER(FABDNS_HELPER_NAME)};
#undef FABDNS_HELPER_NAME

struct Version {
    int major = 0, minor = 0;
    bool operator<(const Version &o) const {
        return major != o.major ? major < o.major : minor < o.minor;
    }
    std::string str() const { return std::to_string(major) + "." + std::to_string(minor); }
};
Version parse_version(const std::string &s) {
    Version v;
    sscanf(s.c_str(), "%d.%d", &v.major, &v.minor);
    return v;
}

// What the object needs, as the doc names it: "helper `bpf_x`", "map `BPF_MAP_TYPE_X`",
// "map flag `BPF_F_X`", "program `feature`".
struct ObjectNeeds {
    std::set<std::string> rows;
    std::map<std::string, int> helper_ids;  // row -> helper id
    std::vector<std::string> problems;      // things no row can cover
};

ObjectNeeds read_object(const std::string &path) {
    ObjectNeeds out;
    // Instructions of every code section (entry points and the .text of called functions).
    elf_version(EV_CURRENT);
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) {
        out.problems.push_back("cannot open " + path);
        return out;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ, nullptr);
    for (Elf_Scn *scn = nullptr; elf && (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR))
            continue;
        Elf_Data *data = elf_getdata(scn, nullptr);
        if (!data) continue;
        const auto *insn = static_cast<const bpf_insn *>(data->d_buf);
        const size_t n = data->d_size / sizeof(bpf_insn);
        for (size_t i = 0; i < n; i++) {
            const bpf_insn &x = insn[i];
            const int cls = BPF_CLASS(x.code);
            if (x.code == (BPF_JMP | BPF_CALL)) {
                if (x.src_reg == 0) {
                    const int id = x.imm;
                    std::string row = id >= 0 && size_t(id) < kHelperNames.size()
                                          ? "helper `" + kHelperNames[id] + "`"
                                          : "helper `#" + std::to_string(id) + "`";
                    out.rows.insert(row);
                    out.helper_ids[row] = id;
                } else if (x.src_reg == BPF_PSEUDO_CALL) {
                    out.rows.insert("program `bpf-to-bpf calls`");
                } else {
                    out.problems.push_back("a kfunc call (imm " + std::to_string(x.imm) +
                                           "): kfuncs need their own kernel check");
                }
            } else if ((cls == BPF_JMP || cls == BPF_JMP32) && BPF_OP(x.code) != BPF_CALL &&
                       BPF_OP(x.code) != BPF_EXIT && x.off < 0) {
                out.rows.insert("program `bounded loops`");  // a backward jump
            }
        }
    }
    if (elf) elf_end(elf);
    close(fd);

    // Maps, and functions the verifier checks on their own (global linkage in BTF).
    bpf_object *obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!obj) {
        out.problems.push_back("libbpf cannot open " + path);
        return out;
    }
    bpf_map *m;
    bpf_object__for_each_map(m, obj) {
        if (bpf_map__is_internal(m)) {
            out.rows.insert("program `global data`");
            continue;
        }
        std::string type = libbpf_bpf_map_type_str(bpf_map__type(m));
        std::transform(type.begin(), type.end(), type.begin(), ::toupper);
        out.rows.insert("map `BPF_MAP_TYPE_" + type + "`");
        uint32_t flags = bpf_map__map_flags(m);
        if (flags & BPF_F_NO_PREALLOC) out.rows.insert("map flag `BPF_F_NO_PREALLOC`");
        if (flags & ~uint32_t(BPF_F_NO_PREALLOC))
            out.problems.push_back("map " + std::string(bpf_map__name(m)) + " has flags 0x" +
                                   std::to_string(flags) + " this test does not know");
    }
    if (const btf *b = bpf_object__btf(obj)) {
        for (uint32_t id = 1; id < btf__type_cnt(b); id++) {
            const btf_type *t = btf__type_by_id(b, id);
            if (!btf_is_func(t) || btf_vlen(t) != BTF_FUNC_GLOBAL)
                continue;  // a FUNC's vlen is its linkage
            const char *name = btf__name_by_offset(b, t->name_off);
            if (!bpf_object__find_program_by_name(obj, name))
                out.rows.insert("program `global functions`");
        }
    }
    bpf_object__close(obj);
    return out;
}

struct Doc {
    std::map<std::string, Version> object_rows, loader_rows;
    Version minimum;
    bool has_minimum = false;
};

// Rows "| <kind> `<name>` | <since> | ... |" of docs/kernels.md; kind "loader" rows are the
// loader's needs, "optional" rows are not needed.
Doc read_doc(const std::string &path) {
    Doc d;
    std::ifstream in(path);
    const std::regex row(
        R"(^\| (helper|map|map flag|program|loader|optional) (`[^`]+`) \| ([0-9]+\.[0-9]+) \|)");
    const std::regex minimum(R"(Minimum kernel: \*\*([0-9]+\.[0-9]+)\*\*)");
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, row)) {
            const std::string kind = m[1], key = kind + " " + std::string(m[2]);
            if (kind == "loader")
                d.loader_rows[key] = parse_version(m[3]);
            else if (kind != "optional")
                d.object_rows[key] = parse_version(m[3]);
        } else if (std::regex_search(line, m, minimum)) {
            d.minimum = parse_version(m[1]);
            d.has_minimum = true;
        }
    }
    return d;
}

TEST(KernelsTest, DocListsExactlyWhatTheObjectNeeds) {
    const ObjectNeeds need = read_object(FABDNS_BPF_OBJ_PATH);
    for (const auto &p : need.problems) ADD_FAILURE() << p;
    ASSERT_FALSE(need.rows.empty()) << "nothing read from " << FABDNS_BPF_OBJ_PATH;
    EXPECT_TRUE(need.rows.count("helper `bpf_map_lookup_elem`")) << "the reader finds calls";
    const Doc doc = read_doc(FABDNS_KERNELS_DOC);
    std::string have;
    for (const auto &r : need.rows) have += "\n  " + r;
    for (const auto &r : need.rows)
        EXPECT_TRUE(doc.object_rows.count(r))
            << "the object needs " << r << " but docs/kernels.md has no row for it: add one "
            << "with the first kernel that has it, and recheck the minimum. The object needs:"
            << have;
    for (const auto &[r, v] : doc.object_rows)
        EXPECT_TRUE(need.rows.count(r)) << "docs/kernels.md lists " << r << " (" << v.str()
                                        << ") but the object no longer needs it: drop the row "
                                           "and recheck the minimum. The object needs:"
                                        << have;
}

TEST(KernelsTest, DocumentedMinimumIsTheLatestRequirement) {
    const Doc doc = read_doc(FABDNS_KERNELS_DOC);
    ASSERT_TRUE(doc.has_minimum) << "docs/kernels.md names no \"Minimum kernel: **x.y**\"";
    ASSERT_FALSE(doc.object_rows.empty());
    ASSERT_FALSE(doc.loader_rows.empty());
    Version latest;
    std::string why;
    for (const auto *rows : {&doc.object_rows, &doc.loader_rows})
        for (const auto &[r, v] : *rows)
            if (latest < v) latest = v, why = r;
    EXPECT_EQ(doc.minimum.str(), latest.str()) << "the latest requirement is " << why;
}

TEST(KernelsTest, EveryHelperIsAvailableOnThisKernelWhenItIsNewEnough) {
    FABDNS_REQUIRE_ROOT();
    utsname u{};
    uname(&u);
    const Version running = parse_version(u.release);
    const ObjectNeeds need = read_object(FABDNS_BPF_OBJ_PATH);
    const Doc doc = read_doc(FABDNS_KERNELS_DOC);
    int probed = 0;
    for (const auto &[row, id] : need.helper_ids) {
        auto it = doc.object_rows.find(row);
        if (it == doc.object_rows.end() || running < it->second) continue;
        // xdp helpers exist for XDP programs, skb ones for tc; the rest for both.
        bool ok = libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, bpf_func_id(id), nullptr) == 1 ||
                  libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, bpf_func_id(id), nullptr) == 1;
        EXPECT_TRUE(ok) << row << " is documented since " << it->second.str() << " but "
                        << u.release << " does not offer it";
        probed++;
    }
    EXPECT_GT(probed, 0);
    std::cout << "probed " << probed << " helpers on " << u.release << "\n";
}

}  // namespace
