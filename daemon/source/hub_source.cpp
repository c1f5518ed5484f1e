// HubSource: the poll loop, answer validation, backoff and the snapshot.
#include "source/hub_source.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>

#include "common/log.hpp"
#include "source/health.hpp"
#include "source/http.hpp"
#include "source/objects.hpp"
#include "source/snapshot.hpp"
#include "source/stopper.hpp"

namespace fabdns {

using namespace source_detail;
using std::chrono::milliseconds;

HubOptions HubOptions::from_config(const Config::Source::Hub &hub) {
    HubOptions o;
    o.url = hub.url;
    o.cluster = hub.cluster;
    o.ca = hub.ca;
    o.cert = hub.cert;
    o.key = hub.key;
    o.snapshot = hub.snapshot;
    o.interval = hub.interval;
    return o;
}

struct HubSource::State {
    explicit State(HubOptions o)
        : options(std::move(o)), health("hub", "hub " + options.url), rng(std::random_device{}()) {}

    HubOptions options;
    Health health;
    HttpClient http;
    Stopper stopper;
    Update on_update;
    std::mt19937_64 rng;
    std::string accepted_body;  // bytes of the set currently held, to skip unchanged answers
    size_t held = 0;            // services in the set currently held
    bool holding = false;

    // Why an answer cannot be accepted: a log category and a message.
    struct Refusal {
        std::string category, message;
    };

    // Validates and decodes `body`; on success fills `out` and `rejected`. The parsed `doc`
    // belongs to the caller: freeing a large document costs about as much as parsing it, so
    // callers let it go only after the set was delivered.
    std::optional<Refusal> decode(const std::string &body, nlohmann::json &doc,
                                  std::vector<GlobalService> &out,
                                  std::vector<Rejection> &rejected) const {
        try {
            doc = nlohmann::json::parse(body);
        } catch (const nlohmann::json::exception &e) {
            return Refusal{"parse", std::string("not valid JSON: ") + e.what()};
        }
        if (!doc.is_array()) {
            return Refusal{"shape", std::string("a JSON ") + doc.type_name() +
                                        ", not an array of GlobalServices"};
        }
        for (size_t i = 0; i < doc.size(); ++i) {
            if (auto problem = structural_problem(doc[i]); !problem.empty()) {
                std::string who = object_key(doc[i]);
                return Refusal{"suspicious", "refused whole: element " + std::to_string(i) +
                                                 (who.empty() ? "" : " (" + who + ")") + ": " +
                                                 problem};
            }
        }
        out.reserve(doc.size());
        for (auto &obj : doc) {
            default_type_meta(obj);
            std::string why;
            if (auto svc = decode_globalservice(obj, why)) {
                out.push_back(std::move(*svc));
            } else {
                rejected.push_back({object_key(obj), why});
            }
        }
        if (out.empty() && holding && held > 0) {
            // An empty set (or one whose every object was refused) would blank every answer.
            return Refusal{"empty", "no usable services (" + std::to_string(doc.size()) +
                                        " in the list, " + std::to_string(rejected.size()) +
                                        " refused) while " + std::to_string(held) +
                                        " are held; refused as suspicious"};
        }
        dedupe(out, health.label());
        return std::nullopt;
    }

    void deliver(std::vector<GlobalService> services, size_t rejected, std::string body) {
        held = services.size();
        holding = true;
        accepted_body = std::move(body);
        health.delivered(held, rejected);
        if (on_update) on_update(std::move(services));
    }

    void load_snapshot() {
        const std::string &path = options.snapshot;
        if (path.empty()) return;
        std::string why;
        auto body = read_whole_file(path, why);
        if (!body) {
            if (why.empty()) {
                log::info(health.label() + ": no snapshot at " + path + " yet");
            } else {
                log::warn(health.label() + ": ignoring snapshot: " + why);
            }
            return;
        }
        std::vector<GlobalService> services;
        std::vector<Rejection> rejected;
        nlohmann::json doc;
        if (auto refusal = decode(*body, doc, services, rejected)) {
            log::warn(health.label() + ": ignoring corrupt snapshot " + path + ": " +
                      refusal->message);
            return;
        }
        log_rejections(rejected, health.label() + " snapshot");
        log::info(health.label() + ": serving " + std::to_string(services.size()) +
                  " services from snapshot " + path + " until the hub answers");
        deliver(std::move(services), rejected.size(), std::move(*body));
    }

    void save_snapshot() {
        if (options.snapshot.empty()) return;
        if (auto why = write_file_atomically(options.snapshot, accepted_body); !why.empty()) {
            // The data is still served; only a restart during an outage would lack it.
            log::warn(health.label() + ": cannot write snapshot: " + why);
        }
    }

    // One request to the hub. Returns true when the hub answered acceptably.
    bool poll() {
        HttpRequest req;
        req.url = options.url + "/api/global-services";
        req.headers = {"X-FabEdge-Cluster: " + options.cluster, "Accept: application/json"};
        req.tls.ca_file = options.ca;
        req.tls.cert_file = options.cert;
        req.tls.key_file = options.key;
        req.https_only = true;
        req.connect_timeout = options.connect_timeout;
        req.timeout = options.request_timeout;
        req.max_body = options.max_response_bytes;

        HttpResponse resp = http.perform(req);
        if (resp.failure == HttpFailure::Cancelled) return false;
        if (!resp.transport_ok()) {
            health.failed(to_string(resp.failure), "GET " + req.url + " failed: " + resp.error);
            return false;
        }
        if (resp.status != 200) {
            std::string head = resp.body.substr(0, 200);
            health.failed("http-" + std::to_string(resp.status),
                          "GET " + req.url + " answered HTTP " + std::to_string(resp.status) +
                              (head.empty() ? "" : ": " + head));
            return false;
        }
        if (holding && resp.body == accepted_body) {
            health.succeeded();  // unchanged: nothing to decode or deliver
            return true;
        }
        std::vector<GlobalService> services;
        std::vector<Rejection> rejected;
        nlohmann::json doc;
        if (auto refusal = decode(resp.body, doc, services, rejected)) {
            health.failed(refusal->category, "answer from " + req.url + ": " + refusal->message);
            return false;
        }
        health.succeeded();
        log_rejections(rejected, health.label());
        log::info(health.label() + ": accepted " + std::to_string(services.size()) + " services" +
                  (rejected.empty() ? "" : ", rejected " + std::to_string(rejected.size())));
        deliver(std::move(services), rejected.size(), std::move(resp.body));
        save_snapshot();
        return true;
    }

    milliseconds next_wait() {
        const SourceStatus st = health.status();
        const milliseconds interval = std::max(options.interval, milliseconds(1));
        milliseconds cap = options.max_backoff;
        if (cap.count() <= 0) cap = std::min(milliseconds(30000), interval * 6);
        cap = std::max(cap, interval);
        milliseconds wait = interval;
        // interval, 2x, 4x, ... up to the cap while failing.
        for (uint64_t i = 1; i < st.consecutive_failures && wait < cap; ++i) wait *= 2;
        wait = std::min(wait, cap);
        double j = std::clamp(options.jitter, 0.0, 0.5);
        std::uniform_real_distribution<double> dist(1.0 - j, 1.0 + j);
        return milliseconds(static_cast<int64_t>(static_cast<double>(wait.count()) * dist(rng)));
    }
};

HubSource::HubSource(HubOptions options) {
    while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();
    if (options.url.empty()) throw std::invalid_argument("source.hub.url is empty");
    state_ = std::make_unique<State>(std::move(options));
}

HubSource::~HubSource() {
    stop();
}

void HubSource::start(Update on_update) {
    if (thread_.joinable() || state_->stopper.stopped()) {
        throw std::logic_error("HubSource::start called twice");
    }
    state_->on_update = std::move(on_update);
    state_->health.pending("waiting for the first answer from the hub");
    thread_ = std::thread([this] { run(); });
}

void HubSource::stop() {
    state_->stopper.stop();
    state_->http.cancel();
    if (thread_.joinable()) thread_.join();
}

SourceStatus HubSource::status() const {
    return state_->health.status();
}

void HubSource::run() {
    State &s = *state_;
    s.load_snapshot();
    while (!s.stopper.stopped()) {
        s.poll();
        if (!s.stopper.sleep_for(s.next_wait())) break;
    }
}

}  // namespace fabdns
