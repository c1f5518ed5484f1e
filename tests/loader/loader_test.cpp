// Loader tests on the real kernel: pinning, adoption after a restart, in-place program swap,
// attach/detach in every mode and through both tc hooks (tcx, clsact), coexistence with foreign
// tc filters, and the clear errors (missing interface, foreign XDP program or filter, missing
// privileges). tests/qemu runs the attach tests on Debian 12's 6.1 kernel too.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "datapath.hpp"
#include "root.hpp"

namespace fabdns::loader {
namespace {

std::string sh(const std::string &cmd) {
    std::string out;
    FILE *p = popen((cmd + " 2>&1").c_str(), "r");
    char buf[512];
    while (p && fgets(buf, sizeof(buf), p)) out += buf;
    if (p) pclose(p);
    return out;
}

// Whether the kernel has a BPF link running program `id` (walks every link id, as bpftool
// link show does, without a process per check: that costs seconds under emulation).
bool kernel_has_link(uint32_t id) {
    for (uint32_t link = 0; bpf_link_get_next_id(link, &link) == 0;) {
        int fd = bpf_link_get_fd_by_id(link);
        if (fd < 0) continue;
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        bool match = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.prog_id == id;
        close(fd);
        if (match) return true;
    }
    return false;
}

bool contains(const std::string &text, const std::string &what) {
    return text.find(what) != std::string::npos;
}

// Whether the kernel runs the attachment: a link with its program, or fabdns's clsact filter
// (tc prints "handle 0xfabd ... id <prog>") with it.
bool kernel_runs(const Attachment &a) {
    if (a.hook != Hook::Clsact) return kernel_has_link(a.prog_id);
    std::string out = sh("tc filter show dev " + a.iface + " ingress");
    return contains(out, "handle 0xfabd") &&
           contains(out, " id " + std::to_string(a.prog_id) + " ");
}

// Linux 6.6 brought tcx links.
bool kernel_has_tcx() {
    utsname u{};
    uname(&u);
    int major = 0, minor = 0;
    sscanf(u.release, "%d.%d", &major, &minor);
    return major > 6 || (major == 6 && minor >= 6);
}

class LoaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        FABDNS_REQUIRE_ROOT();
        id_ = std::to_string(getpid());
        pin_ = "/sys/fs/bpf/fabdns-ldtest-" + id_;
        dev_ = "fdld" + id_;
        ASSERT_EQ(std::system(("ip link add " + dev_ + " type veth peer name fdlp" + id_ +
                               " && ip link set " + dev_ + " up")
                                  .c_str()),
                  0);
    }
    void TearDown() override {
        if (geteuid() != 0) return;
        std::system(("ip link del " + dev_ + " 2>/dev/null").c_str());
        remove_all(pin_);
        remove_all(pin_ + "-other");
        remove_all(pin_ + "-unpriv");
    }
    std::string id_, pin_, dev_;
};

fabdns_answer_key key_of(const std::string &name) {
    return maps::make_key(name, DNS_TYPE_A);
}

void put(maps::DatapathMaps &m, const std::string &name) {
    maps::KernelAnswer a;
    a.name = name;
    a.ttl = 5;
    a.addrs.push_back({10, 0, 0, 1});
    m.answers().upsert(key_of(name), maps::make_value(a));
}

TEST_F(LoaderTest, PinsMapsAndAdoptsThemOnRestart) {
    {
        Datapath dp({pin_, 1024});
        put(dp.maps(), "kept.default.svc.global");
        dp.attach(dev_, Mode::XdpGeneric);
    }
    // The process "exits": maps and the link stay pinned and attached.
    EXPECT_TRUE(std::filesystem::exists(pin_ + "/answers"));
    EXPECT_TRUE(std::filesystem::exists(pin_ + "/link_" + dev_));
    std::string link = sh("ip link show " + dev_);
    EXPECT_TRUE(contains(link, "xdpgeneric")) << link;
    {
        Datapath dp({pin_, 1024});
        EXPECT_TRUE(dp.maps().answers().lookup(key_of("kept.default.svc.global")))
            << "a restarted loader adopts the pinned answers";
        dp.attach(dev_, Mode::XdpGeneric);  // swapped in place, no error
        auto atts = list_attachments(pin_);
        ASSERT_EQ(atts.size(), 1u);
        EXPECT_EQ(atts[0].iface, dev_);
        EXPECT_EQ(atts[0].mode, Mode::XdpGeneric);
    }
    auto pinned = open_pinned_maps(pin_);
    EXPECT_TRUE(pinned->answers().lookup(key_of("kept.default.svc.global")));
    EXPECT_EQ(pinned->answers().capacity(), 1024u);
}

TEST_F(LoaderTest, CapacityChangeReplacesTheAnswerMap) {
    {
        Datapath dp({pin_, 1024});
        put(dp.maps(), "a.default.svc.global");
    }
    Datapath dp({pin_, 2048});
    EXPECT_EQ(dp.maps().answers().capacity(), 2048u);
    EXPECT_FALSE(dp.maps().answers().lookup(key_of("a.default.svc.global")));
}

TEST_F(LoaderTest, AnOlderStatsMapIsReplacedAndTheAnswersKept) {
    {
        Datapath dp({pin_, 1024});
        put(dp.maps(), "kept.default.svc.global");
    }
    // What an earlier version pinned: fewer pass reasons.
    const std::string stats = pin_ + "/" FABDNS_MAP_STATS;
    ASSERT_EQ(unlink(stats.c_str()), 0);
    LIBBPF_OPTS(bpf_map_create_opts, opts);
    int old = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, FABDNS_MAP_STATS, sizeof(__u32),
                             sizeof(__u64), FABDNS_STAT_MAX - 4, &opts);
    ASSERT_GE(old, 0);
    ASSERT_EQ(bpf_obj_pin(old, stats.c_str()), 0);
    close(old);

    Datapath dp({pin_, 1024});
    EXPECT_TRUE(dp.maps().answers().lookup(key_of("kept.default.svc.global")))
        << "an upgrade that adds counters keeps the answers";
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    int fd = bpf_obj_get(stats.c_str());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    close(fd);
    EXPECT_EQ(info.max_entries, uint32_t(FABDNS_STAT_MAX));
    EXPECT_EQ(dp.maps().stats().size(), size_t(FABDNS_STAT_MAX));
}

// The pinned copies of the answer table, read directly.
std::set<std::string> pinned_names(const std::string &pin_path, const char *copy) {
    std::set<std::string> names;
    const int fd = bpf_obj_get((pin_path + "/" + copy).c_str());
    if (fd < 0) return names;
    fabdns_answer_key key{}, next{};
    const void *prev = nullptr;
    fabdns_answer v{};
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) names.emplace(maps::dotted_name(v));
        key = next;
        prev = &key;
    }
    close(fd);
    return names;
}

uint32_t active_copy_id(const std::string &pin_path) {
    const int fd = bpf_obj_get((pin_path + "/" FABDNS_MAP_ANSWERS_ACTIVE).c_str());
    uint32_t zero = 0, id = 0;
    if (fd >= 0) bpf_map_lookup_elem(fd, &zero, &id);
    if (fd >= 0) close(fd);
    return id;
}

uint32_t pinned_id(const std::string &path) {
    const int fd = bpf_obj_get(path.c_str());
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (fd >= 0) bpf_obj_get_info_by_fd(fd, &info, &len);
    if (fd >= 0) close(fd);
    return info.id;
}

TEST_F(LoaderTest, BatchesSwitchCopiesAndLeaveBothTheSame) {
    Datapath dp({pin_, 1024});
    const uint32_t copy0 = pinned_id(pin_ + "/" FABDNS_MAP_ANSWERS);
    const uint32_t copy1 = pinned_id(pin_ + "/" FABDNS_MAP_ANSWERS_STANDBY);
    ASSERT_NE(copy0, copy1);
    EXPECT_EQ(active_copy_id(pin_), copy0) << "a new table starts on copy 0";
    put(dp.maps(), "a.default.svc.global");
    EXPECT_EQ(active_copy_id(pin_), copy1) << "a batch is read from the copy it was written to";
    put(dp.maps(), "b.default.svc.global");
    EXPECT_EQ(active_copy_id(pin_), copy0);
    dp.maps().answers().erase(key_of("a.default.svc.global"));
    const std::set<std::string> want = {"b.default.svc.global"};
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS), want);
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS_STANDBY), want);
    // An empty batch switches nothing.
    const uint32_t before = active_copy_id(pin_);
    EXPECT_TRUE(dp.maps().answers().apply({}).empty());
    EXPECT_EQ(active_copy_id(pin_), before);
}

TEST_F(LoaderTest, AFullTableFailsTheSameAdditionInBothCopies) {
    Datapath dp({pin_, 2});
    std::vector<maps::AnswerChange> batch;
    for (const char *name :
         {"a.default.svc.global", "b.default.svc.global", "c.default.svc.global"}) {
        maps::KernelAnswer a;
        a.name = name;
        a.ttl = 5;
        a.addrs.push_back({10, 0, 0, 1});
        batch.push_back({key_of(name), maps::make_value(a)});
    }
    const auto failed = dp.maps().answers().apply(batch);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].index, 2u);
    EXPECT_EQ(failed[0].error, E2BIG);
    const std::set<std::string> want = {"a.default.svc.global", "b.default.svc.global"};
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS), want);
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS_STANDBY), want);
    EXPECT_THROW(put(dp.maps(), "d.default.svc.global"), std::system_error);
}

TEST_F(LoaderTest, ARestartMakesTheStandbyCopyEqualToTheReadOne) {
    {
        Datapath dp({pin_, 1024});
        put(dp.maps(), "kept.default.svc.global");  // now read from copy 1
    }
    // What a daemon stopped half-way through a batch leaves: the copy programs do not read
    // has an extra entry and lacks one.
    ASSERT_EQ(active_copy_id(pin_), pinned_id(pin_ + "/" FABDNS_MAP_ANSWERS_STANDBY));
    {
        const int fd = bpf_obj_get((pin_ + "/" FABDNS_MAP_ANSWERS).c_str());
        ASSERT_GE(fd, 0);
        maps::KernelAnswer a;
        a.name = "half.default.svc.global";
        a.ttl = 5;
        a.addrs.push_back({10, 0, 0, 2});
        const auto k = key_of(a.name), gone = key_of("kept.default.svc.global");
        const auto v = maps::make_value(a);
        ASSERT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
        ASSERT_EQ(bpf_map_delete_elem(fd, &gone), 0);
        close(fd);
    }
    Datapath dp({pin_, 1024});
    const std::set<std::string> want = {"kept.default.svc.global"};
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS), want);
    EXPECT_EQ(pinned_names(pin_, FABDNS_MAP_ANSWERS_STANDBY), want);
}

TEST_F(LoaderTest, AnswerPinsOfTheOneCopyLayoutAreReplaced) {
    {
        Datapath dp({pin_, 1024});
        put(dp.maps(), "a.default.svc.global");
    }
    // An earlier version pinned one copy and no switch.
    ASSERT_EQ(unlink((pin_ + "/" FABDNS_MAP_ANSWERS_STANDBY).c_str()), 0);
    ASSERT_EQ(unlink((pin_ + "/" FABDNS_MAP_ANSWERS_ACTIVE).c_str()), 0);
    Datapath dp({pin_, 1024});
    EXPECT_FALSE(dp.maps().answers().lookup(key_of("a.default.svc.global")));
    EXPECT_EQ(active_copy_id(pin_), pinned_id(pin_ + "/" FABDNS_MAP_ANSWERS));
    put(dp.maps(), "b.default.svc.global");
    EXPECT_TRUE(dp.maps().answers().lookup(key_of("b.default.svc.global")));
}

TEST_F(LoaderTest, AttachDetachEveryModeLeavesNoTrace) {
    Datapath dp({pin_, 1024});
    // Native xdp on the host end of a veth pair: attaching needs nothing on the peer.
    for (Mode m : {Mode::XdpGeneric, Mode::Xdp, Mode::Tc}) {
        SCOPED_TRACE(to_string(m));
        dp.attach(dev_, m);
        auto atts = list_attachments(pin_);
        ASSERT_EQ(atts.size(), 1u);
        EXPECT_EQ(atts[0].mode, m);
        EXPECT_EQ(atts[0].prog_id, dp.prog_id(m));
        // tc takes a tcx link where the kernel has them, else clsact (Hook decides the check).
        if (m == Mode::Tc) {
            EXPECT_EQ(atts[0].hook, kernel_has_tcx() ? Hook::TcxLink : Hook::Clsact);
        }
        EXPECT_TRUE(kernel_runs(atts[0])) << to_string(atts[0].hook);
        dp.detach(dev_);
        EXPECT_TRUE(list_attachments(pin_).empty());
        EXPECT_FALSE(kernel_has_link(atts[0].prog_id));
        std::string link = sh("ip link show " + dev_);
        EXPECT_FALSE(contains(link, "xdp")) << link;
        std::string qdisc = sh("tc qdisc show dev " + dev_);
        EXPECT_FALSE(contains(qdisc, "clsact")) << qdisc;
    }
    // Switching modes replaces the attachment.
    dp.attach(dev_, Mode::XdpGeneric);
    dp.attach(dev_, Mode::Tc);
    auto atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].mode, Mode::Tc);
    std::string link = sh("ip link show " + dev_);
    EXPECT_FALSE(contains(link, "xdp")) << link;
    uint32_t id = list_attachments(pin_)[0].prog_id;
    remove_all(pin_);
    EXPECT_FALSE(std::filesystem::exists(pin_));
    EXPECT_FALSE(kernel_has_link(id));
}

// tc through clsact + cls_bpf, forced here; Auto takes it where tcx is missing (before 6.6).
class ClsactTest : public LoaderTest {
  protected:
    Options options(const std::string &pin) const { return {pin, 1024, TcHook::Clsact}; }
    std::string filters(const std::string &dir = "ingress") const {
        return sh("tc filter show dev " + dev_ + " " + dir);
    }
    std::string qdiscs() const { return sh("tc qdisc show dev " + dev_); }
    // Nothing of fabdns is left on the device or under the pin path.
    void expect_nothing_left() const {
        EXPECT_TRUE(list_attachments(pin_).empty());
        EXPECT_FALSE(contains(filters(), "0xfabd")) << filters();
        EXPECT_FALSE(std::filesystem::exists(pin_ + "/tc_" + dev_));
        EXPECT_FALSE(std::filesystem::exists(pin_ + "/clsact_" + dev_));
    }
};

TEST_F(ClsactTest, AttachDetachLeavesNothing) {
    Datapath dp(options(pin_));
    dp.attach(dev_, Mode::Tc);
    auto atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].hook, Hook::Clsact);
    EXPECT_EQ(atts[0].mode, Mode::Tc);
    EXPECT_EQ(atts[0].prog_id, dp.prog_id(Mode::Tc));
    EXPECT_TRUE(kernel_runs(atts[0])) << filters();
    EXPECT_TRUE(contains(filters(), "direct-action")) << filters();
    EXPECT_TRUE(contains(qdiscs(), "clsact")) << qdiscs();
    dp.detach(dev_);
    expect_nothing_left();
    // fabdns created the qdisc and nothing else used it: it is gone too.
    EXPECT_FALSE(contains(qdiscs(), "clsact")) << qdiscs();
}

TEST_F(ClsactTest, RestartReplacesTheProgramInPlaceWithoutAGap) {
    uint32_t first = 0;
    {
        Datapath dp(options(pin_));
        put(dp.maps(), "kept.default.svc.global");
        dp.attach(dev_, Mode::Tc);
        first = dp.prog_id(Mode::Tc);
    }
    // The process "exited": the filter stays and still runs the first program.
    auto atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].prog_id, first);
    EXPECT_TRUE(kernel_runs(atts[0])) << filters();

    // While a new daemon takes over, the filter must be there at every moment.
    const unsigned ifindex = if_nametoindex(dev_.c_str());
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> polls{0}, gaps{0};
    std::set<uint32_t> seen;
    std::thread poller([&] {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                    .attach_point = BPF_TC_INGRESS);
        while (!stop) {
            LIBBPF_OPTS(bpf_tc_opts, q, .handle = kClsactHandle, .priority = kClsactPriority);
            if (bpf_tc_query(&hook, &q) == 0)
                seen.insert(q.prog_id);
            else
                gaps++;
            polls++;
        }
    });
    uint32_t second = 0;
    {
        Datapath dp(options(pin_));
        EXPECT_TRUE(dp.maps().answers().lookup(key_of("kept.default.svc.global")));
        dp.attach(dev_, Mode::Tc);
        second = dp.prog_id(Mode::Tc);
    }
    // Let the poller see the new program too (it may not have run on a busy machine).
    for (uint64_t until = polls + 100; polls < until;) std::this_thread::yield();
    stop = true;
    poller.join();
    EXPECT_NE(first, second);
    EXPECT_GT(polls.load(), 0u);
    EXPECT_EQ(gaps.load(), 0u) << "the filter was missing during the replacement";
    EXPECT_TRUE(seen.count(second));
    for (uint32_t id : seen) EXPECT_TRUE(id == first || id == second) << id;
    atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].prog_id, second);
    // Exactly one fabdns filter, running the new program.
    std::string f = filters();
    EXPECT_TRUE(kernel_runs(atts[0])) << f;
    EXPECT_FALSE(contains(f, " id " + std::to_string(first) + " ")) << f;
    // The qdisc the first daemon created is still known as fabdns's: detach removes it.
    detach(pin_, dev_);
    expect_nothing_left();
    EXPECT_FALSE(contains(qdiscs(), "clsact")) << qdiscs();
}

TEST_F(ClsactTest, ForeignFiltersAndQdiscAreLeftAlone) {
    // Someone else's clsact qdisc with a filter: fabdns adds its own beside it and, on detach,
    // removes only its own.
    ASSERT_EQ(std::system(("tc qdisc add dev " + dev_ + " clsact && tc filter add dev " + dev_ +
                           " ingress prio 7 u32 match u32 0 0")
                              .c_str()),
              0);
    {
        Datapath dp(options(pin_));
        dp.attach(dev_, Mode::Tc);
        EXPECT_TRUE(contains(filters(), "u32")) << filters();
        EXPECT_TRUE(kernel_runs(list_attachments(pin_).at(0))) << filters();
        dp.detach(dev_);
    }
    expect_nothing_left();
    EXPECT_TRUE(contains(filters(), "u32")) << filters();
    EXPECT_TRUE(contains(qdiscs(), "clsact")) << "fabdns did not create the qdisc";
    ASSERT_EQ(std::system(("tc qdisc del dev " + dev_ + " clsact").c_str()), 0);

    // fabdns created the qdisc, then someone else added a filter (egress): detach keeps both.
    {
        Datapath dp(options(pin_));
        dp.attach(dev_, Mode::Tc);
        ASSERT_EQ(
            std::system(("tc filter add dev " + dev_ + " egress prio 3 u32 match u32 0 0").c_str()),
            0);
        dp.detach(dev_);
    }
    expect_nothing_left();
    EXPECT_TRUE(contains(filters("egress"), "u32")) << filters("egress");
    EXPECT_TRUE(contains(qdiscs(), "clsact")) << "the qdisc is still in use";
}

TEST_F(ClsactTest, AFilterAtFabdnsHandleNotPinnedHereIsNeverReplaced) {
    Datapath other(options(pin_ + "-other"));
    other.attach(dev_, Mode::Tc);
    Datapath dp(options(pin_));
    try {
        dp.attach(dev_, Mode::Tc);
        FAIL() << "replaced a foreign tc filter";
    } catch (const Error &e) {
        EXPECT_TRUE(contains(e.what(), "refusing to replace")) << e.what();
    }
    auto atts = list_attachments(pin_ + "-other");
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].prog_id, other.prog_id(Mode::Tc)) << "the foreign filter still runs";
    EXPECT_TRUE(list_attachments(pin_).empty());
}

TEST_F(ClsactTest, AnotherClassifierAtFabdnsPriorityIsAClearError) {
    ASSERT_EQ(std::system(("tc qdisc add dev " + dev_ + " clsact && tc filter add dev " + dev_ +
                           " ingress prio 1 u32 match u32 0 0")
                              .c_str()),
              0);
    Datapath dp(options(pin_));
    try {
        dp.attach(dev_, Mode::Tc);
        FAIL() << "attached beside another classifier kind at the same priority";
    } catch (const Error &e) {
        EXPECT_TRUE(contains(e.what(), "held by a filter of another kind")) << e.what();
    }
    expect_nothing_left();
    EXPECT_TRUE(contains(filters(), "u32")) << filters();
    EXPECT_TRUE(contains(qdiscs(), "clsact")) << "not fabdns's qdisc: kept";
}

TEST_F(ClsactTest, ModeChangesLeaveNoClsactBehind) {
    Datapath dp(options(pin_));
    dp.attach(dev_, Mode::Tc);
    dp.attach(dev_, Mode::XdpGeneric);
    auto atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].mode, Mode::XdpGeneric);
    EXPECT_FALSE(contains(filters(), "0xfabd")) << filters();
    EXPECT_FALSE(contains(qdiscs(), "clsact")) << qdiscs();
    dp.attach(dev_, Mode::Tc);
    atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].hook, Hook::Clsact);
    std::string link = sh("ip link show " + dev_);
    EXPECT_FALSE(contains(link, "xdp")) << link;
    remove_all(pin_);
    EXPECT_FALSE(std::filesystem::exists(pin_));
    EXPECT_FALSE(contains(qdiscs(), "clsact")) << qdiscs();
}

TEST_F(LoaderTest, MissingInterfaceIsAClearError) {
    Datapath dp({pin_, 1024});
    try {
        dp.attach("nosuchdev0", Mode::Tc);
        FAIL() << "attach to a missing interface succeeded";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("interface nosuchdev0 not found"), std::string::npos)
            << e.what();
    }
}

TEST_F(LoaderTest, ForeignXdpProgramIsNeverReplaced) {
    // Another XDP program (here: a second fabdns instance with its own pins) owns the device.
    Datapath other({pin_ + "-other", 1024});
    other.attach(dev_, Mode::XdpGeneric);
    Datapath dp({pin_, 1024});
    for (Mode m : {Mode::XdpGeneric, Mode::Xdp}) {
        try {
            dp.attach(dev_, m);
            FAIL() << "replaced a foreign XDP program";
        } catch (const Error &e) {
            EXPECT_NE(std::string(e.what()).find("refusing to replace"), std::string::npos)
                << e.what();
        }
    }
    auto atts = list_attachments(pin_ + "-other");
    ASSERT_EQ(atts.size(), 1u) << "the foreign program is still attached";
    EXPECT_TRUE(list_attachments(pin_).empty());
}

TEST_F(LoaderTest, NativeXdpOnLoIsRefusedWithAHint) {
    if (sh("ip link show lo").find("xdp") != std::string::npos)
        GTEST_SKIP() << "lo already has an XDP program (a running fabdnsd?)";
    Datapath dp({pin_, 1024});
    try {
        dp.attach("lo", Mode::Xdp);
        dp.detach("lo");
        GTEST_SKIP() << "this kernel accepts native XDP on lo";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("xdp-generic"), std::string::npos) << e.what();
    }
}

TEST_F(LoaderTest, MissingPrivilegesAreNamed) {
    // A child that drops root must get an error that says what is missing.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
        std::string msg;
        try {
            Datapath dp({pin_ + "-unpriv", 1024});
            msg = "loaded";
        } catch (const Error &e) {
            msg = e.what();
        }
        if (write(fds[1], msg.data(), msg.size()) < 0) _exit(4);
        _exit(0);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_NE(msg.find("needs root or CAP_BPF"), std::string::npos) << msg;
}

}  // namespace
}  // namespace fabdns::loader
