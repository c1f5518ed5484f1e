// HubSource: the poll loop, answer validation, backoff and the snapshot.
#include "source/hub_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "source/health.hpp"
#include "source/http.hpp"
#include "source/objects.hpp"
#include "source/snapshot.hpp"
#include "source/stopper.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

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
    o.max_response_bytes = hub.max_response_bytes;
    return o;
}

namespace source_detail {

HubDecision decide_hub_answer(std::string_view body, const ServiceList &held, bool holding,
                              const DecodeLimits &limits, const std::string &label,
                              SpanCache *cache) {
    HubDecision d;
    d.decoded = cache ? decode_json_document(body, Container::Array, limits, *cache)
                      : decode_json_document(body, Container::Array, limits);
    if (!d.decoded.error.empty()) {
        d.category = d.decoded.error.rfind("not valid JSON", 0) == 0 ? "parse" : "shape";
        d.refusal = d.decoded.error;
        return d;
    }
    // An element that names no service cannot keep a last good version: the answer looks like
    // a broken hub, not like data, and is refused whole.
    for (const Rejection &r : d.decoded.rejected) {
        if (!r.key.empty()) continue;
        d.category = "suspicious";
        d.refusal = "refused whole: " + r.object + ": " + r.reason;
        return d;
    }
    size_t listed =
        d.decoded.services.size() + d.decoded.shared.size() + d.decoded.rejected_count();
    d.next = build_set(d.decoded, held, label);
    if (d.next.services.empty() && holding && !held.empty()) {
        // An empty set (or one whose every object was refused) would blank every answer.
        d.category = "empty";
        d.refusal = "no usable services (" + std::to_string(listed) + " in the list, " +
                    std::to_string(d.decoded.rejected_count()) + " refused) while " +
                    std::to_string(held.size()) + " are held; refused as suspicious";
    }
    return d;
}

}  // namespace source_detail

struct HubSource::State {
    explicit State(HubOptions o)
        : options(std::move(o)), health("hub", "hub " + options.url), rng(std::random_device{}()) {}

    HubOptions options;
    Health health;
    HttpClient http;
    Stopper stopper;
    Update on_update;
    std::mt19937_64 rng;
    // The answer currently held, as the digests of its blocks and its size: a poll compares the
    // answer with it while receiving, hashing libcurl's buffers where they are, and keeps no
    // byte of an unchanged one (47 MB at 100,000 services, every interval; see Comparison for
    // a changed one). The hub sends no ETag and ignores If-None-Match (docs/spec-notes.md).
    // XXH3 runs at memory speed, a small share of the TLS decryption every poll pays anyway.
    // Blocks smaller than libcurl's 16 KiB pieces are mostly hashed where they are: only a
    // block split between two pieces is copied (see Comparison). 16 bytes of digest per 4 KiB:
    // 180 KiB at 100,000 services.
    static constexpr size_t kBlock = size_t{4} << 10;
    std::vector<XXH128_hash_t> accepted_blocks;
    size_t accepted_size = 0;
    // The set delivered last, sorted by namespace/name; the engine answers from the same one.
    ServiceSet held = std::make_shared<const ServiceList>();
    bool holding = false;

    static std::vector<XXH128_hash_t> blocks_of(std::string_view body) {
        std::vector<XXH128_hash_t> out;
        for (size_t at = 0; at < body.size(); at += kBlock) {
            std::string_view block = body.substr(at, kBlock);
            out.push_back(XXH3_128bits(block.data(), block.size()));
        }
        return out;
    }
    static bool same_blocks(const std::vector<XXH128_hash_t> &a,
                            const std::vector<XXH128_hash_t> &b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                          [](XXH128_hash_t x, XXH128_hash_t y) { return XXH128_isEqual(x, y); });
    }

    // Each answer decodes only the objects whose bytes the last one decoded did not have.
    SpanCache decode_cache;

    HubDecision decide(std::string_view body) {
        DecodeLimits limits;
        limits.max_object_bytes = options.max_object_bytes;
        return decide_hub_answer(body, *held, holding, limits, health.label(), &decode_cache);
    }

    // Holds the accepted set from now on.
    void accept(HubDecision &d, std::string_view body) {
        held = std::make_shared<const ServiceList>(std::move(d.next.services));
        holding = true;
        accepted_blocks = blocks_of(body);
        accepted_size = body.size();
        health.delivered(held->size(), d.decoded.rejected_count());
    }

    void deliver() {
        if (on_update) on_update(held);
    }

    void load_snapshot() {
        const std::string &path = options.snapshot;
        if (path.empty()) return;
        std::string why;
        auto body = read_whole_file(path, why, options.max_response_bytes);
        if (!body) {
            if (why.empty()) {
                log::info(health.label() + ": no snapshot at " + path + " yet");
            } else {
                log::warn(health.label() + ": ignoring snapshot: " + why);
            }
            return;
        }
        HubDecision d = decide(*body);
        if (!d.refusal.empty()) {
            log::warn(health.label() + ": ignoring corrupt snapshot " + path + ": " + d.refusal);
            return;
        }
        log_rejections(d.decoded, health.label() + " snapshot");
        log::info(health.label() + ": serving " + std::to_string(d.next.services.size()) +
                  " services from snapshot " + path + " until the hub answers");
        accept(d, *body);
        body.reset();  // not needed while the set compiles
        deliver();
    }

    // The snapshot holds the set as served: the answer's own bytes, or, when some objects kept
    // their last good version, the set written out (so a restart serves the same). It is
    // written in two steps around the delivery: the bytes before it, so that the answer (47 MB
    // at 100,000 services) is freed before the set compiles, and the fsync and rename (0.3-0.7 s
    // at that size) after it, so that a change reaches the kernel without waiting for the disk.
    // The next poll comes after the rename, so its compare reads the new snapshot.
    void stage_snapshot(StagedFile &file, const std::string &body, size_t kept) {
        if (options.snapshot.empty()) return;
        snapshot_written(
            kept == 0 ? file.stage(options.snapshot, body)
                      : file.stage(options.snapshot, encode_globalservices(copy_services(*held))));
    }
    void commit_snapshot(StagedFile &file) {
        if (file.staged()) snapshot_written(file.commit());
    }
    void snapshot_written(const std::string &why) {
        // The data is still served; only a restart during an outage would lack it.
        if (!why.empty()) log::warn(health.label() + ": cannot write snapshot: " + why);
    }

    // Compares an answer with the one held while it arrives (see accepted_blocks): each whole
    // block inside one of libcurl's pieces is hashed where it is; a block split between pieces
    // is gathered first (4 KiB at most is copied per piece). When the answer differs, the held
    // answer's verified blocks before the difference are read back from the snapshot (written
    // from the same bytes) and checked against their digests, and the answer is received whole
    // from there on in this one transfer: a changed answer crosses the network once (47 MB at
    // 100,000 services). Without a snapshot that matches, the transfer ends at the difference
    // and the answer is fetched again.
    class Comparison {
      public:
        explicit Comparison(const State &s) : s_(s) {}
        // False when the transfer should end (the answer differs and no snapshot can supply
        // the bytes before the difference).
        bool feed(std::string_view data) {
            if (collecting_) {
                body_.append(data);
                return true;
            }
            received_ += data.size();
            if (received_ > s_.accepted_size) return differs(data);
            if (in_block_ != 0) {  // the block begun in an earlier piece
                size_t take = std::min(kBlock - in_block_, data.size());
                std::memcpy(block_.data() + in_block_, data.data(), take);
                in_block_ += take;
                data.remove_prefix(take);
                if (in_block_ < kBlock) return true;
                if (!next_block(block_.data())) return differs(data);
            }
            for (; data.size() >= kBlock; data.remove_prefix(kBlock)) {
                if (!next_block(data.data())) {
                    std::memcpy(block_.data(), data.data(), kBlock);
                    in_block_ = kBlock;
                    return differs(data.substr(kBlock));
                }
            }
            std::memcpy(block_.data(), data.data(), data.size());
            in_block_ = data.size();
            return true;
        }
        // After the whole answer arrived: true when it is the one held; else body() holds the
        // new answer when the snapshot could supply its start, and it is empty otherwise.
        bool same() {
            if (collecting_) return false;
            if ((in_block_ == 0 || next_block(block_.data())) && received_ == s_.accepted_size &&
                blocks_ == s_.accepted_blocks.size())
                return true;
            differs({});  // a changed last block, or shorter than the held answer
            return false;
        }
        std::string &body() { return body_; }

      private:
        // Whether the in_block_ bytes at `data`, or kBlock when in_block_ is 0, are the next
        // block of the held answer; then they are counted as verified.
        bool next_block(const char *data) {
            size_t n = in_block_ == 0 ? kBlock : in_block_;
            if (blocks_ >= s_.accepted_blocks.size() ||
                !XXH128_isEqual(XXH3_128bits(data, n), s_.accepted_blocks[blocks_]))
                return false;
            blocks_++;
            in_block_ = 0;
            return true;
        }

        // The answer differs from the held one after blocks_ equal blocks: the new answer is
        // those blocks (from the snapshot), the block gathered so far, then `rest` and every
        // later byte. False when the snapshot cannot supply them.
        bool differs(std::string_view rest) {
            size_t prefix = blocks_ * kBlock;
            body_.reserve(std::max(s_.accepted_size + s_.accepted_size / 16,
                                   prefix + in_block_ + rest.size()));
            if (!read_prefix(prefix)) {
                std::string().swap(body_);
                return false;
            }
            body_.append(block_.data(), in_block_);
            body_.append(rest);
            collecting_ = true;
            return true;
        }

        // The snapshot's first `bytes` bytes into body_, when they are the held answer's.
        bool read_prefix(size_t bytes) {
            if (bytes == 0) return true;
            if (s_.options.snapshot.empty()) return false;
            int fd = ::open(s_.options.snapshot.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return false;
            body_.resize(bytes);
            ssize_t got = read_fully(fd, body_.data(), bytes);
            ::close(fd);
            if (got != static_cast<ssize_t>(bytes)) return false;
            for (size_t b = 0; b < blocks_; ++b) {
                if (!XXH128_isEqual(XXH3_128bits(body_.data() + b * kBlock, kBlock),
                                    s_.accepted_blocks[b]))
                    return false;  // the snapshot holds another answer (or the set written out)
            }
            return true;
        }

        const State &s_;
        std::array<char, kBlock> block_;  // a block split between pieces, or the one that differs
        size_t in_block_ = 0, blocks_ = 0, received_ = 0;
        bool collecting_ = false;
        std::string body_;
    };

    // One request to the hub. Returns true when the hub answered acceptably.
    bool poll() {
        HttpRequest req;
        req.url = options.url + "/api/global-services";
        req.headers = {"X-FabEdge-Cluster: " + options.cluster, "Accept: application/json"};
        req.tls.ca_file = options.ca;
        req.tls.cert_file = options.cert;
        req.tls.key_file = options.key;
        req.https_only = true;
        // The hub (Go net/http) also offers HTTP/2; one request per interval gains nothing from
        // it, and HTTP/1.1 is the path the stand-in and the tests exercise.
        req.http1_only = true;
        req.connect_timeout = options.connect_timeout;
        req.timeout = options.request_timeout;
        req.max_body = options.max_response_bytes;
        // The hub sends large answers chunked: a changed answer is about as long as the last.
        req.expected_body = accepted_size + accepted_size / 16;

        std::optional<Comparison> cmp;
        if (holding) {
            cmp.emplace(*this);
            req.on_data = [&](std::string_view data) { return cmp->feed(data); };
        }
        HttpResponse resp = http.perform(req);
        bool refetched = false;
        if (cmp &&
            (resp.failure == HttpFailure::Aborted || (resp.transport_ok() && resp.status == 200))) {
            if (resp.transport_ok() && cmp->same()) {
                health.succeeded();  // unchanged: nothing to decode or deliver
                return true;
            }
            if (resp.transport_ok() && !cmp->body().empty()) {
                resp.body.swap(cmp->body());  // received whole in this one transfer
            } else {
                // Changed, and the snapshot could not supply the start: fetch it whole.
                req.on_data = nullptr;
                resp = http.perform(req);
                refetched = true;
            }
            cmp.reset();
        }
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
        if (refetched && resp.body.size() == accepted_size &&
            same_blocks(blocks_of(resp.body), accepted_blocks)) {
            health.succeeded();  // changed back between the two requests
            return true;
        }
        HubDecision d = decide(resp.body);
        if (!d.refusal.empty()) {
            health.failed(d.category, "answer from " + req.url + ": " + d.refusal);
            return false;
        }
        health.succeeded();
        log_rejections(d.decoded, health.label());
        size_t rejected = d.decoded.rejected_count();
        log::info(health.label() + ": accepted " + std::to_string(d.next.services.size()) +
                  " services" +
                  (rejected == 0
                       ? ""
                       : ", rejected " + std::to_string(rejected) + " (" +
                             std::to_string(d.next.kept) + " kept in their last good version)"));
        accept(d, resp.body);
        StagedFile snapshot;
        stage_snapshot(snapshot, resp.body, d.next.kept);
        std::string().swap(resp.body);
        deliver();
        commit_snapshot(snapshot);
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
