// libbpf-backed loader: skeleton load with pinned-map reuse, link-based attach (XDP links and
// tcx links), pinned links so the datapath outlives the process, and map access by fd.
#include "datapath.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <system_error>

#include "common/log.hpp"
#include "fabdns.skel.h"

namespace fabdns::loader {

namespace {

// tcx attach points (Linux 6.6); older uapi headers do not name them.
constexpr int kTcxIngress = 46;
constexpr const char *kLinkPrefix = "link_";
const char *const kMapNames[] = {FABDNS_MAP_ANSWERS, FABDNS_MAP_LISTEN, FABDNS_MAP_CONFIG,
                                 FABDNS_MAP_STATS};

int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf), fmt, args);
    std::string_view msg(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    std::string line = "libbpf: " + std::string(msg);
    if (level == LIBBPF_WARN)
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

struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd &&o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd &operator=(Fd &&o) noexcept {
        if (this != &o) {
            reset();
            fd = o.fd;
            o.fd = -1;
        }
        return *this;
    }
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) close(fd);
        fd = -1;
    }
};

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

// Answers-map pins from an older build or another capacity cannot be adopted: drop them so
// that fresh maps are created (the daemon refills them).
void drop_incompatible_pins(const std::string &pin_path, uint32_t capacity) {
    std::string path = pin_path + "/" + FABDNS_MAP_ANSWERS;
    Fd fd(bpf_obj_get(path.c_str()));
    if (fd.fd < 0) return;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) < 0) return;
    if (info.max_entries == capacity && info.key_size == sizeof(fabdns_answer_key) &&
        info.value_size == sizeof(fabdns_answer))
        return;
    log::warn("pinned answers map has capacity " + std::to_string(info.max_entries) +
              " and value size " + std::to_string(info.value_size) + "; replacing it");
    for (const char *name : kMapNames) unlink((pin_path + "/" + name).c_str());
}

class FdAnswerTable : public maps::AnswerTable {
  public:
    FdAnswerTable(int fd, uint32_t capacity) : fd_(fd), capacity_(capacity) {}
    std::optional<fabdns_answer> lookup(const fabdns_answer_key &key) const override {
        fabdns_answer v{};
        if (bpf_map_lookup_elem(fd_.fd, &key, &v) < 0) return std::nullopt;
        return v;
    }
    void upsert(const fabdns_answer_key &key, const fabdns_answer &value) override {
        if (bpf_map_update_elem(fd_.fd, &key, &value, BPF_ANY) < 0)
            throw std::system_error(errno, std::generic_category(), "answers map update");
    }
    void erase(const fabdns_answer_key &key) override { bpf_map_delete_elem(fd_.fd, &key); }
    void for_each(const std::function<void(const fabdns_answer_key &, const fabdns_answer &)> &fn)
        const override {
        fabdns_answer_key key{}, next{};
        const void *prev = nullptr;
        fabdns_answer v{};
        while (bpf_map_get_next_key(fd_.fd, prev, &next) == 0) {
            if (bpf_map_lookup_elem(fd_.fd, &next, &v) == 0) fn(next, v);
            key = next;
            prev = &key;
        }
    }
    uint32_t capacity() const override { return capacity_; }

  private:
    Fd fd_;
    uint32_t capacity_;
};

class FdMaps : public maps::DatapathMaps {
  public:
    FdMaps(int answers, uint32_t capacity, int listen, int config, int stats)
        : answers_(answers, capacity), listen_(listen), config_(config), stats_(stats) {}

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

std::string prog_name(uint32_t id) {
    Fd fd(bpf_prog_get_fd_by_id(id));
    if (fd.fd < 0) return "?";
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) < 0) return "?";
    return info.name;
}

}  // namespace

const char *to_string(Mode mode) {
    switch (mode) {
        case Mode::Xdp:
            return "xdp";
        case Mode::XdpGeneric:
            return "xdp-generic";
        case Mode::Tc:
            return "tc";
    }
    return "?";
}

std::optional<Mode> parse_mode(std::string_view text) {
    if (text == "xdp") return Mode::Xdp;
    if (text == "xdp-generic") return Mode::XdpGeneric;
    if (text == "tc") return Mode::Tc;
    return std::nullopt;
}

std::unique_ptr<maps::DatapathMaps> open_pinned_maps(const std::string &pin_path) {
    int fds[4];
    for (int i = 0; i < 4; i++) {
        std::string path = pin_path + "/" + kMapNames[i];
        fds[i] = bpf_obj_get(path.c_str());
        if (fds[i] < 0) {
            int err = errno;
            for (int j = 0; j < i; j++) close(fds[j]);
            if (err == ENOENT)
                throw Error("no fabdns datapath pinned at " + pin_path + " (missing " + path + ")");
            fail_errno("cannot open " + path, err);
        }
    }
    return std::make_unique<FdMaps>(fds[0], map_capacity(fds[0]), fds[1], fds[2], fds[3]);
}

std::vector<Attachment> list_attachments(const std::string &pin_path) {
    std::vector<Attachment> out;
    DIR *dir = opendir(pin_path.c_str());
    if (!dir) return out;
    while (dirent *e = readdir(dir)) {
        std::string name = e->d_name;
        if (name.rfind(kLinkPrefix, 0) != 0) continue;
        Attachment a;
        a.iface = name.substr(std::strlen(kLinkPrefix));
        a.pinned = true;
        Fd fd(bpf_obj_get((pin_path + "/" + name).c_str()));
        if (fd.fd < 0) continue;
        auto info = link_info(fd.fd);
        if (!info) continue;
        a.prog_id = info->prog_id;
        if (info->type == kLinkTypeTcx)
            a.mode = Mode::Tc;
        else
            a.mode = xdp_mode_of(info->ifindex).value_or(Mode::Xdp);
        out.push_back(a);
    }
    closedir(dir);
    return out;
}

void detach(const std::string &pin_path, const std::string &iface) {
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
    rmdir(pin_path.c_str());
}

struct Datapath::Impl {
    fabdns_bpf *skel = nullptr;
    std::string pin_path;
    std::unique_ptr<FdMaps> maps;
    ~Impl() { fabdns_bpf__destroy(skel); }
};

Datapath::Datapath(const Options &options) : impl_(std::make_unique<Impl>()) {
    libbpf_set_print(libbpf_log);
    impl_->pin_path = options.pin_path;
    ensure_dir(options.pin_path);
    drop_incompatible_pins(options.pin_path, options.capacity);

    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = options.pin_path.c_str());
    impl_->skel = fabdns_bpf__open_opts(&open_opts);
    if (!impl_->skel) fail_errno("cannot open the BPF object", errno);
    bpf_map__set_max_entries(impl_->skel->maps.answers, options.capacity);
    int err = fabdns_bpf__load(impl_->skel);
    if (err) fail_errno("cannot load the BPF object (see libbpf messages above)", err);

    auto *m = &impl_->skel->maps;
    impl_->maps = std::make_unique<FdMaps>(dup(bpf_map__fd(m->answers)), options.capacity,
                                           dup(bpf_map__fd(m->listen)), dup(bpf_map__fd(m->config)),
                                           dup(bpf_map__fd(m->stats)));
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

    // Already attached by fabdns: swap the program in place when the kind of link fits.
    Fd old(bpf_obj_get(pin.c_str()));
    if (old.fd >= 0) {
        auto info = link_info(old.fd);
        bool same = info && ((mode == Mode::Tc && info->type == kLinkTypeTcx) ||
                             (mode != Mode::Tc && info->type == kLinkTypeXdp &&
                              xdp_mode_of(ifindex) == mode && info->ifindex == ifindex));
        if (same && bpf_link_update(old.fd, prog, nullptr) == 0) {
            log::info("datapath on " + iface + " (" + to_string(mode) + ") updated in place");
            return;
        }
        bpf_link_detach(old.fd);
        unlink(pin.c_str());
    }

    int fd;
    if (mode == Mode::Tc) {
        LIBBPF_OPTS(bpf_link_create_opts, lo);
        fd = bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(kTcxIngress), &lo);
        if (fd < 0) {
            int e = errno;
            if (e == EINVAL)
                throw Error("attach tc to " + iface + ": " + errstr(e) +
                            " (tc mode needs tcx links, Linux 6.6 or later)");
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
