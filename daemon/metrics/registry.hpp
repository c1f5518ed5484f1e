// Prometheus metrics without locks on hot paths: components keep their own atomic counters and
// register a collector that turns them into samples only when /metrics is scraped. The Writer
// renders the text exposition format 0.0.4.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

namespace fabdns::metrics {

struct Label {
    std::string_view name, value;
};

enum class Type { Counter, Gauge, Untyped };
const char *to_string(Type type);

// A sample value: integers keep their exact value (a uint64 counter past 2^53 is still exact),
// floating point is written in the shortest form that reads back the same, with NaN, +Inf, -Inf.
class Value {
  public:
    template <typename T>
    requires std::is_arithmetic_v<T> Value(
        T v) {  // NOLINT: implicit on purpose, so add({...}, counter.load()) just works
        if constexpr (std::is_floating_point_v<T>) {
            kind_ = Kind::Double;
            d_ = static_cast<double>(v);
        } else if constexpr (std::is_signed_v<T>) {
            kind_ = Kind::Int;
            i_ = static_cast<int64_t>(v);
        } else {
            kind_ = Kind::Uint;
            u_ = static_cast<uint64_t>(v);
        }
    }
    void append_to(std::string &out) const;

  private:
    enum class Kind { Int, Uint, Double } kind_;
    union {
        int64_t i_;
        uint64_t u_;
        double d_;
    };
};

// Escaping per the text format: label values escape backslash, double quote and newline;
// HELP text escapes backslash and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

class Writer;

// One metric family within a scrape. Obtained from Writer::family(); valid until the Writer
// is destroyed.
class Family {
  public:
    // Adds one sample. A sample with an invalid label name, or the same label set as an earlier
    // sample, is dropped (and counted in Writer::dropped()) because Prometheus rejects the whole
    // scrape for either.
    Family &add(std::initializer_list<Label> labels, Value value) {
        return add(std::span<const Label>(labels.begin(), labels.size()), value);
    }
    Family &add(std::span<const Label> labels, Value value);
    Family &add(Value value) { return add(std::span<const Label>(), value); }

  private:
    friend class Writer;
    Family(Writer *writer, std::string name, Type type, std::string help, bool sink)
        : writer_(writer),
          name_(std::move(name)),
          type_(type),
          help_(std::move(help)),
          sink_(sink) {}

    Writer *writer_;
    std::string name_;
    Type type_;
    std::string help_;
    bool sink_;                             // accepts samples and discards them
    std::unordered_set<std::string> seen_;  // label sets so far, for the duplicate check
    std::string samples_;
};

// Collects one scrape. Samples are grouped by family, so HELP and TYPE appear exactly once per
// family even when several collectors add to the same one; families come out in the order they
// were first declared.
class Writer {
  public:
    Writer() = default;
    Writer(const Writer &) = delete;
    Writer &operator=(const Writer &) = delete;

    // Declares (or finds) a family. Declaring a name again returns the same family; a second
    // declaration with another type, or an invalid name, returns a family that drops its samples.
    Family &family(std::string_view name, Type type, std::string_view help);
    Family &counter(std::string_view name, std::string_view help) {
        return family(name, Type::Counter, help);
    }
    Family &gauge(std::string_view name, std::string_view help) {
        return family(name, Type::Gauge, help);
    }

    // The exposition text: "# HELP", "# TYPE" and the samples of each family in turn.
    std::string text() const;
    // Samples and declarations rejected so far (see Family::add and family()).
    uint64_t dropped() const { return dropped_; }

  private:
    friend class Family;
    std::vector<std::unique_ptr<Family>> families_;
    std::map<std::string, Family *, std::less<>> by_name_;
    std::vector<std::unique_ptr<Family>> sinks_;
    uint64_t dropped_ = 0;
};

namespace detail {
struct RegistryState;
}

// Keeps a collector registered; destroying (or reset()) unregisters it. Once reset() returns,
// the collector is not running and will never run again, so the component may free what it
// reads. A Registration may outlive its Registry.
class Registration {
  public:
    Registration() = default;
    Registration(Registration &&other) noexcept;
    Registration &operator=(Registration &&other) noexcept;
    Registration(const Registration &) = delete;
    Registration &operator=(const Registration &) = delete;
    ~Registration() { reset(); }

    void reset();
    explicit operator bool() const { return id_ != 0; }

  private:
    friend class Registry;
    Registration(std::weak_ptr<detail::RegistryState> state, uint64_t id)
        : state_(std::move(state)), id_(id) {}
    std::weak_ptr<detail::RegistryState> state_;
    uint64_t id_ = 0;
};

// The set of collectors behind /metrics. Thread-safe. Collectors run on the scraping thread,
// one scrape at a time, in registration order; they must not register or unregister
// collectors themselves (that would deadlock).
class Registry {
  public:
    using Collector = std::function<void(Writer &)>;

    Registry();
    ~Registry();
    Registry(const Registry &) = delete;
    Registry &operator=(const Registry &) = delete;

    [[nodiscard]] Registration add(Collector collector);

    // Runs every collector into one Writer and returns the exposition text. A collector that
    // throws is logged and skipped; the samples it added before throwing are kept.
    std::string scrape() const;

  private:
    std::shared_ptr<detail::RegistryState> state_;
};

}  // namespace fabdns::metrics
