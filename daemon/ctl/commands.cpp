// fabdnsctl's commands: stats, dump, status, explain, attach and detach over the pinned maps.
#include "ctl/commands.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/options.hpp"
#include "compiler/compiler.hpp"
#include "ctl/explain.hpp"
#include "ctl/format.hpp"
#include "ctl/scrape.hpp"
#include "ctl/services.hpp"
#include "engine/engine.hpp"

namespace fabdns::ctl {

namespace {

using json = nlohmann::ordered_json;

bool pin_dir_exists(const std::string &path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::unique_ptr<maps::DatapathMaps> open_maps(const Context &ctx) {
    try {
        return loader::open_pinned_maps(ctx.pin_path);
    } catch (const loader::Error &e) {
        throw Failure(e.what());
    }
}

// The kernel's view of the daemon's liveness (bpf/lib/datapath.h applies the same rule).
struct Liveness {
    bool stamped = false;
    int64_t age_ns = 0;  // now - stamp; negative if the stamp is ahead of this clock
    uint64_t stale_after_ns = 0;
    bool stale = true;
};

Liveness liveness_of(const fabdns_config &cfg) {
    Liveness l;
    l.stale_after_ns = cfg.stale_after_ns;
    if (cfg.stamp_ns == 0) return l;  // never configured: the kernel passes everything
    l.stamped = true;
    const uint64_t now = maps::monotonic_ns();
    l.age_ns = static_cast<int64_t>(now - cfg.stamp_ns);
    l.stale = fabdns_is_stale(cfg.stamp_ns, cfg.stale_after_ns, now) != 0;
    return l;
}

std::string liveness_text(const Liveness &l) {
    if (!l.stamped) return "never stamped: the kernel passes every query until fabdnsd runs";
    std::string age = l.age_ns < 0 ? "just now" : format_duration_ns(uint64_t(l.age_ns)) + " ago";
    std::string after = l.stale_after_ns ? format_duration_ns(l.stale_after_ns) : "never";
    std::string verdict = l.stale ? "STALE, the kernel passes every query (is fabdnsd running?)"
                                  : "fresh, the kernel answers";
    return "stamp " + age + " (stale after " + after + "): " + verdict;
}

json liveness_json(const Liveness &l) {
    json j;
    j["stamped"] = l.stamped;
    j["age_seconds"] = l.stamped ? json(double(l.age_ns) / 1e9) : json(nullptr);
    j["stale_after_seconds"] = double(l.stale_after_ns) / 1e9;
    j["stale"] = l.stale;
    return j;
}

size_t count_entries(const maps::AnswerTable &t) {
    size_t n = 0;
    t.for_each([&](const fabdns_answer_key &, const fabdns_answer &) { n++; });
    return n;
}

std::string listen_address(const maps::ListenEntry &e) {
    SocketAddr a;
    if (e.is_v4()) {
        a.ip = IpAddr::v4(e.addr[12], e.addr[13], e.addr[14], e.addr[15]);
    } else {
        a.ip.family = IpAddr::Family::V6;
        a.ip.bytes = e.addr;
    }
    a.port = e.port;
    return a.to_string();
}

std::string listen_text(const maps::ListenEntry &e) {
    std::string s = listen_address(e);
    if (e.is_wildcard()) s += e.is_v4() ? " (any IPv4 address)" : " (any IPv6 address)";
    return s;
}

json addresses_json(const maps::KernelAnswer &a) {
    json arr = json::array();
    size_t len = a.qtype == DNS_TYPE_A ? 4 : 16;
    for (const auto &addr : a.addrs) arr.push_back(format_address(addr.data(), len));
    return arr;
}

json sample_value(const Sample &s) {
    double v = s.number();
    if (!std::isfinite(v)) return s.value;
    if (v >= 0 && v < 9007199254740992.0 && v == std::floor(v)) return uint64_t(v);
    return v;
}

// Integers as written; other numbers with six significant digits (a duration of
// 0.00011565200000000001 s reads better as 0.000115652).
std::string display_value(const Sample &s) {
    double v = s.number();
    if (!std::isfinite(v) || s.value.find_first_of(".eE") == std::string::npos) return s.value;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    return buf;
}

// Samples of the daemon's own (user-space) metrics; the kernel's counters are read from the
// maps directly.
bool daemon_metric(const Sample &s) {
    return s.name.rfind("fabdns_", 0) == 0 && s.name.rfind("fabdns_kernel_", 0) != 0;
}

std::vector<maps::KernelAnswer> read_answers(const maps::AnswerTable &t) {
    std::vector<maps::KernelAnswer> out;
    t.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) {
        out.push_back(maps::from_map(k, v));
    });
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.name != b.name ? a.name < b.name : a.qtype < b.qtype;
    });
    return out;
}

}  // namespace

Context make_context(const GlobalOptions &options) {
    Context ctx;
    ctx.config_path = options.config_path;
    if (!options.config_path.empty()) {
        try {
            ctx.config = load_config(options.config_path);
        } catch (const ConfigError &e) {
            throw Failure(std::string("config: ") + e.what(), kExitUsage);
        }
    }
    const Config defaults;
    const Config &cfg = ctx.config ? *ctx.config : defaults;
    ctx.pin_path = !options.pin_path.empty() ? options.pin_path : cfg.datapath.pin_path;
    while (ctx.pin_path.size() > 1 && ctx.pin_path.back() == '/') ctx.pin_path.pop_back();

    if (options.metrics) {
        const std::string &m = *options.metrics;
        if (m.empty()) {
            ctx.metrics_off_reason = "not scraped (--metrics \"\")";
        } else if (m.rfind("http://", 0) == 0) {
            ctx.metrics_url = m;
        } else if (auto addr = SocketAddr::parse(m)) {
            ctx.metrics_url = metrics_url(*addr);
        } else {
            throw Failure("--metrics: '" + m + "' is neither ADDRESS:PORT nor an http:// URL",
                          kExitUsage);
        }
    } else if (cfg.metrics.listen) {
        ctx.metrics_url = metrics_url(*cfg.metrics.listen);
    } else {
        ctx.metrics_off_reason = "metrics.listen is disabled in the config";
    }
    return ctx;
}

int cmd_stats(const Context &ctx, bool json_out, std::ostream &out) {
    auto m = open_maps(ctx);
    const auto counters = m->stats();
    const size_t entries = count_entries(m->answers());
    const uint32_t capacity = m->answers().capacity();
    const Liveness live = liveness_of(m->config());
    uint64_t passed = 0;
    for (uint32_t i = 0; i < FABDNS_STAT_MAX; i++)
        if (i != FABDNS_STAT_ANSWERED) passed += counters[i];

    ScrapeResult daemon;
    if (ctx.metrics_url) daemon = scrape(*ctx.metrics_url);

    if (json_out) {
        json j;
        j["pin_path"] = ctx.pin_path;
        json k;
        k["answered"] = counters[FABDNS_STAT_ANSWERED];
        k["passed"] = passed;
        json c;
        for (uint32_t i = 0; i < FABDNS_STAT_MAX; i++) c[maps::kStatNames[i]] = counters[i];
        k["counters"] = c;
        j["kernel"] = k;
        j["answers"] = {{"entries", entries}, {"capacity", capacity}};
        j["liveness"] = liveness_json(live);
        json d;
        d["url"] = ctx.metrics_url ? json(*ctx.metrics_url) : json(nullptr);
        d["up"] = daemon.ok;
        d["error"] = daemon.ok         ? json(nullptr)
                     : ctx.metrics_url ? json(daemon.error)
                                       : json(ctx.metrics_off_reason);
        json samples = json::array();
        for (const auto &s : daemon.samples) {
            if (!daemon_metric(s)) continue;
            samples.push_back({{"name", s.name}, {"labels", s.labels}, {"value", sample_value(s)}});
        }
        d["metrics"] = samples;
        j["daemon"] = d;
        out << j.dump(2) << '\n';
        return 0;
    }

    out << "datapath " << ctx.pin_path << '\n';
    Table head;
    head.add({"liveness", liveness_text(live)});
    head.add({"answers", std::to_string(entries) + " entries of " + std::to_string(capacity)});
    out << head.render("  ") << '\n';

    out << "kernel counters (sum over CPUs)\n";
    Table k;
    k.right_align(1);
    k.add({"answered", std::to_string(counters[FABDNS_STAT_ANSWERED])});
    k.add({"passed", std::to_string(passed)});
    out << k.render("  ");
    Table reasons;
    reasons.right_align(1);
    for (uint32_t i = 0; i < FABDNS_STAT_MAX; i++)
        if (i != FABDNS_STAT_ANSWERED)
            reasons.add({maps::kStatNames[i], std::to_string(counters[i])});
    out << reasons.render("    ") << '\n';

    if (!ctx.metrics_url) {
        out << "daemon: " << ctx.metrics_off_reason << '\n';
    } else if (!daemon.ok) {
        out << "daemon: down or unreachable at " << *ctx.metrics_url << " (" << daemon.error
            << "); kernel part only\n";
    } else {
        out << "daemon " << *ctx.metrics_url << '\n';
        Table d;
        d.right_align(1);
        for (const auto &s : daemon.samples)
            if (daemon_metric(s)) d.add({s.series(), display_value(s)});
        if (d.empty())
            out << "  (no fabdns metrics in the answer)\n";
        else
            out << d.render("  ");
    }
    return 0;
}

int cmd_dump(const Context &ctx, bool json_out, std::ostream &out) {
    auto m = open_maps(ctx);
    const auto answers = read_answers(m->answers());
    const uint32_t capacity = m->answers().capacity();
    if (json_out) {
        json j;
        j["pin_path"] = ctx.pin_path;
        j["capacity"] = capacity;
        json arr = json::array();
        for (const auto &a : answers)
            arr.push_back({{"name", a.name},
                           {"type", type_name(a.qtype)},
                           {"ttl", a.ttl},
                           {"kind", a.kind == FABDNS_ANSWER_NODATA ? "nodata"
                                    : a.kind == FABDNS_ANSWER_ZONE ? "zone"
                                                                   : "addresses"},
                           {"addresses", addresses_json(a)},
                           {"hits", a.hits}});
        j["entries"] = arr;
        out << j.dump(2) << '\n';
        return 0;
    }
    if (answers.empty()) {
        out << "no answers in the kernel map at " << ctx.pin_path << " (0 entries of " << capacity
            << ")\n";
        return 0;
    }
    Table t({"NAME", "TYPE", "TTL", "ADDRESSES", "HITS"});
    t.right_align(2);
    t.right_align(4);
    for (const auto &a : answers)
        t.add({a.name, type_name(a.qtype), std::to_string(a.ttl), kernel_answer_text(a),
               std::to_string(a.hits)});
    out << t.render();
    out << answers.size() << " entries of " << capacity << '\n';
    return 0;
}

int cmd_status(const Context &ctx, bool json_out, std::ostream &out) {
    std::unique_ptr<maps::DatapathMaps> m;
    std::string why_not;
    try {
        m = loader::open_pinned_maps(ctx.pin_path);
    } catch (const loader::Error &e) {
        why_not = e.what();
    }
    std::vector<loader::Attachment> attachments;
    try {
        attachments = loader::list_attachments(ctx.pin_path);
    } catch (const loader::Error &e) {
        if (why_not.empty()) why_not = e.what();
    }
    std::sort(attachments.begin(), attachments.end(),
              [](const auto &a, const auto &b) { return a.iface < b.iface; });

    size_t entries = 0;
    uint32_t capacity = 0;
    Liveness live;
    std::vector<maps::ListenEntry> listen;
    if (m) {
        entries = count_entries(m->answers());
        capacity = m->answers().capacity();
        live = liveness_of(m->config());
        listen = m->listen();
    }

    if (json_out) {
        json j;
        j["pin_path"] = ctx.pin_path;
        j["pinned"] = m != nullptr;
        j["error"] = m ? json(nullptr) : json(why_not);
        j["answers"] = m ? json({{"entries", entries}, {"capacity", capacity}}) : json(nullptr);
        j["liveness"] = m ? liveness_json(live) : json(nullptr);
        json l = json::array();
        for (const auto &e : listen) {
            l.push_back({{"address", listen_address(e)}, {"wildcard", e.is_wildcard()}});
        }
        j["listen"] = l;
        json a = json::array();
        for (const auto &at : attachments)
            a.push_back({{"iface", at.iface},
                         {"mode", to_string(at.mode)},
                         {"hook", loader::to_string(at.hook)},
                         {"prog_id", at.prog_id},
                         {"pinned", at.pinned}});
        j["attachments"] = a;
        out << j.dump(2) << '\n';
        if (!m) throw Failure(why_not);
        return 0;
    }

    Table t;
    t.add({"pin path:", ctx.pin_path});
    t.add({"maps:", m ? "pinned" : "not pinned"});
    if (m) {
        t.add({"answers:", std::to_string(entries) + " entries of " + std::to_string(capacity)});
        t.add({"liveness:", liveness_text(live)});
        if (listen.empty()) t.add({"listen:", "none (the kernel answers for no address)"});
        for (size_t i = 0; i < listen.size(); i++)
            t.add({i == 0 ? "listen:" : "", listen_text(listen[i])});
    }
    if (attachments.empty()) t.add({"attachments:", "none"});
    out << t.render();
    if (!attachments.empty()) {
        out << "attachments:\n";
        Table a({"IFACE", "MODE", "HOOK", "PROG ID"});
        a.right_align(3);
        for (const auto &at : attachments)
            a.add({at.iface, to_string(at.mode), loader::to_string(at.hook),
                   std::to_string(at.prog_id)});
        out << a.render("  ");
    }
    if (!m) throw Failure(why_not);
    return 0;
}

int cmd_explain(const Context &ctx, const std::string &qname, const std::string &type,
                std::ostream &out) {
    const uint16_t qtype = parse_type(type);
    if (qtype == 0) throw Failure("unknown query type '" + type + "'", kExitUsage);

    // The running daemon explains its own data; fabdnsctl rebuilds it only when it cannot ask.
    std::string why_local = ctx.metrics_off_reason;
    if (ctx.metrics_url) {
        const std::string url = explain_url(*ctx.metrics_url, qname, type_name(qtype));
        const HttpResult r = http_get(url);
        if (r.ok) {
            try {
                out << render_explain(json::parse(r.body));
                return 0;
            } catch (const json::exception &e) {
                why_local = "its report from " + url + " is unreadable: " + e.what();
            }
        } else {
            why_local = "not reachable at " + url + ": " + r.error;
        }
    }
    if (!ctx.config)
        throw Failure(
            "explain needs --config FILE (the node, zones and source to answer from) "
            "when fabdnsd cannot be asked: " +
                why_local,
            kExitUsage);
    const Config &cfg = *ctx.config;
    LoadedServices loaded;
    try {
        loaded = load_services(cfg.source);
    } catch (const std::exception &e) {
        throw Failure(e.what());
    }
    const size_t service_count = loaded.services.size();
    Engine engine(engine_options(cfg));
    engine.set_services(std::move(loaded.services));

    std::unique_ptr<maps::DatapathMaps> m;
    std::string kernel_missing;
    try {
        m = loader::open_pinned_maps(ctx.pin_path);
    } catch (const loader::Error &e) {
        struct stat st {};
        kernel_missing = stat((ctx.pin_path + "/" FABDNS_MAP_ANSWERS).c_str(), &st) != 0
                             ? "datapath not pinned at " + ctx.pin_path
                             : e.what();
    }
    const ExplainSource src{
        .engine = engine,
        .node = cfg.node,
        .services = std::to_string(service_count) + " from " + loaded.origin +
                    (loaded.rejected
                         ? " (" + std::to_string(loaded.rejected) + " rejected; fabdnsd logs why)"
                         : ""),
        .kernel = m ? &m->answers() : nullptr,
        .kernel_missing = kernel_missing,
        .explained_by = "fabdnsctl, from the config's sources (fabdnsd " + why_local + ")",
    };
    out << render_explain(explain_report(src, qname, qtype));
    return 0;
}

int cmd_attach(const Context &ctx, const std::string &iface, const std::string &mode_text,
               std::ostream &out, std::ostream &err) {
    std::string mode_name = mode_text;
    if (mode_name.empty() && ctx.config) {
        for (const auto &a : ctx.config->datapath.attach)
            if (a.iface == iface) mode_name = to_string(a.mode);
    }
    if (mode_name.empty())
        throw Failure("attach " + iface + ": --mode xdp|xdp-generic|tc is required", kExitUsage);
    auto mode = parse_attach_mode(mode_name);
    if (!mode)
        throw Failure("--mode: '" + mode_name + "' is not one of xdp, xdp-generic, tc", kExitUsage);

    // Adopt the pinned maps as they are: loading with another capacity would replace them, and
    // a running fabdnsd would go on filling the old ones while the kernel reads the new.
    uint32_t capacity = ctx.config ? ctx.config->datapath.capacity : FABDNS_ANSWERS_CAPACITY;
    std::unique_ptr<maps::DatapathMaps> pinned;
    try {
        pinned = loader::open_pinned_maps(ctx.pin_path);
    } catch (const loader::Error &) {
    }
    if (pinned) {
        uint32_t have = pinned->answers().capacity();
        if (ctx.config && have != capacity)
            err << "fabdnsctl: note: the pinned answer map holds " << have
                << " entries, the config says " << capacity
                << "; keeping the pinned maps (restart fabdnsd to resize)\n";
        capacity = have;
    }
    try {
        loader::Datapath dp(loader::Options{ctx.pin_path, capacity});
        dp.attach(iface, *mode);
        uint32_t prog_id = 0;
        for (const auto &a : loader::list_attachments(ctx.pin_path))
            if (a.iface == iface) prog_id = a.prog_id;
        out << "attached to " << iface << " (" << to_string(*mode) << ", prog id " << prog_id
            << "), maps at " << ctx.pin_path << '\n';
        const Liveness live = liveness_of(dp.maps().config());
        if (live.stale)
            out << "note: liveness " << liveness_text(live) << '\n';
        else if (dp.maps().listen().empty())
            out << "note: the listen map is empty: the kernel answers for no address\n";
    } catch (const loader::Error &e) {
        throw Failure(e.what());
    }
    return 0;
}

int cmd_detach(const Context &ctx, const std::string &iface, bool all, std::ostream &out) {
    try {
        if (all) {
            if (!pin_dir_exists(ctx.pin_path)) throw Failure("nothing pinned at " + ctx.pin_path);
            auto attached = loader::list_attachments(ctx.pin_path);
            loader::remove_all(ctx.pin_path);
            for (const auto &a : attached) out << "detached from " << a.iface << '\n';
            if (pin_dir_exists(ctx.pin_path))
                out << "removed the fabdns pins; " << ctx.pin_path
                    << " still holds other files and was kept\n";
            else
                out << "removed every fabdns pin and " << ctx.pin_path << '\n';
            return 0;
        }
        loader::detach(ctx.pin_path, iface);
    } catch (const loader::Error &e) {
        throw Failure(e.what());
    }
    out << "detached from " << iface << " (maps stay pinned at " << ctx.pin_path << ")\n";
    return 0;
}

}  // namespace fabdns::ctl
