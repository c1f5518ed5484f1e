// Loader tests on the real kernel: pinning, adoption after a restart, in-place program swap,
// attach/detach in every mode, and the clear errors (missing interface, foreign XDP program,
// missing privileges).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

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

// Whether the kernel lists a BPF link running program `id` ("89: xdp  prog 192 ...").
bool kernel_has_link(uint32_t id) {
    std::istringstream in(sh("bpftool link show"));
    std::string tok, prev;
    while (in >> tok) {
        if (prev == "prog" && tok == std::to_string(id)) return true;
        prev = tok;
    }
    return false;
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
    return maps::make_key(name, FABDNS_QTYPE_A);
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
    EXPECT_NE(sh("ip link show " + dev_).find("xdpgeneric"), std::string::npos);
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

TEST_F(LoaderTest, AttachDetachEveryModeLeavesNoTrace) {
    Datapath dp({pin_, 1024});
    for (Mode m : {Mode::XdpGeneric, Mode::Tc}) {
        SCOPED_TRACE(to_string(m));
        dp.attach(dev_, m);
        auto atts = list_attachments(pin_);
        ASSERT_EQ(atts.size(), 1u);
        EXPECT_EQ(atts[0].mode, m);
        // The kernel lists a link running our program.
        EXPECT_TRUE(kernel_has_link(atts[0].prog_id));
        dp.detach(dev_);
        EXPECT_TRUE(list_attachments(pin_).empty());
        EXPECT_FALSE(kernel_has_link(atts[0].prog_id));
        EXPECT_EQ(sh("ip link show " + dev_).find("xdp"), std::string::npos);
    }
    // Switching modes replaces the attachment.
    dp.attach(dev_, Mode::XdpGeneric);
    dp.attach(dev_, Mode::Tc);
    auto atts = list_attachments(pin_);
    ASSERT_EQ(atts.size(), 1u);
    EXPECT_EQ(atts[0].mode, Mode::Tc);
    EXPECT_EQ(sh("ip link show " + dev_).find("xdp"), std::string::npos);
    uint32_t id = list_attachments(pin_)[0].prog_id;
    remove_all(pin_);
    EXPECT_FALSE(std::filesystem::exists(pin_));
    EXPECT_FALSE(kernel_has_link(id));
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
