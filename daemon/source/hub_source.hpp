// The hub source (SPEC §5): polls FabEdge service-hub's /api/global-services over mutual TLS,
// accepts only complete and sane answers, and keeps a last-known-good snapshot on disk so that a
// restart while the hub is down still serves the last good data.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "model/document.hpp"
#include "source/objects.hpp"
#include "source/source.hpp"

namespace fabdns {

struct HubOptions {
    std::string url;      // https://host:port, no path
    std::string cluster;  // sent as X-FabEdge-Cluster on every request
    std::string ca, cert, key;
    std::string snapshot;  // "" disables the snapshot
    std::chrono::milliseconds interval{5000};
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds request_timeout{30000};
    // Longest wait between attempts while the hub fails; 0 picks min(30 s, 6 x interval) (but
    // never less than interval).
    std::chrono::milliseconds max_backoff{0};
    // An answer (or snapshot) larger than this is refused before it is parsed.
    size_t max_response_bytes = size_t{64} << 20;
    size_t max_object_bytes = size_t{1} << 20;  // one GlobalService in the answer; larger: rejected
    // Each poll starts interval x [1 - jitter, 1] after the last one started, so that a change
    // waits at most one interval, and nodes started together drift apart; while the hub fails,
    // the backoff x [1 - jitter, 1] after the failure.
    double jitter = 0.1;

    static HubOptions from_config(const Config::Source::Hub &hub);
};

// Accepts an answer only when all of it is sane (source_detail::decide_hub_answer):
// - HTTP 200, at most max_response_bytes, with a body that parses completely as a JSON array;
// - every element names a service (a mapping with metadata.name); one that does not makes the
//   whole answer suspicious and it is refused (it looks like a broken hub, not like data);
// - an answer that leaves no usable service (an empty array, or every object refused by the
//   decoder) is refused while a non-empty set is held (SPEC §5: never replaced by an empty
//   set). Removing the last GlobalService therefore needs a restart without the snapshot.
// An object the decoder refuses (a bad address, say) is logged and counted; if a version of it
// is held, that last good version stays (SPEC §5), else it is left out; the rest load.
// Refused answers count as failures and back off exponentially; the held set stays.
// An answer identical to the held one (same size and hash) is not decoded again.
// Each accepted answer is written to the snapshot: its exact bytes, or the set as served when
// some objects kept their last good version.
class HubSource final : public Source {
  public:
    explicit HubSource(HubOptions options);
    ~HubSource() override;

    void start(Update on_update) override;
    void stop() override;
    SourceStatus status() const override;

  private:
    struct State;
    void run();
    std::unique_ptr<State> state_;
    std::thread thread_;
};

namespace source_detail {

// What HubSource does with one answer body, given the set it holds (sorted by namespace/name;
// `holding` once any set was delivered). The daemon's polls, its snapshot and fabdnsctl all
// decode hub answers through this.
struct HubDecision {
    std::string category, refusal;  // refusal non-empty: the answer is refused whole
    NextSet next;
    DocumentResult decoded;  // what was rejected (the services were moved into `next`)
};
// With a `cache`, only the objects whose bytes were not in the last answer decoded through it
// are decoded, and with a `memo` (build_set's) the last answer's sort is reused when it holds
// (the decision is the same).
HubDecision decide_hub_answer(std::string_view body, const ServiceList &held, bool holding,
                              const DecodeLimits &limits, const std::string &label,
                              SpanCache *cache = nullptr, SortMemo *memo = nullptr);
// The same decision on an answer decoded already (by a DocumentStream as it arrived).
HubDecision decide_hub_decoded(DocumentResult decoded, const ServiceList &held, bool holding,
                               const std::string &label, SortMemo *memo = nullptr);

}  // namespace source_detail

}  // namespace fabdns
