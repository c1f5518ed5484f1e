// The SAX-driven document decoder: envelope members and container elements are each built as a
// small tree under a size and depth budget, then handed to decode_element.
#include "model/document.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <vector>

namespace fabdns {

using nlohmann::json;

namespace {

// Builds one value from SAX events, within a byte and depth budget. Past the budget it stops
// storing but keeps following the structure (so the caller knows where the value ends) and
// still notes metadata.name and metadata.namespace, so an oversized object can be named.
class Builder {
  public:
    Builder(size_t max_bytes, size_t max_depth) : max_bytes_(max_bytes), max_depth_(max_depth) {}

    void reset() {
        root_ = json();
        stack_.clear();
        path_.clear();
        key_.clear();
        bytes_ = 0;
        depth_ = 0;
        overflow_.clear();
        meta_name_.reset();
        meta_ns_.reset();
        done_ = false;
    }

    // A scalar; true when it completes the root value.
    bool scalar(json v) {
        note_meta(v);
        add(std::move(v), false);
        if (depth_ == 0) done_ = true;
        return done_;
    }
    void open(bool object) {
        add(object ? json::object() : json::array(), true);
        depth_++;
        path_.push_back(object ? "" : "[]");
        if (depth_ > max_depth_ && overflow_.empty())
            overflow_ = "nested deeper than " + std::to_string(max_depth_) + " levels";
    }
    void key(std::string k) {
        bytes_ += k.size() + 16;
        if (!path_.empty()) path_.back() = k;
        key_ = std::move(k);
    }
    // True when it completes the root value.
    bool close() {
        depth_--;
        path_.pop_back();
        if (!stack_.empty()) stack_.pop_back();
        if (depth_ == 0) done_ = true;
        return done_;
    }

    json &value() { return root_; }
    size_t bytes() const { return bytes_; }
    const std::string &overflow() const { return overflow_; }
    // "namespace/name" noted on the way, "" when no name was seen.
    std::string noted_key() const {
        if (!meta_name_ || meta_name_->empty()) return "";
        return (meta_ns_ && !meta_ns_->empty() ? *meta_ns_ : std::string("default")) + "/" +
               *meta_name_;
    }

  private:
    void note_meta(const json &v) {
        if (depth_ != 2 || !v.is_string() || path_.size() != 2 || path_[0] != "metadata") return;
        if (path_[1] == "name") meta_name_ = v.get<std::string>();
        if (path_[1] == "namespace") meta_ns_ = v.get<std::string>();
    }

    void add(json v, bool container) {
        bytes_ += 16 + (v.is_string() ? v.get_ref<const std::string &>().size() : 0);
        if (overflow_.empty() && bytes_ > max_bytes_)
            overflow_ = "larger than " + std::to_string(max_bytes_) + " bytes";
        if (!overflow_.empty()) {
            // Nothing more is stored; what was built so far is dropped at once.
            if (!root_.is_null()) root_ = json();
            stack_.clear();
            return;
        }
        json *slot;
        if (depth_ == 0) {
            root_ = std::move(v);
            slot = &root_;
        } else {
            json &parent = *stack_.back();
            if (parent.is_object()) {
                slot = &parent[key_];
                *slot = std::move(v);
            } else {
                parent.push_back(std::move(v));
                slot = &parent.back();
            }
        }
        if (container) stack_.push_back(slot);
    }

    size_t max_bytes_, max_depth_;
    json root_;
    std::vector<json *> stack_;      // open containers of root_, innermost last
    std::vector<std::string> path_;  // the key (or "[]") at each open level
    std::string key_;
    size_t bytes_ = 0, depth_ = 0;
    std::string overflow_;
    std::optional<std::string> meta_name_, meta_ns_;
    bool done_ = false;
};

enum class Mode { Array, List, Manifest, Event };

// A string member of a mapping: "" when absent or null; false when of another type.
bool string_member(const json &obj, const char *key, std::string &out) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
}

// Follows the document's top levels and hands each envelope member and each element to a
// Builder. Elements are decoded as soon as they end.
class DocumentSax {
  public:
    DocumentSax(Mode mode, const DecodeLimits &limits, DocumentResult &out)
        : mode_(mode), limits_(limits), out_(out), b_(limits.max_object_bytes, limits.max_depth) {}

    bool null() { return scalar(json(nullptr)); }
    bool boolean(bool v) { return scalar(json(v)); }
    bool number_integer(json::number_integer_t v) { return scalar(json(v)); }
    bool number_unsigned(json::number_unsigned_t v) { return scalar(json(v)); }
    bool number_float(json::number_float_t v, const std::string &) { return scalar(json(v)); }
    bool string(std::string &v) { return scalar(json(std::move(v))); }
    bool binary(json::binary_t &) { return scalar(json(nullptr)); }

    bool start_object(size_t) { return open(true); }
    bool start_array(size_t) { return open(false); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(std::string &k) {
        if (building_) {
            b_.key(std::move(k));
        } else {
            member_ = std::move(k);
        }
        return true;
    }
    bool parse_error(size_t, const std::string &, const nlohmann::detail::exception &e) {
        out_.error = std::string("not valid JSON: ") + e.what();
        return false;
    }

    // The root object's members other than streamed items (each within the budget).
    json &envelope() { return envelope_; }
    bool streamed_items() const { return items_seen_; }
    bool root_array() const { return root_array_; }
    // An envelope member that was over budget: its name and the noted key.
    const std::string &envelope_overflow() const { return envelope_overflow_; }
    const std::string &envelope_overflow_key() const { return envelope_overflow_key_; }

  private:
    enum class Target { Element, Member };

    // "namespace/name" of the envelope read so far, as a fallback name for an oversized one.
    std::string envelope_key() const {
        auto md = envelope_.find("metadata");
        if (md == envelope_.end() || !md->is_object()) return "";
        std::string name, ns;
        if (!string_member(*md, "name", name) || name.empty()) return "";
        if (!string_member(*md, "namespace", ns)) return "";
        return (ns.empty() ? std::string("default") : ns) + "/" + name;
    }

    bool fail(std::string why) {
        out_.error = std::move(why);
        return false;
    }

    void begin(Target t) {
        b_.reset();
        building_ = true;
        target_ = t;
    }

    void finish() {
        building_ = false;
        if (target_ == Target::Member) {
            if (!b_.overflow().empty()) {
                envelope_overflow_ = member_ + ": " + b_.overflow();
                // A watch event's object names itself inside the member; a manifest's
                // metadata came (or not) before the oversized member.
                envelope_overflow_key_ = b_.noted_key();
                if (envelope_overflow_key_.empty()) envelope_overflow_key_ = envelope_key();
                envelope_bytes_ = limits_.max_object_bytes + 1;
                return;
            }
            envelope_bytes_ += b_.bytes();
            if (envelope_bytes_ > limits_.max_object_bytes) {
                envelope_overflow_ =
                    "larger than " + std::to_string(limits_.max_object_bytes) + " bytes";
                envelope_overflow_key_ = envelope_key();
                return;
            }
            envelope_[member_] = std::move(b_.value());
            return;
        }
        std::string locator = "items[" + std::to_string(index_++) + "]";
        if (!b_.overflow().empty()) {
            std::string key = b_.noted_key();
            out_.reject({key.empty() ? locator : key, "object " + b_.overflow(), key});
        } else {
            decode_element(b_.value(), locator, out_);
        }
        b_.reset();
    }

    // Where a value that starts now belongs, when no Builder is active.
    std::optional<Target> slot() const {
        if ((root_array_ && depth_ == 1) || (in_items_ && depth_ == 2)) return Target::Element;
        if (!root_array_ && depth_ == 1) return Target::Member;
        return std::nullopt;
    }

    bool scalar(json v) {
        if (building_) {
            if (b_.scalar(std::move(v))) finish();
            return true;
        }
        if (depth_ == 0)
            return fail(std::string("the document is ") + json_type_name(v) + ", " + expected());
        auto t = slot();
        if (!t) return true;
        begin(*t);
        if (b_.scalar(std::move(v))) finish();
        return true;
    }

    bool open(bool object) {
        if (building_) {
            b_.open(object);
            return true;
        }
        if (depth_ == 0) {
            if (object ? mode_ == Mode::Array : (mode_ == Mode::List || mode_ == Mode::Event))
                return fail(std::string("the document is ") + (object ? "a mapping" : "a list") +
                            ", " + expected());
            root_array_ = !object;
            depth_ = 1;
            return true;
        }
        if (!root_array_ && depth_ == 1 && !object && member_ == "items" && mode_ != Mode::Event) {
            in_items_ = items_seen_ = true;
            depth_ = 2;
            return true;
        }
        auto t = slot();
        if (!t) return true;
        begin(*t);
        b_.open(object);
        return true;
    }

    bool close() {
        if (building_) {
            if (b_.close()) finish();
            return true;
        }
        if (in_items_ && depth_ == 2) {
            in_items_ = false;
            depth_ = 1;
        } else if (depth_ > 0) {
            depth_--;
        }
        return true;
    }

    std::string expected() const {
        switch (mode_) {
            case Mode::Array:
                return "not an array of GlobalService objects";
            case Mode::List:
                return "not a list object ({\"items\": [...]})";
            case Mode::Manifest:
                return "not a GlobalService, a List or an array of them";
            case Mode::Event:
                return "not a watch event ({\"type\": ..., \"object\": ...})";
        }
        return "";
    }

    Mode mode_;
    const DecodeLimits &limits_;
    DocumentResult &out_;
    Builder b_;
    bool building_ = false;
    Target target_ = Target::Element;
    size_t depth_ = 0;  // structural levels open outside any Builder
    bool root_array_ = false, in_items_ = false, items_seen_ = false;
    std::string member_;  // the envelope member being read
    json envelope_ = json::object();
    size_t envelope_bytes_ = 0;
    std::string envelope_overflow_, envelope_overflow_key_;
    size_t index_ = 0;
};

void read_list_metadata(const json &env, DocumentResult &out) {
    auto md = env.find("metadata");
    if (md == env.end() || md->is_null()) return;
    if (!md->is_object()) {
        out.error = std::string("metadata: expected a mapping, got ") + json_type_name(*md);
        return;
    }
    if (!string_member(*md, "resourceVersion", out.resource_version))
        out.error = std::string("metadata.resourceVersion: expected a string, got ") +
                    json_type_name((*md)["resourceVersion"]);
    else if (!string_member(*md, "continue", out.continue_token))
        out.error = std::string("metadata.continue: expected a string, got ") +
                    json_type_name((*md)["continue"]);
}

// Runs the decoder over text. False, with `error` set (the decoder's own reason when it gave
// one), when the text did not decode.
bool run_sax(DocumentSax &sax, std::string_view text, std::string &error, const char *what) {
    bool ok = false;
    try {
        ok = json::sax_parse(text.begin(), text.end(), &sax);
    } catch (const std::exception &e) {
        // The SAX parser reports errors through parse_error; this is for anything unforeseen.
        if (error.empty()) error = std::string("cannot decode: ") + e.what();
    }
    if (ok && error.empty()) return true;
    if (error.empty()) error = std::string("cannot decode ") + what;
    return false;
}

}  // namespace

DocumentResult decode_json_document(std::string_view text, Container container,
                                    const DecodeLimits &limits) {
    DocumentResult out;
    Mode mode = container == Container::Array  ? Mode::Array
                : container == Container::List ? Mode::List
                                               : Mode::Manifest;
    DocumentSax sax(mode, limits, out);
    if (!run_sax(sax, text, out.error, "the document")) return out;
    if (sax.root_array()) return out;

    json &env = sax.envelope();
    if (!sax.envelope_overflow().empty()) {
        if (sax.streamed_items() || container == Container::List) {
            out.error = sax.envelope_overflow();
        } else {
            std::string key = sax.envelope_overflow_key();
            out.reject({key.empty() ? "document" : key, sax.envelope_overflow(), key});
        }
        return out;
    }
    if (auto items = env.find("items"); items != env.end() && !items->is_null()) {
        out.error = std::string("items: expected a list, got ") + json_type_name(*items);
        return out;
    }
    if (container == Container::List) {
        if (!sax.streamed_items() && !is_list_object(env)) {
            out.error = "no items: not a list object";
            return out;
        }
        read_list_metadata(env, out);
        return out;
    }
    // A manifest: a List (its items were decoded on the way) or one object.
    if (sax.streamed_items() || is_list_object(env)) return out;
    decode_element(env, "document", out);
    return out;
}

WatchEvent decode_watch_event(std::string_view line, const DecodeLimits &limits) {
    WatchEvent ev;
    DocumentResult scratch;
    DocumentSax sax(Mode::Event, limits, scratch);
    if (!run_sax(sax, line, scratch.error, "the event")) {
        ev.error = scratch.error;
        return ev;
    }
    json &env = sax.envelope();
    if (!string_member(env, "type", ev.type) || ev.type.empty()) {
        ev.error = "no type";
        return ev;
    }
    auto obj = env.find("object");
    bool object_overflow = sax.envelope_overflow().rfind("object:", 0) == 0;
    if (!object_overflow && (obj == env.end() || obj->is_null())) {
        ev.error = "no object";
        return ev;
    }
    if (object_overflow) {
        ev.key = sax.envelope_overflow_key();
        ev.rejection = sax.envelope_overflow();
        return ev;
    }
    if (ev.type == "ERROR") {
        if (obj->is_object()) {
            auto code = obj->find("code");
            if (code != obj->end()) {
                if (code->is_number_integer()) {
                    ev.code = code->get<int64_t>();
                } else if (code->is_string()) {
                    // A proxy may quote it; digits are the same code.
                    const std::string &s = code->get_ref<const std::string &>();
                    std::from_chars(s.data(), s.data() + s.size(), ev.code);
                }
            }
            string_member(*obj, "message", ev.message);
        }
        return ev;
    }
    if (obj->is_object()) {
        auto md = obj->find("metadata");
        if (md != obj->end() && md->is_object())
            string_member(*md, "resourceVersion", ev.resource_version);
    }
    DecodeResult one;
    decode_element(*obj, "object", one);
    if (!one.services.empty()) {
        ev.service = std::move(one.services.front());
        ev.key = ev.service->key();
    } else if (!one.rejected.empty()) {
        ev.key = one.rejected.front().key;
        ev.rejection = one.rejected.front().reason;
    } else {
        ev.rejection = "not a GlobalService";
    }
    return ev;
}

}  // namespace fabdns
