// KubernetesSource: the list/watch loop on one thread, coalesced delivery on another.
#include "source/kube_source.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "common/log.hpp"
#include "model/document.hpp"
#include "source/health.hpp"
#include "source/http.hpp"
#include "source/kube_auth.hpp"
#include "source/objects.hpp"
#include "source/snapshot.hpp"
#include "source/stopper.hpp"

namespace fabdns {

using namespace source_detail;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char *kResourcePath = "/apis/dns.fabedge.io/v1alpha1/globalservices";

std::string url_encode(const std::string &s) {
    static const char *hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string trim(std::string s) {
    auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!s.empty() && ws(s.back())) s.pop_back();
    size_t i = 0;
    while (i < s.size() && ws(s[i])) ++i;
    return s.substr(i);
}

enum class WatchEnd {
    Closed,     // the server ended the stream (timeoutSeconds) or it broke after working
    Gone,       // 410: the resourceVersion is too old, re-list
    Failed,     // counted as a failure, back off
    Cancelled,  // stop()
};

}  // namespace

KubeOptions KubeOptions::from_config(const Config::Source::Kubernetes &kube) {
    KubeOptions o;
    o.server = kube.server;
    o.kubeconfig = kube.kubeconfig;
    o.allow_token_over_http = kube.allow_token_over_http;
    return o;
}

struct KubernetesSource::State {
    explicit State(KubeOptions o)
        : options(std::move(o)),
          health("kubernetes",
                 "kubernetes " + (options.server.empty()
                                      ? (options.kubeconfig.empty() ? std::string("in-cluster")
                                                                    : options.kubeconfig)
                                      : options.server)) {}

    KubeOptions options;
    Health health;
    HttpClient http;
    Stopper stopper;
    Update on_update;

    std::optional<KubeAccess> access;
    std::string token;
    Clock::time_point token_read{};
    bool token_stale = true;
    std::string resource_version;
    size_t watch_events = 0;  // events seen by the latest watch
    SpanCache decode_cache;   // the list's objects, by their bytes (worker thread only)
    std::atomic<uint64_t> objects_decoded{0};  // decode_cache's count, for other threads

    // Shared with the delivering thread.
    std::mutex mutex;
    std::condition_variable cv;
    // The services are held once: the set delivered last (sorted by key_less, shared with the
    // engine) and the changes since, by namespace/name (nullopt: deleted). After a list
    // `pending` is the whole next set (`replace`).
    ServiceSet delivered = std::make_shared<const ServiceList>();
    std::map<std::string, ServicePtr> pending;  // null: deleted
    bool replace = false;
    std::set<std::string> rejected;  // keys whose latest version was refused
    bool dirty = false;              // changes since the last delivery
    bool stopping = false;
    Clock::time_point last_delivery{};

    // The current version of `key`, or nullptr. Callers hold `mutex`.
    ServicePtr current(const std::string &key) const {
        if (auto it = pending.find(key); it != pending.end()) return it->second;
        if (replace) return nullptr;
        const ServicePtr *held = find_held(*delivered, key);
        return held ? *held : nullptr;
    }

    // The next set: the delivered one with the pending changes. Every service that did not
    // change is the delivered one (the same pointer, also after a re-list when its content is
    // the same), so building it costs a copy of the pointers and the engine skips them
    // unseen. Callers hold `mutex`.
    ServiceList next_set() {
        // The changes in set order. A deletion carries only its key: ns and name from it.
        std::vector<std::pair<ServicePtr, bool>> changes;  // (service, deleted)
        changes.reserve(pending.size());
        for (auto &[key, svc] : pending) {
            if (svc) {
                changes.emplace_back(std::move(svc), false);
            } else {
                auto gone = std::make_shared<GlobalService>();
                const size_t slash = key.find('/');
                gone->ns = key.substr(0, slash);
                gone->name = key.substr(slash + 1);
                changes.emplace_back(std::move(gone), true);
            }
        }
        pending.clear();
        std::sort(changes.begin(), changes.end(),
                  [](const auto &a, const auto &b) { return key_less(*a.first, *b.first); });
        const ServiceList &old = *delivered;
        ServiceList set;
        set.reserve(replace ? changes.size() : old.size() + changes.size());
        auto pos = old.begin();
        for (auto &[svc, deleted] : changes) {
            auto at = std::lower_bound(
                pos, old.end(), svc,
                [](const ServicePtr &p, const ServicePtr &k) { return key_less(*p, *k); });
            if (!replace) set.insert(set.end(), pos, at);
            pos = at;
            const bool held = at != old.end() && !key_less(*svc, **at);
            if (held) ++pos;
            if (deleted) continue;
            // After a re-list an object whose bytes did not change is the held pointer itself.
            if (held && (*at == svc || **at == *svc))
                set.push_back(*at);
            else
                set.push_back(std::move(svc));
        }
        if (!replace) set.insert(set.end(), pos, old.end());
        replace = false;
        return set;
    }

    // ---- credentials ----

    bool ensure_access() {
        if (access) return true;
        try {
            access =
                resolve_kube_access(options.server, options.kubeconfig, options.service_account_dir,
                                    options.env, options.allow_token_over_http);
            log::info(health.label() + ": using " + access->origin);
            return true;
        } catch (const std::exception &e) {
            health.failed("config", e.what());
            return false;
        }
    }

    std::vector<std::string> headers() {
        std::vector<std::string> h{"Accept: application/json"};
        std::string bearer = access->token;
        if (bearer.empty() && !access->token_file.empty()) {
            auto now = Clock::now();
            if (token_stale || now - token_read >= options.token_refresh) {
                std::string why;
                if (auto t = read_whole_file(access->token_file, why)) {
                    token = trim(*t);
                    token_read = now;
                    token_stale = false;
                } else {
                    // Keep the old token: the file may be mid-rotation.
                    log::warn(health.label() + ": cannot read token " + access->token_file +
                              (why.empty() ? ": missing" : ": " + why));
                }
            }
            bearer = token;
        }
        if (!bearer.empty()) h.push_back("Authorization: Bearer " + bearer);
        return h;
    }

    HttpRequest request(const std::string &url) {
        HttpRequest r;
        r.url = url;
        r.headers = headers();
        r.tls = access->tls;
        r.connect_timeout = options.connect_timeout;
        return r;
    }

    std::string failure_text(const HttpResponse &resp, const std::string &what) {
        if (!resp.transport_ok()) return what + " failed: " + resp.error;
        std::string text = what + " answered HTTP " + std::to_string(resp.status);
        // A Status object's message when there is one (of the right type), else the body's head.
        auto status = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
        if (status.is_object()) {
            auto message = status.find("message");
            if (message != status.end() && message->is_string()) {
                return text + ": " + message->get<std::string>().substr(0, 500);
            }
        }
        if (!resp.body.empty()) text += ": " + resp.body.substr(0, 200);
        return text;
    }

    std::string category_of(const HttpResponse &resp) {
        if (!resp.transport_ok()) return to_string(resp.failure);
        if (resp.status == 401) token_stale = true;  // maybe rotated: re-read before retrying
        return "http-" + std::to_string(resp.status);
    }

    // ---- list ----

    bool list() {
        // The pages of one list are one batch: the next list decodes only the objects whose
        // bytes changed since this one.
        decode_cache.begin_batch();
        bool complete = list_pages();
        decode_cache.end_batch(complete);
        return complete;
    }

    bool list_pages() {
        std::map<std::string, ServicePtr> fresh;
        std::set<std::string> fresh_rejected;
        DecodeResult rejections;
        std::string cont, rv;
        size_t pages = 0;
        do {
            std::string url = access->server + kResourcePath;
            std::string sep = "?";
            if (options.page_size > 0) {
                url += sep + "limit=" + std::to_string(options.page_size);
                sep = "&";
            }
            if (!cont.empty()) url += sep + "continue=" + url_encode(cont);
            HttpRequest req = request(url);
            req.timeout = options.list_timeout;
            req.max_body = options.max_response_bytes;
            HttpResponse resp = http.perform(req);
            if (resp.failure == HttpFailure::Cancelled) return false;
            if (!resp.transport_ok() || resp.status != 200) {
                health.failed(category_of(resp), failure_text(resp, "list"));
                return false;
            }
            DecodeLimits limits;
            limits.max_object_bytes = options.max_object_bytes;
            DocumentResult page =
                decode_json_document(resp.body, Container::List, limits, decode_cache);
            objects_decoded = decode_cache.objects_decoded();  // before any delivery
            resp.body = std::string();  // the page's bytes are no longer needed
            if (!page.error.empty()) {
                bool syntax = page.error.rfind("not valid JSON", 0) == 0;
                health.failed(syntax ? "parse" : "shape", "list answer: " + page.error);
                return false;
            }
            for (auto &svc : page.shared) {
                std::string k = svc->key();
                fresh_rejected.erase(k);
                fresh[k] = std::move(svc);
            }
            for (auto &r : page.rejected) {
                if (!r.key.empty()) {
                    fresh_rejected.insert(r.key);
                } else {
                    r.object = "an unnamed item (" + r.object + ")";
                }
                rejections.reject(std::move(r));
            }
            rejections.unlisted_rejections += page.unlisted_rejections;
            rv = std::move(page.resource_version);
            cont = std::move(page.continue_token);
            ++pages;
        } while (!cont.empty());
        if (rv.empty()) {
            health.failed("shape", "list answer has no metadata.resourceVersion");
            return false;
        }

        log_rejections(rejections, health.label());
        size_t kept = 0;
        {
            // A rejected object keeps its last good version (SPEC §5), as with watch events.
            std::lock_guard lock(mutex);
            for (const auto &key : fresh_rejected) {
                if (fresh.count(key)) continue;
                ServicePtr old = current(key);
                if (old == nullptr) continue;
                fresh.emplace(key, std::move(old));
                ++kept;
            }
        }
        size_t n_rejected = rejections.rejected_count();
        log::info(health.label() + ": listed " + std::to_string(fresh.size()) + " services" +
                  (n_rejected == 0
                       ? ""
                       : ", rejected " + std::to_string(n_rejected) + " (" + std::to_string(kept) +
                             " kept in their last good version)") +
                  " at resourceVersion " + rv +
                  (pages > 1 ? " (" + std::to_string(pages) + " pages)" : ""));
        resource_version = rv;
        // Healthy before the set can be delivered: whoever sees the set sees the source healthy.
        health.succeeded();
        {
            std::lock_guard lock(mutex);
            pending = std::move(fresh);
            replace = true;
            rejected = std::move(fresh_rejected);
            dirty = true;
        }
        cv.notify_all();
        return true;
    }

    // ---- watch ----

    struct WatchState {
        std::string buffer;
        size_t events = 0;
        bool gone = false;
        std::string error;  // an ERROR event other than 410, or an oversized line
    };

    // Applies one event line. Returns false to end the stream (410 or an ERROR event).
    bool handle_line(std::string_view line, WatchState &ws) {
        if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
        DecodeLimits limits;
        limits.max_object_bytes = options.max_object_bytes;
        WatchEvent ev = decode_watch_event(line, limits);
        if (!ev.error.empty()) {
            log::warn(health.label() + ": skipping a watch event: " + ev.error);
            return true;
        }
        ++ws.events;

        if (ev.type == "ERROR") {
            if (ev.code == 410) {
                log::info(health.label() + ": watch: resourceVersion " + resource_version +
                          " is gone (" + ev.message + "); re-listing");
                ws.gone = true;
            } else {
                ws.error = "watch ERROR event, code " + std::to_string(ev.code) + ": " + ev.message;
            }
            return false;
        }
        if (ev.type == "BOOKMARK") {
            if (!ev.resource_version.empty()) resource_version = ev.resource_version;
            health.succeeded();
            return true;
        }
        if (ev.type != "ADDED" && ev.type != "MODIFIED" && ev.type != "DELETED") {
            log::warn(health.label() + ": skipping a watch event of unknown type '" +
                      ev.type.substr(0, 64) + "'");
            return true;
        }
        if (!ev.resource_version.empty()) resource_version = ev.resource_version;
        health.succeeded();

        const std::string &key = ev.key;
        if (key.empty()) {
            log::warn(health.label() + ": skipping a watch event (" + ev.type +
                      ") without namespace/name" +
                      (ev.rejection.empty() ? "" : ": " + ev.rejection));
            return true;
        }
        if (ev.type == "DELETED") {
            {
                std::lock_guard lock(mutex);
                rejected.erase(key);
                health.set_rejected(rejected.size());
                if (current(key) == nullptr) return true;
                pending[key] = nullptr;
                dirty = true;
            }
            log::debug(health.label() + ": deleted " + key);
            cv.notify_all();
            return true;
        }
        if (!ev.service) {
            std::lock_guard lock(mutex);
            rejected.insert(key);
            health.set_rejected(rejected.size());
            log::warn(health.label() + ": skipping " + ev.type + " " + key + ": " + ev.rejection +
                      (current(key) ? " (keeping its previous version)" : ""));
            return true;
        }
        {
            std::lock_guard lock(mutex);
            if (rejected.erase(key) != 0) health.set_rejected(rejected.size());
            pending[key] = std::make_shared<const GlobalService>(std::move(*ev.service));
            dirty = true;
        }
        log::debug(health.label() + ": " + ev.type + " " + key);
        cv.notify_all();
        return true;
    }

    WatchEnd watch() {
        std::string url = access->server + kResourcePath +
                          "?watch=1&resourceVersion=" + url_encode(resource_version) +
                          "&allowWatchBookmarks=true&timeoutSeconds=" +
                          std::to_string(options.watch_timeout.count());
        WatchState ws;
        bool connected = false;
        HttpRequest req = request(url);
        req.timeout = options.watch_timeout + std::chrono::seconds(30);  // the server ends it first
        req.max_body = 0;  // a stream; each line is limited below instead
        req.on_response = [&](long status) {
            if (status == 200) {
                connected = true;
                health.succeeded();
            }
        };
        req.on_data = [&](std::string_view chunk) {
            ws.buffer.append(chunk);
            size_t start = 0;
            for (size_t nl; (nl = ws.buffer.find('\n', start)) != std::string::npos;
                 start = nl + 1) {
                if (!handle_line(std::string_view(ws.buffer).substr(start, nl - start), ws))
                    return false;
            }
            ws.buffer.erase(0, start);
            if (ws.buffer.size() > options.max_response_bytes) {
                ws.error = "a watch event is larger than " +
                           std::to_string(options.max_response_bytes) + " bytes";
                return false;
            }
            return true;
        };
        HttpResponse resp = http.perform(req);
        watch_events = ws.events;
        if (resp.failure == HttpFailure::Cancelled) return WatchEnd::Cancelled;
        if (ws.gone) return WatchEnd::Gone;
        if (!ws.error.empty()) {
            health.failed("watch-error", ws.error);
            return WatchEnd::Failed;
        }
        if (resp.transport_ok() && resp.status == 410) {
            log::info(health.label() + ": watch: resourceVersion " + resource_version +
                      " is gone (HTTP 410); re-listing");
            return WatchEnd::Gone;
        }
        if (!connected || (resp.transport_ok() && resp.status != 200)) {
            health.failed(category_of(resp), failure_text(resp, "watch"));
            return WatchEnd::Failed;
        }
        if (!resp.transport_ok()) {
            // A partial last line is dropped: the resumed watch sends that event again.
            log::info(health.label() + ": watch stream broke (" + resp.error +
                      "); resuming from resourceVersion " + resource_version);
            return WatchEnd::Closed;
        }
        if (!ws.buffer.empty()) {
            handle_line(ws.buffer, ws);  // a complete stream may end without a newline
            if (ws.gone) return WatchEnd::Gone;
            if (!ws.error.empty()) {
                health.failed("watch-error", ws.error);
                return WatchEnd::Failed;
            }
        }
        return WatchEnd::Closed;
    }

    // ---- threads ----

    void run_worker() {
        milliseconds backoff = options.min_backoff;
        auto grow = [&] { backoff = std::min(backoff * 2, options.max_backoff); };
        bool need_list = true;
        while (!stopper.stopped()) {
            if (!ensure_access()) {
                if (!stopper.sleep_for(backoff)) break;
                grow();
                continue;
            }
            if (need_list || resource_version.empty()) {
                if (!list()) {
                    if (http.cancelled() || !stopper.sleep_for(backoff)) break;
                    grow();
                    continue;
                }
                need_list = false;
                backoff = options.min_backoff;
            }
            auto started = Clock::now();
            WatchEnd end = watch();
            if (end == WatchEnd::Cancelled) break;
            if (end == WatchEnd::Gone) {
                need_list = true;
                continue;
            }
            // A stream that lasted or carried events resumes at once; one that ends
            // straight away (or failed) waits, so a misbehaving server is not hammered.
            bool productive =
                end == WatchEnd::Closed &&
                (watch_events > 0 || Clock::now() - started > std::chrono::seconds(5));
            if (productive) {
                backoff = options.min_backoff;
                continue;
            }
            if (!stopper.sleep_for(backoff)) break;
            grow();
        }
    }

    void run_deliverer() {
        std::unique_lock lock(mutex);
        for (;;) {
            cv.wait(lock, [this] { return dirty || stopping; });
            if (stopping) return;
            // At most one delivery per `coalesce`: a change after a quiet spell goes out at once,
            // the rest of a burst (and what arrives while a delivery runs) as one set after it.
            cv.wait_until(lock, last_delivery + options.coalesce, [this] { return stopping; });
            if (stopping) return;
            // Built under the lock: a watch event meanwhile must see either side whole.
            delivered = std::make_shared<const ServiceList>(next_set());
            ServiceSet set = delivered;
            size_t n_rejected = rejected.size();
            dirty = false;
            lock.unlock();
            health.delivered(set->size(), n_rejected);
            if (on_update) on_update(std::move(set));
            lock.lock();
            last_delivery = Clock::now();
        }
    }
};

KubernetesSource::KubernetesSource(KubeOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}

KubernetesSource::~KubernetesSource() {
    stop();
}

void KubernetesSource::start(Update on_update) {
    if (worker_.joinable() || state_->stopper.stopped()) {
        throw std::logic_error("KubernetesSource started twice");
    }
    state_->on_update = std::move(on_update);
    state_->health.pending("waiting for the first list");
    deliverer_ = std::thread([this] { state_->run_deliverer(); });
    worker_ = std::thread([this] { state_->run_worker(); });
}

void KubernetesSource::stop() {
    state_->stopper.stop();
    state_->http.cancel();
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
    }
    state_->cv.notify_all();
    if (worker_.joinable()) worker_.join();
    if (deliverer_.joinable()) deliverer_.join();
}

uint64_t KubernetesSource::objects_decoded() const {
    return state_->objects_decoded;
}

SourceStatus KubernetesSource::status() const {
    return state_->health.status();
}

}  // namespace fabdns
