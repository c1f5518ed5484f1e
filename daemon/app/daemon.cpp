// fabdnsd's wiring. Threads: the source's own (updates -> engine -> compiler), the resolver's
// workers, the metrics server, and this main thread (signals, liveness stamp every second,
// attach retries).
#include "app/daemon.hpp"

#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "app/options.hpp"
#include "common/log.hpp"
#include "compiler/compiler.hpp"
#include "ctl/explain.hpp"
#include "ctl/format.hpp"
#include "engine/engine.hpp"
#include "metrics/registry.hpp"
#include "metrics/server.hpp"
#include "resolver/resolver.hpp"
#include "source/source.hpp"

namespace fabdns {

namespace {

// The host's own addresses of one family (what a socket bound to 0.0.0.0 or :: receives).
std::vector<IpAddr> local_addresses(IpAddr::Family family) {
    std::vector<IpAddr> out;
    ifaddrs *list = nullptr;
    if (getifaddrs(&list) < 0) return out;
    for (ifaddrs *i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        IpAddr ip;
        if (family == IpAddr::Family::V4 && i->ifa_addr->sa_family == AF_INET) {
            ip.family = IpAddr::Family::V4;
            std::memcpy(ip.bytes.data(), &reinterpret_cast<sockaddr_in *>(i->ifa_addr)->sin_addr,
                        4);
        } else if (family == IpAddr::Family::V6 && i->ifa_addr->sa_family == AF_INET6) {
            ip.family = IpAddr::Family::V6;
            std::memcpy(ip.bytes.data(), &reinterpret_cast<sockaddr_in6 *>(i->ifa_addr)->sin6_addr,
                        16);
        } else {
            continue;
        }
        out.push_back(ip);
    }
    freeifaddrs(list);
    return out;
}

// The kernel matches exact destinations only: a wildcard would also match queries routed
// through this host to other servers, which the resolver's wildcard socket never sees. So
// 0.0.0.0:P and [::]:P become every local address of the family with port P.
std::vector<maps::ListenEntry> listen_entries(const std::vector<SocketAddr> &addrs) {
    std::vector<maps::ListenEntry> out;
    auto add = [&](const IpAddr &ip, uint16_t port) {
        maps::ListenEntry e;
        e.addr = ip.mapped16();
        e.port = port;
        for (const auto &o : out)
            if (o.addr == e.addr && o.port == e.port) return;
        out.push_back(e);
    };
    for (const auto &a : addrs) {
        if (!a.ip.is_unspecified()) {
            add(a.ip, a.port);
            continue;
        }
        for (const auto &ip : local_addresses(a.ip.family)) add(ip, a.port);
    }
    return out;
}

bool has_wildcard(const std::vector<SocketAddr> &addrs) {
    for (const auto &a : addrs)
        if (a.ip.is_unspecified()) return true;
    return false;
}

// Seconds between attempts to attach where attaching failed (interfaces appear later).
constexpr unsigned kAttachRetrySeconds = 5;
// How often an over-capacity map is ranked again by the queries seen (Daemon::rerank).
constexpr unsigned kRerankSeconds = 30;

// One configured attachment and how it stands (read by the metrics thread).
struct AttachState {
    Config::Datapath::Attach want;
    bool attached = false;
    std::string error;      // why it is not attached; logged when it changes
    unsigned failures = 0;  // failed attempts since the last success
};

class Daemon {
  public:
    Daemon(std::string path, Config cfg)
        : path_(std::move(path)), cfg_(std::move(cfg)), engine_(engine_options(cfg_)) {}

    int run();

  private:
    void setup_datapath();
    bool apply_datapath_config(const Config &c);
    bool try_attach(AttachState &s);
    void retry_attach();
    void on_update(ServiceSet services);
    void refresh_stamp();
    void rerank();
    void reload();
    void register_metrics();
    metrics::PageReply explain_page(const std::map<std::string, std::string> &args);
    std::string source_origin() const;
    void shutdown();

    std::string path_;
    Config cfg_;
    Engine engine_;
    std::unique_ptr<loader::Datapath> datapath_;
    std::unique_ptr<MapCompiler> compiler_;
    std::mutex sync_mu_;  // engine data + compiler
    std::unique_ptr<Source> source_;
    std::unique_ptr<Resolver> resolver_;
    metrics::Registry registry_;
    std::vector<metrics::Registration> registrations_;
    std::unique_ptr<metrics::Server> metrics_server_;
    std::atomic<bool> synced_{false};
    // The stamp is refreshed only once the maps hold this daemon's data: before that they hold
    // a previous daemon's answers, which user space may contradict (SPEC §4).
    std::atomic<bool> data_applied_{false};
    std::mutex kconfig_mu_;  // read-modify-write of the kernel config (stamp, stale_after,
                             // listen_gen by set_listen)
    std::atomic<uint64_t> syncs_{0};
    std::atomic<size_t> services_{0};  // in the last data set
    std::string datapath_error_;       // why datapath_ is null (set before threads start)
    std::vector<std::string> attached_ifaces_;
    std::mutex attach_mu_;
    std::vector<AttachState> attach_state_;
};

// The accelerator never takes DNS down (SPEC §4): a datapath that does not load or attach leaves
// the names to user space, unless datapath.required makes that a start-up failure.
void Daemon::setup_datapath() {
    if (!cfg_.datapath.enabled) return;
    try {
        datapath_ = std::make_unique<loader::Datapath>(
            loader::Options{cfg_.datapath.pin_path, cfg_.datapath.capacity});
    } catch (const std::exception &e) {
        if (cfg_.datapath.required)
            throw std::runtime_error(std::string("datapath: ") + e.what() +
                                     " (datapath.required: true)");
        datapath_error_ = std::string("the datapath did not load: ") + e.what();
        log::error(std::string("datapath: cannot load: ") + e.what() +
                   "; serving in user space only (datapath.required: true would exit instead)");
        std::lock_guard lock(attach_mu_);
        for (const auto &a : cfg_.datapath.attach) attach_state_.push_back({a, false, "", 0});
        return;
    }
    compiler_ = std::make_unique<MapCompiler>(datapath_->maps().answers());
    // Attachments pinned by an earlier daemon count as ours: one that the config no longer
    // lists is detached below rather than left answering.
    for (const auto &a : loader::list_attachments(cfg_.datapath.pin_path))
        attached_ifaces_.push_back(a.iface);
    log::info("datapath loaded, maps pinned under " + cfg_.datapath.pin_path);
    if (!apply_datapath_config(cfg_) && cfg_.datapath.required)
        throw std::runtime_error("datapath: not attached everywhere (datapath.required: true)");
}

// Logs only when the outcome changes, so a retry every few seconds does not flood the log.
bool Daemon::try_attach(AttachState &s) {
    const std::string where = s.want.iface + " (" + to_string(s.want.mode) + ")";
    try {
        datapath_->attach(s.want.iface, s.want.mode);
    } catch (const std::exception &e) {
        std::string why = e.what();
        if (why != s.error) {
            log::warn("datapath: cannot attach to " + where + ": " + why +
                      "; DNS there is served in user space, retrying every " +
                      std::to_string(kAttachRetrySeconds) + "s");
        } else {
            log::debug("datapath: attach to " + where + " still failing: " + why);
        }
        std::lock_guard lock(attach_mu_);
        s.attached = false;
        s.error = std::move(why);
        s.failures++;
        return false;
    }
    if (s.failures > 0)
        log::info("datapath: attached to " + where + " after " + std::to_string(s.failures) +
                  " failed attempt" + (s.failures == 1 ? "" : "s"));
    std::lock_guard lock(attach_mu_);
    s.attached = true;
    s.error.clear();
    s.failures = 0;
    return true;
}

void Daemon::retry_attach() {
    if (!datapath_) return;
    // attach_state_ changes size only on this thread (reload), so no lock is needed to walk it.
    for (auto &s : attach_state_) {
        if (s.attached) {
            // A deleted interface takes its attachment with it: note it, attach when it is back.
            if (if_nametoindex(s.want.iface.c_str()) != 0) continue;
            std::string why = "interface " + s.want.iface + " not found";
            log::warn("datapath: " + s.want.iface + " is gone; retrying every " +
                      std::to_string(kAttachRetrySeconds) + "s");
            std::lock_guard lock(attach_mu_);
            s.attached = false;
            s.error = why;
            s.failures = 1;
            continue;
        }
        if (try_attach(s) && std::find(attached_ifaces_.begin(), attached_ifaces_.end(),
                                       s.want.iface) == attached_ifaces_.end())
            attached_ifaces_.push_back(s.want.iface);
    }
}

// Returns whether every configured interface is attached.
bool Daemon::apply_datapath_config(const Config &c) {
    auto &m = datapath_->maps();
    {
        std::lock_guard lock(kconfig_mu_);
        m.set_listen(listen_entries(c.datapath.answer_for));
        fabdns_config kc = m.config();
        kc.stale_after_ns = uint64_t(c.datapath.stale_after.count()) * 1000000ull;
        // Until this daemon's first data set the stamp stays as the previous daemon left it.
        if (data_applied_) kc.stamp_ns = maps::monotonic_ns();
        m.set_config(kc);
    }
    // Attach what is configured; detach what no longer is.
    for (const auto &old : attached_ifaces_) {
        bool keep = false;
        for (const auto &a : c.datapath.attach) keep |= a.iface == old;
        if (!keep) {
            try {
                datapath_->detach(old);
                log::info("datapath detached from " + old);
            } catch (const std::exception &e) {
                log::warn(e.what());
            }
        }
    }
    attached_ifaces_.clear();
    std::vector<AttachState> states;
    for (const auto &a : c.datapath.attach) {
        AttachState s{a, false, "", 0};
        // A failure seen before for the same attachment is not news: keep it, so it is not
        // logged again on every reload.
        for (const auto &old : attach_state_)
            if (old.want == a && !old.attached) s = old;
        states.push_back(s);
    }
    bool all = true;
    for (auto &s : states) {
        if (try_attach(s))
            attached_ifaces_.push_back(s.want.iface);
        else
            all = false;
    }
    std::lock_guard lock(attach_mu_);
    attach_state_ = std::move(states);
    return all;
}

// Over capacity a source's small update keeps the held names current without ranking the whole
// set (seconds at 100,000 services); the ranking by queries seen is renewed here instead, when
// user space answered queries since (an idle node ranks nothing), unless a sync is running.
void Daemon::rerank() {
    if (!compiler_ || !compiler_->ranking_outdated()) return;
    std::unique_lock lock(sync_mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    const auto st = compiler_->resync(engine_);
    log::info("ranked again: " + std::to_string(st.entries) + " kernel answers (+" +
              std::to_string(st.added) + " ~" + std::to_string(st.updated) + " -" +
              std::to_string(st.removed) + ", " + std::to_string(st.over_capacity) +
              " over capacity) in " + std::to_string(st.compile_ms + st.apply_ms) + " ms");
    malloc_trim(0);
}

void Daemon::refresh_stamp() {
    if (!datapath_ || !data_applied_) return;
    try {
        std::lock_guard lock(kconfig_mu_);
        auto &m = datapath_->maps();
        fabdns_config kc = m.config();
        kc.stamp_ns = maps::monotonic_ns();
        m.set_config(kc);
    } catch (const std::exception &e) {
        log::warn(std::string("liveness stamp: ") + e.what());
    }
}

void Daemon::on_update(ServiceSet services) {
    std::lock_guard lock(sync_mu_);
    size_t n = services->size();
    services_ = n;
    const auto t0 = std::chrono::steady_clock::now();
    // The replaced data is freed once the change is in the kernel.
    std::shared_ptr<const void> replaced = engine_.set_service_set(std::move(services));
    const std::string engine_ms = std::to_string(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (compiler_) {
        auto st = compiler_->sync(engine_);
        log::info("sync: " + std::to_string(n) + " services, " + std::to_string(st.entries) +
                  " kernel answers (+" + std::to_string(st.added) + " ~" +
                  std::to_string(st.updated) + " -" + std::to_string(st.removed) + ", " +
                  std::to_string(st.over_capacity) + " over capacity) in " +
                  std::to_string(st.compile_ms + st.apply_ms) + " ms, engine " + engine_ms + " ms");
    } else {
        log::info("sync: " + std::to_string(n) + " services, engine " + engine_ms + " ms");
    }
    replaced.reset();
    // A sync's transient memory (the previous index, the compiler's desired set) is freed by
    // now; hand it back to the system so RSS follows what is held, not the last peak.
    malloc_trim(0);
    if (compiler_ && !data_applied_) {
        // The maps now hold what user space serves: from here on the stamp says so.
        data_applied_ = true;
        refresh_stamp();
        log::info("first data set applied: the kernel answers for this daemon");
    }
    syncs_++;
    synced_ = true;
}

// The source as /explain and /readyz name it ("file /etc/fabdns/services.yaml").
std::string Daemon::source_origin() const {
    std::string origin = to_string(cfg_.source.kind);
    switch (cfg_.source.kind) {
        case SourceKind::File:
            origin += " " + cfg_.source.file.path;
            break;
        case SourceKind::Hub:
            origin += " " + cfg_.source.hub.url;
            break;
        case SourceKind::Kubernetes:
            origin += cfg_.source.kubernetes.server.empty() ? " (in-cluster or kubeconfig)"
                                                            : " " + cfg_.source.kubernetes.server;
            break;
    }
    return origin;
}

// GET /explain?name=N&type=T: this daemon's own answer for fabdnsctl explain, from its live data
// and maps (daemon/ctl/explain.hpp).
metrics::PageReply Daemon::explain_page(const std::map<std::string, std::string> &args) {
    auto arg = [&](const char *k) {
        auto it = args.find(k);
        return it == args.end() ? std::string() : it->second;
    };
    const std::string name = arg("name"), type = arg("type").empty() ? "A" : arg("type");
    const uint16_t qtype = ctl::parse_type(type);
    if (name.empty() || qtype == 0)
        return {400, "explain needs ?name=NAME and an optional &type=TYPE (A, AAAA, SOA, ...)\n",
                "text/plain; charset=utf-8"};
    const std::string origin = source_origin();
    const ctl::ExplainSource src{
        .engine = engine_,
        .node = cfg_.node,
        .services = synced_ ? std::to_string(services_.load()) + " from " + origin
                            : "none yet: waiting for the first data set from " + origin,
        .kernel = datapath_ ? &datapath_->maps().answers() : nullptr,
        .kernel_missing = datapath_                ? ""
                          : !cfg_.datapath.enabled ? "datapath.enabled is false"
                                                   : datapath_error_,
        .explained_by = "fabdnsd (pid " + std::to_string(getpid()) + "), from its live data",
    };
    return {200, ctl::explain_report(src, name, qtype).dump(2) + "\n", "application/json"};
}

void Daemon::register_metrics() {
    registrations_.push_back(registry_.add([this](metrics::Writer &w) {
        if (!resolver_) return;
        const auto &c = resolver_->counters();
        auto &q = w.counter("fabdns_queries_total", "DNS replies sent, by path and rcode.");
        for (auto t : {dns::Transport::Udp, dns::Transport::Tcp}) {
            const char *proto = t == dns::Transport::Udp ? "udp" : "tcp";
            for (size_t r = 0; r < ResolverCounters::kRcodeSlots; r++) {
                const auto code = static_cast<Rcode>(r);
                uint64_t v = c.reply_count(t, code);
                // The last slot also counts every higher code.
                const std::string name =
                    r + 1 < ResolverCounters::kRcodeSlots ? rcode_name(code) : "OTHER";
                if (v) q.add({{"path", "user"}, {"proto", proto}, {"rcode", name}}, v);
            }
        }
        if (datapath_) {
            auto s = datapath_->maps().stats();
            q.add({{"path", "kernel"}, {"proto", "udp"}, {"rcode", "NOERROR"}},
                  s[FABDNS_STAT_ANSWERED]);
        }
        w.counter("fabdns_forwarded_total", "Queries forwarded to an upstream.")
            .add(c.forwarded.load());
        w.counter("fabdns_upstream_failures_total", "Forwarded queries no upstream answered.")
            .add(c.upstream_failures.load());
        w.counter("fabdns_dropped_total", "Packets dropped as garbage or responses.")
            .add(c.dropped.load());
        w.counter("fabdns_truncated_total", "UDP replies sent truncated (TC=1).")
            .add(c.truncated.load());
        w.counter("fabdns_forward_rejected_total",
                  "Queries answered SERVFAIL at once: the forwarder's queue was full.")
            .add(c.forward_rejected.load());
        w.counter("fabdns_reflection_dropped_total",
                  "UDP queries from a reflection port (0, 7, 13, 17, 19, 37), never answered.")
            .add(c.reflection_dropped.load());
        auto &tcp = w.counter("fabdns_tcp_closed_total",
                              "TCP connections closed by the server, by reason.");
        tcp.add({{"reason", "refused"}}, c.tcp_refused.load());
        tcp.add({{"reason", "evicted"}}, c.tcp_evicted.load());
        tcp.add({{"reason", "timed_out"}}, c.tcp_timed_out.load());
        w.counter("fabdns_tcp_accept_errors_total",
                  "accept() failures for lack of descriptors or memory (the listener backs off).")
            .add(c.tcp_accept_errors.load());
    }));
    registrations_.push_back(registry_.add([this](metrics::Writer &w) {
        std::lock_guard lock(attach_mu_);
        if (attach_state_.empty()) return;
        auto &g = w.gauge("fabdns_datapath_attached",
                          "1 when the datapath is attached to the interface in this mode; 0: "
                          "queries there are served in user space.");
        for (const auto &s : attach_state_)
            g.add({{"iface", s.want.iface}, {"mode", to_string(s.want.mode)}}, s.attached ? 1 : 0);
    }));
    registrations_.push_back(registry_.add([this](metrics::Writer &w) {
        if (!datapath_) return;
        auto s = datapath_->maps().stats();
        w.counter("fabdns_kernel_answers_total", "Queries answered in the kernel.")
            .add(s[FABDNS_STAT_ANSWERED]);
        auto &p = w.counter("fabdns_kernel_pass_total",
                            "Packets the kernel passed to the stack, by reason.");
        for (uint32_t i = 1; i < FABDNS_STAT_MAX; i++)
            p.add({{"reason", maps::kStatNames[i]}}, s[i]);
        std::lock_guard lock(sync_mu_);
        if (compiler_) {
            const auto &st = compiler_->last();
            w.gauge("fabdns_map_entries", "Entries in the kernel answer map.").add(st.entries);
            w.gauge("fabdns_map_capacity", "Capacity of the kernel answer map.")
                .add(cfg_.datapath.capacity);
            w.gauge("fabdns_map_over_capacity",
                    "Answers left to user space because the map is full.")
                .add(st.over_capacity);
            w.gauge("fabdns_map_sync_seconds", "Duration of the last compile and apply.")
                .add((st.compile_ms + st.apply_ms) / 1000.0);
        }
    }));
    registrations_.push_back(registry_.add([this](metrics::Writer &w) {
        if (!source_) return;
        auto st = source_->status();
        std::initializer_list<metrics::Label> l = {{"source", st.kind}};
        w.gauge("fabdns_sync_healthy", "1 when the latest sync attempt succeeded.")
            .add(l, st.healthy ? 1 : 0);
        w.gauge("fabdns_sync_last_success_timestamp_seconds", "Unix time of the last good sync.")
            .add(l, st.last_sync_unix);
        w.gauge("fabdns_sync_consecutive_failures", "Sync failures since the last success.")
            .add(l, st.consecutive_failures);
        w.counter("fabdns_sync_failures_total", "Sync failures.").add(l, st.total_failures);
        w.gauge("fabdns_services", "GlobalServices held.").add(l, st.objects);
        w.gauge("fabdns_services_rejected", "Objects rejected from the last accepted set.")
            .add(l, st.rejected);
        w.counter("fabdns_syncs_total", "Data sets applied.").add(syncs_.load());
    }));
}

void Daemon::reload() {
    log::info("SIGHUP: reloading " + path_);
    Config next;
    try {
        next = load_config(path_);
    } catch (const ConfigError &e) {
        log::error(std::string("reload: config: ") + e.what() + "; keeping the running config");
        return;
    }
    if (!(next.node == cfg_.node) || !(next.dns == cfg_.dns) || !(next.source == cfg_.source) ||
        !(next.metrics == cfg_.metrics) || next.datapath.pin_path != cfg_.datapath.pin_path ||
        next.datapath.capacity != cfg_.datapath.capacity ||
        next.datapath.enabled != cfg_.datapath.enabled)
        log::warn(
            "reload: changes outside datapath.attach/answer_for/stale_after/"
            "detach_on_exit need a restart; they are not applied");
    if (datapath_) {
        try {
            apply_datapath_config(next);
        } catch (const std::exception &e) {
            log::error(std::string("reload: datapath: ") + e.what());
        }
    } else if (cfg_.datapath.enabled) {
        // Not loaded: only what /metrics reports changes.
        std::lock_guard lock(attach_mu_);
        attach_state_.clear();
        for (const auto &a : next.datapath.attach) attach_state_.push_back({a, false, "", 0});
    }
    cfg_.datapath.attach = next.datapath.attach;
    cfg_.datapath.answer_for = next.datapath.answer_for;
    cfg_.datapath.stale_after = next.datapath.stale_after;
    cfg_.datapath.detach_on_exit = next.datapath.detach_on_exit;
}

void Daemon::shutdown() {
    if (resolver_) resolver_->stop();
    if (source_) source_->stop();
    metrics_server_.reset();
    if (datapath_ && cfg_.datapath.detach_on_exit) {
        datapath_.reset();
        loader::remove_all(cfg_.datapath.pin_path);
        log::info("datapath detached and unpinned (detach_on_exit)");
    } else if (datapath_ && data_applied_) {
        refresh_stamp();
        log::info("datapath left answering from " + cfg_.datapath.pin_path + " (stale after " +
                  std::to_string(cfg_.datapath.stale_after.count() / 1000) + "s without a daemon)");
    } else if (datapath_) {
        log::info("datapath left as it was: this daemon never applied a data set");
    }
}

int Daemon::run() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
    // Blocked before any thread starts, so every thread inherits the mask and only the main
    // thread receives them (sigtimedwait below).
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    const bool had_pins =
        access((cfg_.datapath.pin_path + "/" FABDNS_MAP_ANSWERS).c_str(), F_OK) == 0;
    try {
        setup_datapath();
        register_metrics();
        if (cfg_.metrics.listen)
            metrics_server_ = std::make_unique<metrics::Server>(
                *cfg_.metrics.listen, registry_,
                [this]() -> metrics::Readiness {
                    // Ready once names are answered from the first data set (in user space,
                    // and in the maps when the datapath is loaded); before it, in-zone names
                    // get SERVFAIL. A datapath that is not attached does not make the node
                    // unready: user space serves every name (SPEC §4). Nor does a source that
                    // fails later: the last good set is served.
                    if (!synced_)
                        return {false, "waiting for the first data set from " + source_origin()};
                    return {true, ""};
                },
                std::map<std::string, metrics::Server::Page>{
                    {"/explain", [this](const auto &args) { return explain_page(args); }}});
        ResolverOptions ro;
        ro.listen = cfg_.dns.listen;
        ro.upstream = cfg_.dns.upstream;
        if (compiler_)
            ro.on_query = [this](std::string_view name, uint16_t qtype) {
                compiler_->note_query(name, qtype);
            };
        resolver_ = std::make_unique<Resolver>(engine_, std::move(ro));
        source_ = make_source(cfg_.source);
        source_->start([this](ServiceSet s) { on_update(std::move(s)); });
    } catch (const std::exception &e) {
        log::error(e.what());
        if (resolver_) resolver_->stop();
        if (source_) source_->stop();
        // Pins this failed start created serve nobody: leave the pin path as it was.
        if (datapath_ && !had_pins && loader::list_attachments(cfg_.datapath.pin_path).empty()) {
            datapath_.reset();
            loader::remove_all(cfg_.datapath.pin_path);
        }
        return 1;
    }
    std::string where;
    for (const auto &a : resolver_->addresses()) where += " " + a.to_string();
    log::info("fabdnsd serving on" + where);

    unsigned ticks = 0;
    for (;;) {
        timespec timeout{1, 0};
        int sig = sigtimedwait(&set, nullptr, &timeout);
        refresh_stamp();
        ++ticks;
        if (ticks % kAttachRetrySeconds == 0) retry_attach();
        if (ticks % kRerankSeconds == 0) rerank();
        if (datapath_ && has_wildcard(cfg_.datapath.answer_for) && ticks % 5 == 0) {
            // Addresses come and go (DHCP, pod IPs): follow them.
            try {
                std::lock_guard lock(kconfig_mu_);
                datapath_->maps().set_listen(listen_entries(cfg_.datapath.answer_for));
            } catch (const std::exception &e) {
                log::warn(std::string("listen map: ") + e.what());
            }
        }
        if (sig == SIGHUP) reload();
        if (sig == SIGTERM || sig == SIGINT) {
            log::info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                      ", stopping");
            break;
        }
    }
    shutdown();
    return 0;
}

}  // namespace

int run_daemon(const std::string &config_path, Config config) {
    Daemon d(config_path, std::move(config));
    return d.run();
}

}  // namespace fabdns
