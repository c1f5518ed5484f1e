// The datapath test fixture: the real BPF object loaded once per suite under its own pin path,
// answers inserted through the typed map interface, frames run through BPF_PROG_TEST_RUN.
#pragma once

#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "answers.hpp"
#include "datapath.hpp"
#include "packet.hpp"
#include "root.hpp"

namespace fabdns::test {

enum class Verdict { Answered, Passed, Other };

struct RunResult {
    Verdict verdict;
    uint32_t raw;
    Bytes out;
};

class DatapathFixture : public ::testing::TestWithParam<loader::Mode> {
  public:
    static std::string pin_path() {
        return "/sys/fs/bpf/fabdns-dptest-" + std::to_string(getpid());
    }

    static void TearDownTestSuite() {
        dp_.reset();
        if (geteuid() == 0) loader::remove_all(pin_path());
    }

  protected:
    void SetUp() override {
        FABDNS_REQUIRE_ROOT();
        if (!dp_) dp_ = std::make_unique<loader::Datapath>(loader::Options{pin_path(), 4096});
        auto &m = dp_->maps();
        m.answers().clear();
        maps::ListenEntry v4, v6;
        v4.addr = IpAddr::parse("10.0.0.1")->mapped16();
        v4.port = 53;
        v6.addr = IpAddr::parse("fd00::1")->mapped16();
        v6.port = 53;
        m.set_listen({v4, v6});
        fabdns_config cfg = m.config();
        cfg.stamp_ns = maps::monotonic_ns();
        cfg.stale_after_ns = 3600ull * 1000000000ull;
        m.set_config(cfg);
    }

    // Inserts an answer; addresses as text.
    void add(const std::string &name, uint16_t qtype, const std::vector<std::string> &addrs,
             uint32_t ttl = 5) {
        put_answer(dp_->maps().answers(), name, qtype, addrs, ttl);
    }

    RunResult run(const Bytes &in, loader::Mode mode) {
        auto r = loader::test_run(dp_->prog_fd(mode), in);
        RunResult out{Verdict::Other, r.verdict, r.out};
        if (mode == loader::Mode::Tc) {
            if (r.verdict == TC_ACT_REDIRECT) out.verdict = Verdict::Answered;
            if (r.verdict == TC_ACT_OK) out.verdict = Verdict::Passed;
        } else {
            if (r.verdict == XDP_TX) out.verdict = Verdict::Answered;
            if (r.verdict == XDP_PASS) out.verdict = Verdict::Passed;
        }
        return out;
    }
    RunResult run(const Bytes &in) { return run(in, GetParam()); }

    static inline std::unique_ptr<loader::Datapath> dp_;
};

}  // namespace fabdns::test
