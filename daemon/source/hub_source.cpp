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
#include <span>
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
                              SpanCache *cache, SortMemo *memo) {
    return decide_hub_decoded(cache ? decode_json_document(body, Container::Array, limits, *cache)
                                    : decode_json_document(body, Container::Array, limits),
                              held, holding, label, memo);
}

HubDecision decide_hub_decoded(DocumentResult decoded, const ServiceList &held, bool holding,
                               const std::string &label, SortMemo *memo) {
    HubDecision d;
    d.decoded = std::move(decoded);
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
    d.next = build_set(d.decoded, held, label, memo);
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

    static bool same_blocks(std::span<const XXH128_hash_t> a, std::span<const XXH128_hash_t> b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                          [](XXH128_hash_t x, XXH128_hash_t y) { return XXH128_isEqual(x, y); });
    }

    // Each answer decodes only the objects whose bytes the last one decoded did not have, and
    // sorts nothing when only versions changed.
    SpanCache decode_cache;
    SortMemo sort_memo;

    DecodeLimits limits() const {
        DecodeLimits l;
        l.max_object_bytes = options.max_object_bytes;
        return l;
    }

    // The digests of an answer's blocks, its bytes fed in pieces: a block inside one piece is
    // hashed where it is, one split between pieces is gathered first (4 KiB at most is copied
    // per piece).
    class BlockDigests {
      public:
        void feed(std::string_view data) {
            if (in_block_ != 0) {
                size_t take = std::min(kBlock - in_block_, data.size());
                std::memcpy(block_.data() + in_block_, data.data(), take);
                in_block_ += take;
                data.remove_prefix(take);
                if (in_block_ < kBlock) return;
                blocks_.push_back(XXH3_128bits(block_.data(), kBlock));
                in_block_ = 0;
            }
            for (; data.size() >= kBlock; data.remove_prefix(kBlock))
                blocks_.push_back(XXH3_128bits(data.data(), kBlock));
            std::memcpy(block_.data(), data.data(), data.size());
            in_block_ = data.size();
        }
        // After the last byte: the last, shorter block.
        void finish() {
            if (in_block_ != 0) blocks_.push_back(XXH3_128bits(block_.data(), in_block_));
            in_block_ = 0;
        }
        const std::vector<XXH128_hash_t> &blocks() const { return blocks_; }
        std::vector<XXH128_hash_t> take() { return std::move(blocks_); }

      private:
        std::vector<XXH128_hash_t> blocks_;
        std::array<char, kBlock> block_;
        size_t in_block_ = 0;
    };

    // An answer as it arrives, never held whole: decoded object by object (DocumentStream),
    // hashed in blocks for the next poll's compare and, for a poll, written to the snapshot's
    // temporary file. A 47 MB answer at 100,000 services would otherwise sit beside the set
    // while it is decoded.
    class Intake {
      public:
        Intake(State &s, bool stage)
            : s_(s),
              stream_(Container::Array, s.limits(), s.decode_cache),
              stage_(stage && !s.options.snapshot.empty()) {}
        // False once the answer is known not to be plainly an array of objects: only a decode
        // of the whole text gives its error.
        bool feed(std::string_view data) {
            if (data.empty()) return !stream_.irregular();
            size_ += data.size();
            stream_.feed(data);
            if (stream_.irregular()) return false;
            digests_.feed(data);
            if (stage_ && !file_.staged()) s_.snapshot_written(file_.open(s_.options.snapshot));
            stage_ = file_.staged();  // a file that failed is not tried again
            if (stage_) s_.snapshot_written(file_.append(data));
            return true;
        }
        bool irregular() const { return stream_.irregular(); }
        // After the last byte: the answer decoded (nullopt: decode the whole text), with
        // blocks() and size() its digests and length.
        std::optional<DocumentResult> finish() {
            digests_.finish();
            return stream_.finish();
        }
        const std::vector<XXH128_hash_t> &blocks() const { return digests_.blocks(); }
        std::vector<XXH128_hash_t> take_blocks() { return digests_.take(); }
        size_t size() const { return size_; }
        StagedFile &file() { return file_; }

      private:
        State &s_;
        DocumentStream stream_;
        StagedFile file_;
        bool stage_;
        BlockDigests digests_;
        size_t size_ = 0;
    };

    // Holds the accepted set from now on.
    void accept(HubDecision &d, std::vector<XXH128_hash_t> blocks, size_t size) {
        held = std::make_shared<const ServiceList>(std::move(d.next.services));
        holding = true;
        accepted_blocks = std::move(blocks);
        accepted_size = size;
        health.delivered(held->size(), d.decoded.rejected_count());
    }

    void deliver() {
        if (on_update) on_update(held);
    }

    void load_snapshot() {
        const std::string &path = options.snapshot;
        if (path.empty()) return;
        std::string why;
        Intake intake(*this, false);
        std::optional<DocumentResult> decoded;
        switch (stream_file(path, intake, why)) {
            case Streamed::Missing:
                log::info(health.label() + ": no snapshot at " + path + " yet");
                return;
            case Streamed::Failed:
                log::warn(health.label() + ": ignoring snapshot: " + why);
                return;
            case Streamed::Whole:
                decoded = intake.finish();
                break;
        }
        HubDecision d;
        std::vector<XXH128_hash_t> blocks;
        size_t size = 0;
        if (decoded) {
            d = decide_hub_decoded(std::move(*decoded), *held, holding, health.label(), &sort_memo);
            blocks = intake.take_blocks();
            size = intake.size();
        } else {
            // Not plainly an array of objects: decoded whole, for the error and its position.
            auto body = read_whole_file(path, why, options.max_response_bytes);
            if (!body) {
                log::warn(health.label() + ": ignoring snapshot: " + why);
                return;
            }
            d = decide_hub_answer(*body, *held, holding, limits(), health.label());
            blocks = blocks_of(*body);
            size = body->size();
        }
        if (!d.refusal.empty()) {
            log::warn(health.label() + ": ignoring corrupt snapshot " + path + ": " + d.refusal);
            return;
        }
        log_rejections(d.decoded, health.label() + " snapshot");
        log::info(health.label() + ": serving " + std::to_string(d.next.services.size()) +
                  " services from snapshot " + path + " until the hub answers");
        accept(d, std::move(blocks), size);
        deliver();
    }

    enum class Streamed { Whole, Missing, Failed };
    // Feeds the file at `path` to `intake` in pieces, up to max_response_bytes.
    Streamed stream_file(const std::string &path, Intake &intake, std::string &why) const {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) return Streamed::Missing;
            why = "cannot open " + path + ": " + std::strerror(errno);
            return Streamed::Failed;
        }
        size_t total = 0;
        bool too_large = false;
        bool ok = read_pieces(fd, [&](std::string_view piece) {
            total += piece.size();
            too_large = options.max_response_bytes != 0 && total > options.max_response_bytes;
            return !too_large && intake.feed(piece);
        });
        if (ok && !too_large) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // see StagedFile::commit
            ::close(fd);
            return Streamed::Whole;  // or irregular: finish() says which
        }
        if (!ok) why = "cannot read " + path + ": " + std::strerror(errno);
        if (too_large)
            why = path + " is larger than " + std::to_string(options.max_response_bytes) + " bytes";
        ::close(fd);
        return Streamed::Failed;
    }

    static std::vector<XXH128_hash_t> blocks_of(std::string_view body) {
        BlockDigests digests;
        digests.feed(body);
        digests.finish();
        return digests.take();
    }

    // The snapshot holds the set as served: the answer's own bytes (written as it arrived), or,
    // when some objects kept their last good version, the set written out (so a restart serves
    // the same). Its fsync and rename (0.3-0.7 s at 100,000 services) come after the delivery,
    // so that a change reaches the kernel without waiting for the disk. The next poll comes
    // after the rename, so its compare reads the new snapshot.
    void stage_set(StagedFile &file) {
        if (options.snapshot.empty()) return;
        snapshot_written(file.stage(options.snapshot, encode_globalservices(copy_services(*held))));
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
    // answer's blocks before the difference are read back from the snapshot (written from the
    // same bytes) into an Intake and checked against their digests, and the rest of the answer
    // follows them in this one transfer: a changed answer crosses the network once (47 MB at
    // 100,000 services). Without a snapshot that matches, the transfer ends at the difference
    // and the answer is fetched again.
    class Comparison {
      public:
        explicit Comparison(State &s) : s_(s) {}
        // False when the transfer should end (the answer differs and no snapshot can supply
        // the bytes before the difference, or it is not plainly an array of objects).
        bool feed(std::string_view data) {
            if (intake_) return intake_->feed(data);
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
        // After the whole answer arrived: true when it is the one held; else take_intake()
        // holds the new answer when the snapshot could supply its start.
        bool same() {
            if (intake_) return false;
            if ((in_block_ == 0 || next_block(block_.data())) && received_ == s_.accepted_size &&
                blocks_ == s_.accepted_blocks.size())
                return true;
            differs({});  // a changed last block, or shorter than the held answer
            return false;
        }
        std::unique_ptr<Intake> take_intake() { return std::move(intake_); }

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
            intake_ = std::make_unique<Intake>(s_, true);
            if (!read_prefix(blocks_ * kBlock)) {
                intake_.reset();
                return false;
            }
            return intake_->feed({block_.data(), in_block_}) && intake_->feed(rest);
        }

        // The snapshot's first `bytes` bytes into the intake, when they are the held answer's.
        bool read_prefix(size_t bytes) {
            if (bytes == 0) return true;
            if (s_.options.snapshot.empty()) return false;
            int fd = ::open(s_.options.snapshot.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return false;
            std::vector<char> piece(std::min(bytes, size_t{256} << 10));
            bool ok = true;
            for (size_t done = 0; ok && done < bytes;) {
                size_t want = std::min(piece.size(), bytes - done);
                ok = read_fully(fd, piece.data(), want) == static_cast<ssize_t>(want) &&
                     intake_->feed({piece.data(), want});
                done += want;
            }
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // see StagedFile::commit
            ::close(fd);
            // The snapshot may hold another answer (or the set written out).
            return ok &&
                   same_blocks(intake_->blocks(), std::span(s_.accepted_blocks).first(blocks_));
        }

        State &s_;
        std::array<char, kBlock> block_;  // a block split between pieces, or the one that differs
        size_t in_block_ = 0, blocks_ = 0, received_ = 0;
        std::unique_ptr<Intake> intake_;
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
        // The hub sends large answers chunked: a changed answer is about as long as the last
        // (for one decoded whole).
        req.expected_body = accepted_size + accepted_size / 16;

        std::unique_ptr<Intake> intake;
        auto fetch_into_intake = [&] {
            intake.reset();  // one DocumentStream on the cache at a time
            intake = std::make_unique<Intake>(*this, true);
            req.on_data = [&](std::string_view data) { return intake->feed(data); };
            return http.perform(req);
        };
        HttpResponse resp;
        if (holding) {
            Comparison cmp(*this);
            req.on_data = [&](std::string_view data) { return cmp.feed(data); };
            resp = http.perform(req);
            if (resp.failure == HttpFailure::Aborted ||
                (resp.transport_ok() && resp.status == 200)) {
                if (resp.transport_ok() && cmp.same()) {
                    health.succeeded();  // unchanged: nothing to decode or deliver
                    return true;
                }
                intake = cmp.take_intake();
                // Changed, and the snapshot could not supply the start: fetch it again.
                if (!intake || (!resp.transport_ok() && !intake->irregular()))
                    resp = fetch_into_intake();
            }
        } else {
            resp = fetch_into_intake();
        }
        std::optional<DocumentResult> decoded;
        if (intake &&
            (resp.failure == HttpFailure::Aborted || (resp.transport_ok() && resp.status == 200))) {
            if (resp.transport_ok()) decoded = intake->finish();
            if (!decoded) {
                // Not plainly an array of objects: only the whole text gives the error.
                intake.reset();
                req.on_data = nullptr;
                resp = http.perform(req);
            }
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
        std::vector<XXH128_hash_t> blocks = decoded ? intake->take_blocks() : blocks_of(resp.body);
        size_t size = decoded ? intake->size() : resp.body.size();
        if (holding && size == accepted_size && same_blocks(blocks, accepted_blocks)) {
            health.succeeded();  // changed back between the two requests
            return true;
        }
        HubDecision d = decoded ? decide_hub_decoded(std::move(*decoded), *held, holding,
                                                     health.label(), &sort_memo)
                                : decide_hub_answer(resp.body, *held, holding, limits(),
                                                    health.label(), &decode_cache, &sort_memo);
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
        accept(d, std::move(blocks), size);
        StagedFile whole;
        StagedFile &snapshot = d.next.kept == 0 && intake ? intake->file() : whole;
        if (d.next.kept != 0) {
            intake.reset();  // its file holds the answer, not the set as served
            stage_set(whole);
        } else if (!intake && !options.snapshot.empty()) {
            snapshot_written(whole.stage(options.snapshot, resp.body));
        }
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
        std::uniform_real_distribution<double> dist(1.0 - j, 1.0);
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
        const auto started = std::chrono::steady_clock::now();
        s.poll();
        // Timed from the poll's start: a 47 MB answer's transfer does not stretch the
        // interval. A poll longer than that is followed by a tenth of it, not by another at
        // once, so that a slow hub is not polled back to back. A failing hub's backoff counts
        // from the failure: one that hangs each request is not asked again sooner.
        const milliseconds wait = s.next_wait();
        const auto took =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
        const bool failing = s.health.status().consecutive_failures > 0;
        if (!s.stopper.sleep_for(failing ? wait : std::max(wait - took, wait / 10))) break;
    }
}

}  // namespace fabdns
