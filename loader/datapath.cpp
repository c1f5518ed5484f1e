// libbpf-backed loader: skeleton load with pinned-map reuse, attach through XDP links, tcx
// links or (before Linux 6.6) a clsact cls_bpf filter, pins that record each attachment so the
// datapath outlives the process, and map access by fd.
#include "datapath.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>

#include "common/fd.hpp"
#include "common/log.hpp"
#include "fabdns.skel.h"

namespace fabdns::loader {

namespace {

// tcx attach points (Linux 6.6); older uapi headers do not name them.
constexpr int kTcxIngress = 46;
// Under pin_path: link_<iface> is a pinned XDP or tcx link; tc_<iface> the program pinned for
// fabdns's clsact filter on iface (a filter is no BPF object, so the program stands for it);
// clsact_<iface>/ an empty directory saying fabdns created that clsact qdisc.
constexpr const char *kLinkPrefix = "link_";
constexpr const char *kTcPrefix = "tc_";
constexpr const char *kTcNewPrefix = "tcnew_";
constexpr const char *kQdiscPrefix = "clsact_";
const char *const kAnswerMaps[] = {FABDNS_MAP_ANSWERS, FABDNS_MAP_ANSWERS_STANDBY,
                                   FABDNS_MAP_ANSWERS_ACTIVE};
const char *const kMapNames[] = {FABDNS_MAP_ANSWERS,        FABDNS_MAP_ANSWERS_STANDBY,
                                 FABDNS_MAP_ANSWERS_ACTIVE, FABDNS_MAP_LISTEN,
                                 FABDNS_MAP_CONFIG,         FABDNS_MAP_STATS};

int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf), fmt, args);
    std::string_view msg(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    std::string line = "libbpf: " + std::string(msg);
    // The kernel's own words on a refused netlink request ("Exclusivity flag on" for a clsact
    // qdisc that exists) are expected answers to probes; the loader reports real failures.
    if (level == LIBBPF_WARN && msg.find("Kernel error message:") == std::string_view::npos)
        log::warn(line);
    else
        log::debug(line);
    return 0;
}

std::string errstr(int err) {
    return std::strerror(err < 0 ? -err : err);
}

[[noreturn]] void fail_errno(const std::string &what, int err) {
    err = err < 0 ? -err : err;
    if (err == EPERM || err == EACCES)
        throw Error(what + ": " + errstr(err) +
                    " (needs root or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)");
    throw Error(what + ": " + errstr(err));
}

void ensure_dir(const std::string &path) {
    std::string cur;
    for (size_t i = 0; i <= path.size(); i++) {
        if (i == path.size() || (path[i] == '/' && i > 0)) {
            cur = path.substr(0, i);
            if (mkdir(cur.c_str(), 0700) < 0 && errno != EEXIST)
                fail_errno("cannot create pin directory " + cur, errno);
        }
    }
}

std::string link_pin(const std::string &pin_path, const std::string &iface) {
    return pin_path + "/" + kLinkPrefix + iface;
}
std::string tc_pin(const std::string &pin_path, const std::string &iface) {
    return pin_path + "/" + kTcPrefix + iface;
}
std::string qdisc_marker(const std::string &pin_path, const std::string &iface) {
    return pin_path + "/" + kQdiscPrefix + iface;
}
bool exists(const std::string &path) {
    return access(path.c_str(), F_OK) == 0;
}

// Answers-map pins from an older build or another capacity cannot be adopted: drop them so
// that fresh maps are created (the daemon refills them).
// The layout of one pinned map, or nothing when it is not pinned.
std::optional<bpf_map_info> pinned_map_info(const std::string &path) {
    Fd fd(bpf_obj_get(path.c_str()));
    if (fd.fd < 0) return std::nullopt;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) < 0) return std::nullopt;
    return info;
}

// libbpf refuses to reuse a pinned map whose layout differs from the object's, so a pin from
// another capacity or another version is removed before load() and created anew. The answer
// table's three maps go together: a copy without its switch (pins of a version with one copy)
// is replaced as well.
void drop_incompatible_pins(const std::string &pin_path, uint32_t capacity) {
    auto copy_fits = [&](const char *name) {
        auto info = pinned_map_info(pin_path + "/" + name);
        return info && info->max_entries == capacity &&
               info->key_size == sizeof(fabdns_answer_key) &&
               info->value_size == sizeof(fabdns_answer);
    };
    auto present = [&](const char *name) { return exists(pin_path + "/" + name); };
    const bool any = present(FABDNS_MAP_ANSWERS) || present(FABDNS_MAP_ANSWERS_STANDBY) ||
                     present(FABDNS_MAP_ANSWERS_ACTIVE);
    if (any && !(copy_fits(FABDNS_MAP_ANSWERS) && copy_fits(FABDNS_MAP_ANSWERS_STANDBY) &&
                 present(FABDNS_MAP_ANSWERS_ACTIVE))) {
        auto info = pinned_map_info(pin_path + "/" + FABDNS_MAP_ANSWERS);
        log::warn("pinned answer table (capacity " + std::to_string(info ? info->max_entries : 0) +
                  ", value size " + std::to_string(info ? info->value_size : 0) +
                  ") does not fit this version or capacity; replacing it");
        for (const char *name : kAnswerMaps) unlink((pin_path + "/" + name).c_str());
    }
    // A version that counts more pass reasons has a longer stats map: only the counters
    // restart from zero, the answers stay.
    if (auto info = pinned_map_info(pin_path + "/" + FABDNS_MAP_STATS);
        info && (info->max_entries != FABDNS_STAT_MAX || info->value_size != sizeof(__u64))) {
        log::warn("pinned stats map has " + std::to_string(info->max_entries) +
                  " counters, this version has " + std::to_string(FABDNS_STAT_MAX) +
                  "; the kernel counters restart from zero");
        unlink((pin_path + "/" + FABDNS_MAP_STATS).c_str());
    }
}

uint32_t map_id(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Every entry of one copy, in the kernel's order.
void walk(int fd, const std::function<void(const fabdns_answer_key &, const fabdns_answer &)> &fn) {
    fabdns_answer_key key{}, next{};
    const void *prev = nullptr;
    fabdns_answer v{};
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) fn(next, v);
        key = next;
        prev = &key;
    }
}

bool same_answer(const fabdns_answer &a, const fabdns_answer &b) {
    // Everything but the kernel's hit counter.
    return std::memcmp(&a, &b, offsetof(fabdns_answer, hits)) == 0 &&
           std::memcmp(a.rdata, b.rdata, sizeof(a.rdata)) == 0;
}

// The two copies of the answer table and the switch between them (bpf/lib/maps.h says why).
// A batch is written into the copy no program reads, the switch is made (the syscall returns
// after an RCU grace period, so no program reads the other copy any more), and the batch is
// written into the other copy as well.
class FdAnswerTable : public maps::AnswerTable {
  public:
    FdAnswerTable(int copy0, int copy1, int active, uint32_t capacity)
        : copies_{Fd(copy0), Fd(copy1)}, active_fd_(active), capacity_(capacity) {
        uint32_t zero = 0, id = 0;
        if (bpf_map_lookup_elem(active_fd_.fd, &zero, &id) == 0 && id == map_id(copies_[1].fd))
            active_ = 1;
    }

    std::optional<fabdns_answer> lookup(const fabdns_answer_key &key) const override {
        fabdns_answer v{};
        if (bpf_map_lookup_elem(copies_[active_].fd, &key, &v) < 0) return std::nullopt;
        return v;
    }

    std::vector<maps::AnswerFailure> apply(
        const std::vector<maps::AnswerChange> &changes) override {
        std::vector<maps::AnswerFailure> failed;
        if (changes.empty()) return failed;
        const int standby = 1 - active_;
        write(copies_[standby].fd, changes, &failed);
        switch_to(standby);
        write(copies_[standby ^ 1].fd, changes, nullptr, &failed);
        return failed;
    }

    void for_each(const std::function<void(const fabdns_answer_key &, const fabdns_answer &)> &fn)
        const override {
        const int read = active_;
        const int other = copies_[read ^ 1].fd;
        walk(copies_[read].fd, [&](const fabdns_answer_key &k, const fabdns_answer &v) {
            fabdns_answer o{};
            if (bpf_map_lookup_elem(other, &k, &o) < 0) return fn(k, v);
            fabdns_answer sum = v;
            sum.hits += o.hits;  // the kernel counts in whichever copy it read
            fn(k, sum);
        });
    }
    uint32_t capacity() const override { return capacity_; }

    // Makes the copy programs do not read equal to the one they read: after a restart that
    // interrupted a batch, or when one of the pins was new.
    void mirror() {
        const int read = active_;
        const int from = copies_[read].fd, to = copies_[read ^ 1].fd;
        std::vector<maps::AnswerChange> diff;
        walk(to, [&](const fabdns_answer_key &k, const fabdns_answer &) {
            fabdns_answer v{};
            if (bpf_map_lookup_elem(from, &k, &v) < 0) diff.push_back({k, std::nullopt});
        });
        walk(from, [&](const fabdns_answer_key &k, const fabdns_answer &v) {
            fabdns_answer o{};
            if (bpf_map_lookup_elem(to, &k, &o) < 0 || !same_answer(v, o)) diff.push_back({k, v});
        });
        std::vector<maps::AnswerFailure> failed;
        write(to, diff, &failed);
        if (!failed.empty())
            log::warn("the standby answer table could not take " + std::to_string(failed.size()) +
                      " entries");
        // Make sure programs read the copy the walk started from.
        switch_to(read);
    }

  private:
    // Removals, then additions; `failed` collects the additions that fail, and additions that
    // failed before (`skip`) are not tried, so that both copies end up the same.
    static void write(int fd, const std::vector<maps::AnswerChange> &changes,
                      std::vector<maps::AnswerFailure> *failed,
                      const std::vector<maps::AnswerFailure> *skip = nullptr) {
        for (const auto &c : changes)
            if (!c.value) bpf_map_delete_elem(fd, &c.key);
        size_t s = 0;
        for (size_t i = 0; i < changes.size(); i++) {
            if (!changes[i].value) continue;
            if (skip && s < skip->size() && (*skip)[s].index == i) {
                s++;
                continue;
            }
            if (bpf_map_update_elem(fd, &changes[i].key, &*changes[i].value, BPF_ANY) < 0 && failed)
                failed->push_back({i, errno});
        }
    }

    void switch_to(int copy) {
        uint32_t zero = 0;
        int fd = copies_[copy].fd;
        if (bpf_map_update_elem(active_fd_.fd, &zero, &fd, BPF_ANY) < 0)
            throw std::system_error(errno, std::generic_category(), "answers_active map update");
        active_ = copy;
    }

    Fd copies_[2];
    Fd active_fd_;
    std::atomic<int> active_{0};  // lookups may come from another thread (GET /explain)
    uint32_t capacity_;
};

class FdMaps : public maps::DatapathMaps {
  public:
    FdMaps(const int answers[3], uint32_t capacity, int listen, int config, int stats)
        : answers_(answers[0], answers[1], answers[2], capacity),
          listen_(listen),
          config_(config),
          stats_(stats) {}

    FdAnswerTable &table() { return answers_; }
    maps::AnswerTable &answers() override { return answers_; }
    const maps::AnswerTable &answers() const override { return answers_; }

    void set_listen(const std::vector<maps::ListenEntry> &entries) override {
        std::vector<fabdns_listen_key> want;
        for (const auto &e : entries) {
            fabdns_listen_key k{};
            std::memcpy(k.addr, e.addr.data(), 16);
            k.port = htons(e.port);
            want.push_back(k);
        }
        // Add before removing, so a destination that stays is never briefly missing.
        fabdns_listen_value val{};
        for (const auto &k : want)
            if (bpf_map_update_elem(listen_.fd, &k, &val, BPF_ANY) < 0)
                throw std::system_error(errno, std::generic_category(), "listen map update");
        for (const auto &k : listen_keys()) {
            bool keep = false;
            for (const auto &w : want) keep |= std::memcmp(&w, &k, sizeof(k)) == 0;
            if (!keep) bpf_map_delete_elem(listen_.fd, &k);
        }
        // After the map changed: a CPU that found a destination under the old generation looks
        // it up again. A clock value, so that a restarted daemon never reuses one.
        fabdns_config cfg = config();
        cfg.listen_gen = std::max<uint64_t>(maps::monotonic_ns(), cfg.listen_gen + 1);
        set_config(cfg);
    }

    std::vector<maps::ListenEntry> listen() const override {
        std::vector<maps::ListenEntry> out;
        for (const auto &k : listen_keys()) {
            maps::ListenEntry e;
            std::memcpy(e.addr.data(), k.addr, 16);
            e.port = ntohs(k.port);
            out.push_back(e);
        }
        return out;
    }

    fabdns_config config() const override {
        uint32_t zero = 0;
        fabdns_config cfg{};
        bpf_map_lookup_elem(config_.fd, &zero, &cfg);
        return cfg;
    }
    void set_config(const fabdns_config &cfg) override {
        uint32_t zero = 0;
        if (bpf_map_update_elem(config_.fd, &zero, &cfg, BPF_ANY) < 0)
            throw std::system_error(errno, std::generic_category(), "config map update");
    }

    std::array<uint64_t, FABDNS_STAT_MAX> stats() const override {
        std::array<uint64_t, FABDNS_STAT_MAX> out{};
        int ncpu = libbpf_num_possible_cpus();
        std::vector<uint64_t> per(ncpu > 0 ? ncpu : 1);
        for (uint32_t i = 0; i < FABDNS_STAT_MAX; i++) {
            if (bpf_map_lookup_elem(stats_.fd, &i, per.data()) < 0) continue;
            for (uint64_t v : per) out[i] += v;
        }
        return out;
    }

  private:
    std::vector<fabdns_listen_key> listen_keys() const {
        std::vector<fabdns_listen_key> keys;
        fabdns_listen_key k{}, next{};
        const void *prev = nullptr;
        while (bpf_map_get_next_key(listen_.fd, prev, &next) == 0) {
            keys.push_back(next);
            k = next;
            prev = &k;
        }
        return keys;
    }

    FdAnswerTable answers_;
    Fd listen_, config_, stats_;
};

uint32_t map_capacity(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.max_entries : 0;
}

struct LinkInfo {
    uint32_t type = 0, prog_id = 0, ifindex = 0;
};

std::optional<LinkInfo> link_info(int fd) {
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) return std::nullopt;
    LinkInfo out;
    out.type = info.type;
    out.prog_id = info.prog_id;
    // xdp.ifindex and tcx.ifindex share the first word of the union.
    std::memcpy(&out.ifindex, &info.xdp, sizeof(out.ifindex));
    return out;
}

constexpr uint32_t kLinkTypeXdp = 6, kLinkTypeTcx = 11;

std::optional<Mode> xdp_mode_of(uint32_t ifindex) {
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) < 0) return std::nullopt;
    if (q.attach_mode == XDP_ATTACHED_SKB) return Mode::XdpGeneric;
    if (q.attach_mode == XDP_ATTACHED_DRV || q.attach_mode == XDP_ATTACHED_HW) return Mode::Xdp;
    return std::nullopt;
}

// Id of the program pinned at path; 0 when there is none.
uint32_t pinned_prog_id(const std::string &path) {
    Fd fd(bpf_obj_get(path.c_str()));
    if (fd.fd < 0) return 0;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd.fd, &info, &len) == 0 ? info.id : 0;
}

bpf_tc_hook ingress_hook(unsigned ifindex) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                .attach_point = BPF_TC_INGRESS);
    return hook;
}

std::string clsact_place() {
    char buf[64];
    snprintf(buf, sizeof(buf), "clsact ingress priority %u handle 0x%x", kClsactPriority,
             kClsactHandle);
    return buf;
}

// Program id of the filter at fabdns's clsact handle and priority on ifindex, if any.
std::optional<uint32_t> clsact_prog_id(unsigned ifindex) {
    bpf_tc_hook hook = ingress_hook(ifindex);
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = kClsactHandle, .priority = kClsactPriority);
    if (bpf_tc_query(&hook, &q) < 0) return std::nullopt;
    return q.prog_id;
}

// Number of tc filters (of any kind and owner) on ifindex's clsact qdisc, both directions,
// from an rtnetlink dump; -1 when it cannot be known.
int clsact_filter_count(unsigned ifindex) {
    Fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (sock.fd < 0) return -1;
    int total = 0;
    for (uint32_t parent :
         {TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)}) {
        struct {
            nlmsghdr nh;
            tcmsg tc;
        } req{};
        req.nh.nlmsg_len = sizeof(req);
        req.nh.nlmsg_type = RTM_GETTFILTER;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.nh.nlmsg_seq = parent;
        req.tc.tcm_family = AF_UNSPEC;
        req.tc.tcm_ifindex = static_cast<int>(ifindex);
        req.tc.tcm_parent = parent;
        if (send(sock.fd, &req, sizeof(req), 0) < 0) return -1;
        for (bool done = false; !done;) {
            alignas(nlmsghdr) char buf[32768];
            ssize_t n = recv(sock.fd, buf, sizeof(buf), 0);
            if (n <= 0) return -1;
            size_t off = 0;
            while (off + sizeof(nlmsghdr) <= size_t(n)) {
                const auto *nh = reinterpret_cast<const nlmsghdr *>(buf + off);
                if (nh->nlmsg_len < sizeof(nlmsghdr) || off + nh->nlmsg_len > size_t(n)) return -1;
                if (nh->nlmsg_type == NLMSG_DONE) {
                    done = true;
                    break;
                }
                if (nh->nlmsg_type == NLMSG_ERROR) return -1;
                if (nh->nlmsg_type == RTM_NEWTFILTER) total++;
                off += NLMSG_ALIGN(nh->nlmsg_len);
            }
        }
    }
    return total;
}

// Removes fabdns's clsact filter from iface (only while it still runs the program pinned for
// it), the clsact qdisc when fabdns created it and no filter at all is left on it, and the
// pins. A gone interface took its qdisc along: then only the pins go.
void remove_clsact(const std::string &pin_path, const std::string &iface) {
    const std::string pin = tc_pin(pin_path, iface), marker = qdisc_marker(pin_path, iface);
    const unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex != 0) {
        bpf_tc_hook hook = ingress_hook(ifindex);
        auto cur = clsact_prog_id(ifindex);
        uint32_t ours = pinned_prog_id(pin);
        if (cur && *cur == ours) {
            LIBBPF_OPTS(bpf_tc_opts, o, .handle = kClsactHandle, .priority = kClsactPriority);
            int err = bpf_tc_detach(&hook, &o);
            if (err && err != -ENOENT) fail_errno("detach the clsact filter from " + iface, err);
        } else if (cur) {
            log::warn("the tc filter at " + clsact_place() + " on " + iface + " runs prog id " +
                      std::to_string(*cur) + ", not fabdns's; left in place");
        }
        if (exists(marker) && clsact_filter_count(ifindex) == 0) {
            hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
            int err = bpf_tc_hook_destroy(&hook);
            if (err && err != -ENOENT && err != -EINVAL)
                log::warn("cannot remove the clsact qdisc from " + iface + ": " + errstr(err));
        }
    }
    rmdir(marker.c_str());
    unlink(pin.c_str());
}

std::string prog_name(uint32_t id) {
    Fd fd(bpf_prog_get_fd_by_id(id));
    if (fd.fd < 0) return "?";
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) < 0) return "?";
    return info.name;
}

}  // namespace

const char *to_string(Hook hook) {
    switch (hook) {
        case Hook::XdpLink:
            return "xdp link";
        case Hook::TcxLink:
            return "tcx link";
        case Hook::Clsact:
            return "clsact";
    }
    return "?";
}

std::unique_ptr<maps::DatapathMaps> open_pinned_maps(const std::string &pin_path) {
    constexpr size_t n = std::size(kMapNames);
    int fds[n];
    for (size_t i = 0; i < n; i++) {
        std::string path = pin_path + "/" + kMapNames[i];
        fds[i] = bpf_obj_get(path.c_str());
        if (fds[i] < 0) {
            int err = errno;
            for (size_t j = 0; j < i; j++) close(fds[j]);
            if (err == ENOENT)
                throw Error("no fabdns datapath pinned at " + pin_path + " (missing " + path + ")");
            fail_errno("cannot open " + path, err);
        }
    }
    static_assert(n == 6, "three answer maps, then listen, config and stats");
    return std::make_unique<FdMaps>(fds, map_capacity(fds[0]), fds[3], fds[4], fds[5]);
}

std::vector<Attachment> list_attachments(const std::string &pin_path) {
    std::vector<Attachment> out;
    DIR *dir = opendir(pin_path.c_str());
    if (!dir) return out;
    while (dirent *e = readdir(dir)) {
        std::string name = e->d_name;
        if (name.rfind(kTcPrefix, 0) == 0) {
            Attachment a;
            a.iface = name.substr(std::strlen(kTcPrefix));
            a.mode = Mode::Tc;
            a.hook = Hook::Clsact;
            a.pinned = true;
            uint32_t ours = pinned_prog_id(pin_path + "/" + name);
            unsigned ifindex = if_nametoindex(a.iface.c_str());
            auto cur = ifindex ? clsact_prog_id(ifindex) : std::nullopt;
            a.prog_id = cur && *cur == ours ? ours : 0;
            out.push_back(a);
            continue;
        }
        if (name.rfind(kLinkPrefix, 0) != 0) continue;
        Attachment a;
        a.iface = name.substr(std::strlen(kLinkPrefix));
        a.pinned = true;
        Fd fd(bpf_obj_get((pin_path + "/" + name).c_str()));
        if (fd.fd < 0) continue;
        auto info = link_info(fd.fd);
        if (!info) continue;
        a.prog_id = info->prog_id;
        if (info->type == kLinkTypeTcx) {
            a.mode = Mode::Tc;
            a.hook = Hook::TcxLink;
        } else {
            a.mode = xdp_mode_of(info->ifindex).value_or(Mode::Xdp);
        }
        out.push_back(a);
    }
    closedir(dir);
    return out;
}

void detach(const std::string &pin_path, const std::string &iface) {
    if (exists(tc_pin(pin_path, iface))) {
        remove_clsact(pin_path, iface);
        return;
    }
    std::string path = link_pin(pin_path, iface);
    Fd fd(bpf_obj_get(path.c_str()));
    if (fd.fd < 0) {
        if (errno == ENOENT) throw Error("fabdns is not attached to " + iface);
        fail_errno("cannot open " + path, errno);
    }
    if (bpf_link_detach(fd.fd) < 0 && errno != ENOLINK) fail_errno("detach " + iface, errno);
    unlink(path.c_str());
}

void remove_all(const std::string &pin_path) {
    for (const auto &a : list_attachments(pin_path)) detach(pin_path, a.iface);
    for (const char *name : kMapNames) unlink((pin_path + "/" + name).c_str());
    // Leftovers of an attach interrupted half-way.
    if (DIR *dir = opendir(pin_path.c_str())) {
        while (dirent *e = readdir(dir)) {
            std::string name = e->d_name;
            if (name.rfind(kQdiscPrefix, 0) == 0) rmdir((pin_path + "/" + name).c_str());
            if (name.rfind(kTcNewPrefix, 0) == 0) unlink((pin_path + "/" + name).c_str());
        }
        closedir(dir);
    }
    rmdir(pin_path.c_str());
}

struct Datapath::Impl {
    fabdns_bpf *skel = nullptr;
    std::string pin_path;
    TcHook tc_hook = TcHook::Auto;
    std::unique_ptr<FdMaps> maps;
    void attach_clsact(const std::string &iface, unsigned ifindex, int prog);
    ~Impl() { fabdns_bpf__destroy(skel); }
};

Datapath::Datapath(const Options &options) : impl_(std::make_unique<Impl>()) {
    libbpf_set_print(libbpf_log);
    impl_->pin_path = options.pin_path;
    impl_->tc_hook = options.tc_hook;
    ensure_dir(options.pin_path);
    drop_incompatible_pins(options.pin_path, options.capacity);

    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = options.pin_path.c_str());
    impl_->skel = fabdns_bpf__open_opts(&open_opts);
    if (!impl_->skel) fail_errno("cannot open the BPF object", errno);
    auto *m = &impl_->skel->maps;
    bpf_map__set_max_entries(m->answers, options.capacity);
    bpf_map__set_max_entries(m->answers_standby, options.capacity);
    int err = fabdns_bpf__load(impl_->skel);
    if (err) fail_errno("cannot load the BPF object (see libbpf messages above)", err);

    const int answers[3] = {dup(bpf_map__fd(m->answers)), dup(bpf_map__fd(m->answers_standby)),
                            dup(bpf_map__fd(m->answers_active))};
    impl_->maps = std::make_unique<FdMaps>(answers, options.capacity, dup(bpf_map__fd(m->listen)),
                                           dup(bpf_map__fd(m->config)), dup(bpf_map__fd(m->stats)));
    impl_->maps->table().mirror();
}

Datapath::~Datapath() = default;

maps::DatapathMaps &Datapath::maps() {
    return *impl_->maps;
}
const std::string &Datapath::pin_path() const {
    return impl_->pin_path;
}

int Datapath::prog_fd(Mode mode) const {
    return bpf_program__fd(mode == Mode::Tc ? impl_->skel->progs.fabdns_tc
                                            : impl_->skel->progs.fabdns_xdp);
}

uint32_t Datapath::prog_id(Mode mode) const {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd(mode), &info, &len) < 0) return 0;
    return info.id;
}

uint32_t Datapath::verified_insns(Mode mode) const {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd(mode), &info, &len) < 0) return 0;
    return info.verified_insns;
}

void Datapath::attach(const std::string &iface, Mode mode) {
    unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex == 0) throw Error("interface " + iface + " not found");
    std::string pin = link_pin(impl_->pin_path, iface);
    int prog = prog_fd(mode);
    const TcHook tc_hook = impl_->tc_hook;
    const bool clsact_pinned = exists(tc_pin(impl_->pin_path, iface));
    if (mode == Mode::Tc && tc_hook != TcHook::Tcx && clsact_pinned) {
        impl_->attach_clsact(iface, ifindex, prog);  // replaces the program in place
        return;
    }

    // Already attached by fabdns: swap the program in place when the kind of link fits.
    Fd old(bpf_obj_get(pin.c_str()));
    if (old.fd >= 0) {
        auto info = link_info(old.fd);
        bool same =
            info &&
            ((mode == Mode::Tc && tc_hook != TcHook::Clsact && info->type == kLinkTypeTcx) ||
             (mode != Mode::Tc && info->type == kLinkTypeXdp && xdp_mode_of(ifindex) == mode &&
              info->ifindex == ifindex));
        if (same && bpf_link_update(old.fd, prog, nullptr) == 0) {
            log::info("datapath on " + iface + " (" + to_string(mode) + ") updated in place");
            return;
        }
        bpf_link_detach(old.fd);
        unlink(pin.c_str());
    }
    if (clsact_pinned) remove_clsact(impl_->pin_path, iface);  // the mode or hook changes

    int fd;
    if (mode == Mode::Tc) {
        if (tc_hook == TcHook::Clsact) {
            impl_->attach_clsact(iface, ifindex, prog);
            return;
        }
        LIBBPF_OPTS(bpf_link_create_opts, lo);
        fd = bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(kTcxIngress), &lo);
        if (fd < 0) {
            int e = errno;
            // Kernels before 6.6 do not know the tcx attach type: EINVAL.
            if (e == EINVAL && tc_hook == TcHook::Auto) {
                log::info(
                    "tcx links are not supported by this kernel (Linux 6.6 or later): "
                    "attaching tc to " +
                    iface + " through clsact");
                impl_->attach_clsact(iface, ifindex, prog);
                return;
            }
            if (e == EINVAL)
                throw Error("attach tc to " + iface + ": " + errstr(e) +
                            " (tcx links need Linux 6.6 or later)");
            fail_errno("attach tc to " + iface, e);
        }
    } else {
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(ifindex, 0, &q) == 0 && q.prog_id != 0)
            throw Error("interface " + iface + " already has an XDP program (id " +
                        std::to_string(q.prog_id) + ", " + prog_name(q.prog_id) +
                        ") not attached from " + impl_->pin_path + "; refusing to replace it");
        LIBBPF_OPTS(bpf_link_create_opts, lo,
                    .flags = mode == Mode::XdpGeneric ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
        fd = bpf_link_create(prog, ifindex, BPF_XDP, &lo);
        if (fd < 0) {
            int e = errno;
            if (e == EOPNOTSUPP && mode == Mode::Xdp)
                throw Error("attach xdp to " + iface +
                            ": native XDP is not supported by this driver; use xdp-generic or tc");
            if (e == EBUSY || e == EEXIST)
                throw Error("attach " + std::string(to_string(mode)) + " to " + iface +
                            ": another XDP program is attached; refusing to replace it");
            fail_errno("attach " + std::string(to_string(mode)) + " to " + iface, e);
        }
    }
    Fd link(fd);
    if (bpf_obj_pin(link.fd, pin.c_str()) < 0) {
        int e = errno;
        bpf_link_detach(link.fd);
        fail_errno("cannot pin link " + pin, e);
    }
    log::info("datapath attached to " + iface + " (" + to_string(mode) + ")");
}

// Puts prog into fabdns's filter on iface's clsact ingress (creating the qdisc if missing),
// replacing the program of an earlier fabdns filter there in place: cls_bpf swaps it under RCU,
// so no packet goes unhandled. Refuses a filter at that handle that fabdns did not pin.
void Datapath::Impl::attach_clsact(const std::string &iface, unsigned ifindex, int prog) {
    bpf_tc_hook hook = ingress_hook(ifindex);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) fail_errno("create a clsact qdisc on " + iface, err);
    const bool created = err == 0;
    const std::string pin = tc_pin(pin_path, iface);
    auto cur = clsact_prog_id(ifindex);
    if (cur && *cur != pinned_prog_id(pin))
        throw Error("interface " + iface + " already has a tc filter (prog id " +
                    std::to_string(*cur) + ", " + prog_name(*cur) + ") at " + clsact_place() +
                    " not attached from " + pin_path + "; refusing to replace it");
    LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = prog, .flags = BPF_TC_F_REPLACE, .handle = kClsactHandle,
                .priority = kClsactPriority);
    err = bpf_tc_attach(&hook, &o);
    if (err) {
        if (created) {
            hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
        }
        // cls_bpf cannot join a priority held by another kind of classifier.
        if (err == -EINVAL)
            throw Error("attach tc (clsact) to " + iface + ": " + errstr(err) + " (is priority " +
                        std::to_string(kClsactPriority) +
                        " of its clsact ingress held by a filter of another kind?)");
        fail_errno("attach tc (clsact) to " + iface, err);
    }
    if (created && mkdir(qdisc_marker(pin_path, iface).c_str(), 0700) < 0 && errno != EEXIST)
        log::warn("cannot record that fabdns created the clsact qdisc on " + iface);
    // The new pin is renamed over the old one, so a crash leaves one of them, never none.
    const std::string tmp = pin_path + "/" + kTcNewPrefix + iface;
    unlink(tmp.c_str());
    if (bpf_obj_pin(prog, tmp.c_str()) < 0 || rename(tmp.c_str(), pin.c_str()) < 0) {
        int e = errno;
        unlink(tmp.c_str());
        if (!cur) {
            LIBBPF_OPTS(bpf_tc_opts, d, .handle = kClsactHandle, .priority = kClsactPriority);
            bpf_tc_detach(&hook, &d);
        }
        fail_errno("cannot pin the tc program at " + pin, e);
    }
    log::info("datapath " + std::string(cur ? "on " + iface + " (tc, clsact) updated in place"
                                            : "attached to " + iface + " (tc, clsact)"));
}

void Datapath::detach(const std::string &iface) {
    loader::detach(impl_->pin_path, iface);
}

TestRun test_run(int prog_fd, const std::vector<uint8_t> &frame, uint32_t repeat) {
    TestRun r;
    r.out.resize(4096);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()),
                .repeat = static_cast<int>(repeat));
    if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) fail_errno("BPF_PROG_TEST_RUN", errno);
    r.out.resize(opts.data_size_out);
    r.verdict = opts.retval;
    r.duration_ns = opts.duration;
    return r;
}

}  // namespace fabdns::loader
