// Prometheus text format 0.0.4 rendering and the collector registry behind /metrics.
#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <utility>

#include "common/log.hpp"

namespace fabdns::metrics {

const char *to_string(Type type) {
    switch (type) {
        case Type::Counter:
            return "counter";
        case Type::Gauge:
            return "gauge";
        case Type::Untyped:
            return "untyped";
    }
    return "untyped";
}

void Value::append_to(std::string &out) const {
    char buf[32];
    std::to_chars_result r{};
    switch (kind_) {
        case Kind::Int:
            r = std::to_chars(buf, buf + sizeof(buf), i_);
            break;
        case Kind::Uint:
            r = std::to_chars(buf, buf + sizeof(buf), u_);
            break;
        case Kind::Double:
            if (std::isnan(d_)) {
                out += "NaN";
                return;
            }
            if (std::isinf(d_)) {
                out += d_ > 0 ? "+Inf" : "-Inf";
                return;
            }
            r = std::to_chars(buf, buf + sizeof(buf), d_);
            break;
    }
    out.append(buf, r.ptr);
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

static bool name_char(char c, bool first, bool colon_ok) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return alpha || (colon_ok && c == ':') || (!first && c >= '0' && c <= '9');
}

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); i++)
        if (!name_char(name[i], i == 0, true)) return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    // Names starting with "__" are reserved for Prometheus itself.
    if (name.empty() || name.substr(0, 2) == "__") return false;
    for (size_t i = 0; i < name.size(); i++)
        if (!name_char(name[i], i == 0, false)) return false;
    return true;
}

Family &Family::add(std::span<const Label> labels, Value value) {
    if (sink_) return *this;
    std::string key;
    for (size_t i = 0; i < labels.size(); i++) {
        if (!valid_label_name(labels[i].name)) {
            writer_->dropped_++;
            return *this;
        }
        for (size_t j = 0; j < i; j++) {
            if (labels[j].name == labels[i].name) {
                writer_->dropped_++;
                return *this;
            }
        }
        key += i ? "," : "{";
        key.append(labels[i].name);
        key += "=\"";
        key += escape_label_value(labels[i].value);
        key += '"';
    }
    if (!key.empty()) key += '}';
    // Label order does not make another series, so duplicates are found on the sorted set.
    // Escaped values hold no raw newline, which makes it a safe separator.
    std::string identity = key;
    if (labels.size() > 1) {
        std::vector<std::string> items;
        for (const auto &l : labels)
            items.push_back(std::string(l.name) + "=" + escape_label_value(l.value));
        std::sort(items.begin(), items.end());
        identity.clear();
        for (const auto &it : items) identity += it + '\n';
    }
    if (!seen_.insert(std::move(identity)).second) {
        writer_->dropped_++;
        return *this;
    }
    samples_ += name_;
    samples_ += key;
    samples_ += ' ';
    value.append_to(samples_);
    samples_ += '\n';
    return *this;
}

Family &Writer::family(std::string_view name, Type type, std::string_view help) {
    auto sink = [&]() -> Family & {
        dropped_++;
        sinks_.push_back(
            std::unique_ptr<Family>(new Family(this, std::string(name), type, "", true)));
        return *sinks_.back();
    };
    if (!valid_metric_name(name)) return sink();
    if (auto it = by_name_.find(name); it != by_name_.end()) {
        if (it->second->type_ != type) return sink();
        return *it->second;
    }
    families_.push_back(std::unique_ptr<Family>(
        new Family(this, std::string(name), type, std::string(help), false)));
    by_name_.emplace(std::string(name), families_.back().get());
    return *families_.back();
}

std::string Writer::text() const {
    std::string out;
    for (const auto &f : families_) {
        if (!f->help_.empty()) out += "# HELP " + f->name_ + " " + escape_help(f->help_) + "\n";
        out += "# TYPE " + f->name_ + " " + to_string(f->type_) + "\n";
        out += f->samples_;
    }
    return out;
}

namespace detail {
struct RegistryState {
    // Held for a whole scrape, so that unregistering waits for a running collector to finish.
    std::mutex mutex;
    uint64_t next_id = 1;
    std::vector<std::pair<uint64_t, Registry::Collector>> collectors;
};
}  // namespace detail

Registration::Registration(Registration &&other) noexcept
    : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}

Registration &Registration::operator=(Registration &&other) noexcept {
    if (this != &other) {
        reset();
        state_ = std::move(other.state_);
        id_ = std::exchange(other.id_, 0);
    }
    return *this;
}

void Registration::reset() {
    if (id_ == 0) return;
    if (auto state = state_.lock()) {
        std::lock_guard lock(state->mutex);
        auto &c = state->collectors;
        c.erase(std::remove_if(c.begin(), c.end(), [&](const auto &p) { return p.first == id_; }),
                c.end());
    }
    state_.reset();
    id_ = 0;
}

Registry::Registry() : state_(std::make_shared<detail::RegistryState>()) {}
Registry::~Registry() = default;

Registration Registry::add(Collector collector) {
    std::lock_guard lock(state_->mutex);
    uint64_t id = state_->next_id++;
    state_->collectors.emplace_back(id, std::move(collector));
    return Registration(state_, id);
}

std::string Registry::scrape() const {
    Writer w;
    {
        std::lock_guard lock(state_->mutex);
        for (const auto &[id, collect] : state_->collectors) {
            try {
                collect(w);
            } catch (const std::exception &e) {
                log::warn(std::string("metrics: a collector failed: ") + e.what());
            } catch (...) {
                log::warn("metrics: a collector failed");
            }
        }
    }
    if (w.dropped())
        log::warn("metrics: dropped " + std::to_string(w.dropped()) +
                  " invalid or duplicate samples or families");
    return w.text();
}

}  // namespace fabdns::metrics
