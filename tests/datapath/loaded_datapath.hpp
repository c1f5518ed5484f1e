// A real loaded datapath under a per-process pin path, removed again when it goes away.
//
// Pinned at /sys/fs/bpf/fabdns-<name>-<pid>, answering for 10.0.0.1:53 and [fd00::1]:53 with a
// fresh liveness stamp; shared by the datapath tests and the benchmarks.
#pragma once

#include <dirent.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "datapath.hpp"
#include "packet.hpp"

namespace fabdns::test {

// The addresses frames are sent to and from; frame()'s defaults for IPv4.
inline FrameOpts frame_v4() {
    return FrameOpts{};
}
inline FrameOpts frame_v6() {
    FrameOpts f;
    f.v6 = true;
    f.src = "fd00::2";
    f.dst = "fd00::1";
    return f;
}

class LoadedDatapath {
  public:
    LoadedDatapath(const std::string &name, uint32_t capacity)
        : pin_("/sys/fs/bpf/fabdns-" + name + "-" + std::to_string(getpid())) {
        remove_orphans(name);
        try {
            dp_ = std::make_unique<loader::Datapath>(loader::Options{pin_, capacity});
            maps::ListenEntry v4, v6;
            v4.addr = IpAddr::parse("10.0.0.1")->mapped16();
            v4.port = 53;
            v6.addr = IpAddr::parse("fd00::1")->mapped16();
            v6.port = 53;
            dp_->maps().set_listen({v4, v6});
            refresh();
        } catch (...) {
            dp_.reset();
            loader::remove_all(pin_);
            throw;
        }
    }
    ~LoadedDatapath() {
        dp_.reset();
        loader::remove_all(pin_);
    }
    LoadedDatapath(const LoadedDatapath &) = delete;
    LoadedDatapath &operator=(const LoadedDatapath &) = delete;

    // A fresh liveness stamp, stale only after an hour: long runs never go stale.
    void refresh() {
        fabdns_config cfg = dp_->maps().config();
        cfg.stamp_ns = maps::monotonic_ns();
        cfg.stale_after_ns = 3600ull * 1000000000ull;
        dp_->maps().set_config(cfg);
    }

    loader::Datapath &dp() { return *dp_; }
    maps::AnswerTable &answers() { return dp_->maps().answers(); }
    const std::string &pin_path() const { return pin_; }
    int xdp_fd() const { return dp_->prog_fd(loader::Mode::XdpGeneric); }
    int tc_fd() const { return dp_->prog_fd(loader::Mode::Tc); }

  private:
    // A run that crashed cannot remove its pins: remove those of this name whose process is
    // gone, so that maps do not pile up in bpffs across runs.
    static void remove_orphans(const std::string &name) {
        const std::string prefix = "fabdns-" + name + "-";
        DIR *dir = opendir("/sys/fs/bpf");
        if (!dir) return;
        std::vector<std::string> dead;
        while (dirent *e = readdir(dir)) {
            const std::string entry = e->d_name;
            if (entry.rfind(prefix, 0) != 0) continue;
            const std::string pid = entry.substr(prefix.size());
            if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
            if (kill(std::stoi(pid), 0) < 0 && errno == ESRCH) dead.push_back(entry);
        }
        closedir(dir);
        for (const auto &d : dead) loader::remove_all("/sys/fs/bpf/" + d);
    }

    std::string pin_;
    std::unique_ptr<loader::Datapath> dp_;
};

// Random 0x20 spelling of a lowercase name.
template <class Rng>
std::string mix_case(const std::string &name, Rng &rng) {
    std::string out = name;
    for (char &c : out)
        if (c >= 'a' && c <= 'z' && (rng() & 1)) c = static_cast<char>(c - 'a' + 'A');
    return out;
}

}  // namespace fabdns::test
