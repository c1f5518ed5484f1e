// The event-driven document decoder: JSON (nlohmann's SAX parser) and YAML (libyaml's event
// parser) events drive one DocumentSax, which builds envelope members and container elements
// each as a small tree under a size and depth budget and hands them to decode_element.
#include "model/document.hpp"

#include <yaml.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>
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
    // A scalar typed by its producer (the YAML reader).
    bool value(json v) { return scalar(std::move(v)); }

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

// What a document that parsed to its end holds, once its envelope is known: a List's metadata,
// or the one object of a manifest.
void finish_document(DocumentSax &sax, Container container, DocumentResult &out) {
    if (sax.root_array()) return;
    json &env = sax.envelope();
    if (!sax.envelope_overflow().empty()) {
        if (sax.streamed_items() || container == Container::List) {
            out.error = sax.envelope_overflow();
        } else {
            std::string key = sax.envelope_overflow_key();
            out.reject({key.empty() ? "document" : key, sax.envelope_overflow(), key});
        }
        return;
    }
    if (auto items = env.find("items"); items != env.end() && !items->is_null()) {
        out.error = std::string("items: expected a list, got ") + json_type_name(*items);
        return;
    }
    if (container == Container::List) {
        if (!sax.streamed_items() && !is_list_object(env)) {
            out.error = "no items: not a list object";
            return;
        }
        read_list_metadata(env, out);
        return;
    }
    // A manifest: a List (its items were decoded on the way) or one object.
    if (sax.streamed_items() || is_list_object(env)) return;
    decode_element(env, "document", out);
}

// --- YAML ----------------------------------------------------------------------------------

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// True when s[from..] is one or more decimal digits.
bool digits_from(std::string_view s, size_t from) {
    if (from >= s.size()) return false;
    for (size_t i = from; i < s.size(); i++)
        if (!is_digit(s[i])) return false;
    return true;
}

// Types a plain (unquoted, untagged) scalar by the YAML 1.2 core schema.
json plain_scalar(const std::string &s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;

    size_t start = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (digits_from(s, start)) {
        int64_t v = 0;
        const char *b = s.data() + (s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
        if (ec == std::errc() && end == s.data() + s.size()) return v;
        return s;  // out of range: keep the text, the decoder reports it
    }
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        int base = s[1] == 'x' ? 16 : 8;
        int64_t v = 0;
        auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, base);
        if (ec == std::errc() && end == s.data() + s.size()) return v;
    }
    // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    {
        size_t i = start, int_digits = 0, frac_digits = 0;
        while (i < s.size() && is_digit(s[i])) i++, int_digits++;
        bool dot = i < s.size() && s[i] == '.';
        if (dot) {
            i++;
            while (i < s.size() && is_digit(s[i])) i++, frac_digits++;
        }
        bool ok = int_digits > 0 || frac_digits > 0;
        if (ok && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
            size_t exp_digits = 0;
            while (i < s.size() && is_digit(s[i])) i++, exp_digits++;
            ok = exp_digits > 0;
        }
        if (ok && i == s.size() && (dot || s.find_first_of("eE") != std::string::npos)) {
            try {
                return std::stod(s);
            } catch (const std::exception &) {
                return s;
            }
        }
    }
    std::string_view body = std::string_view(s).substr(start);
    if (body == ".inf" || body == ".Inf" || body == ".INF")
        return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                           : std::numeric_limits<double>::infinity();
    if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
    return s;
}

// One node event of a YAML document, as delivered and as recorded under an anchor.
struct YamlNode {
    enum Kind : uint8_t { Scalar, MapStart, SeqStart, End } kind = Scalar;
    bool text_only = false;  // a quoted or !!str-tagged scalar: a string whatever it looks like
    std::string text;        // a scalar's text
};

// Reads a YAML stream with libyaml's event parser and feeds each document, event by event, to a
// DocumentSax in manifest mode: no document is ever held as a tree, only the object being built.
class YamlStream {
  public:
    YamlStream(std::string_view text, const DecodeLimits &limits, DocumentResult &out)
        : text_(text), limits_(limits), out_(out), alias_nodes_left_(text.size() + 1024) {}

    void run() {
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser)) {
            out_.error = "cannot decode YAML: out of memory";
            return;
        }
        yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char *>(text_.data()),
                                     text_.size());
        for (bool end = false; !end && out_.error.empty();) {
            yaml_event_t ev;
            if (!yaml_parser_parse(&parser, &ev)) {
                out_.error = parser_error(parser);
                break;
            }
            end = ev.type == YAML_STREAM_END_EVENT;
            event(ev);
            yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
    }

  private:
    // An anchored node's events, kept until the document ends for the aliases that name it.
    struct Anchor {
        std::vector<YamlNode> nodes;
        size_t open = 0;  // collections still open inside it; 0 once it is complete
    };
    struct Frame {
        bool map;
        bool want_key = true;     // a mapping's next node is a key
        bool skip_value = false;  // ...or the value of a key that cannot name a field
    };

    void event(const yaml_event_t &ev) {
        switch (ev.type) {
            case YAML_DOCUMENT_START_EVENT:
                begin_document();
                return;
            case YAML_DOCUMENT_END_EVENT:
                end_document();
                return;
            case YAML_SCALAR_EVENT: {
                YamlNode n;
                n.text.assign(reinterpret_cast<const char *>(ev.data.scalar.value),
                              ev.data.scalar.length);
                n.text_only = scalar_is_text(ev);
                node(std::move(n), ev.data.scalar.anchor);
                return;
            }
            case YAML_SEQUENCE_START_EVENT:
                node({YamlNode::SeqStart, false, {}}, ev.data.sequence_start.anchor);
                return;
            case YAML_MAPPING_START_EVENT:
                node({YamlNode::MapStart, false, {}}, ev.data.mapping_start.anchor);
                return;
            case YAML_SEQUENCE_END_EVENT:
            case YAML_MAPPING_END_EVENT:
                node({YamlNode::End, false, {}});
                return;
            case YAML_ALIAS_EVENT:
                alias(reinterpret_cast<const char *>(ev.data.alias.anchor), ev.start_mark);
                return;
            default:  // stream start and end
                return;
        }
    }

    // "!" (the non-specific tag of a quoted scalar) and !!str make a string; other tags
    // (!!int, !!bool, ...) ask for what the core schema gives the text; no tag: by style.
    static bool scalar_is_text(const yaml_event_t &ev) {
        if (const char *tag = reinterpret_cast<const char *>(ev.data.scalar.tag)) {
            std::string_view t(tag);
            return t == "!" || t == YAML_STR_TAG;
        }
        return ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    }

    void begin_document() {
        doc_no_++;
        doc_ = DocumentResult();
        sax_.emplace(Mode::Manifest, limits_, doc_);
        frames_.clear();
        anchors_.clear();
        anchor_index_.clear();
        recording_.clear();
        recorded_bytes_ = 0;
        anchors_dropped_ = false;
        skip_depth_ = 0;
        failed_ = empty_ = false;
    }

    // Moves the document's outcome into the stream's, its unnamed rejections named by it.
    void end_document() {
        std::string doc = "document " + std::to_string(doc_no_);
        if (!failed_ && !empty_) finish_document(*sax_, Container::Manifest, doc_);
        sax_.reset();
        anchors_.clear();
        anchor_index_.clear();
        recording_.clear();
        if (!doc_.error.empty()) {
            // As a JSON manifest that is no manifest refuses its file.
            out_.error = doc + ": " + doc_.error;
            return;
        }
        if (out_.services.empty()) {
            out_.services = std::move(doc_.services);
        } else {
            for (auto &svc : doc_.services) out_.services.push_back(std::move(svc));
        }
        for (auto &r : doc_.rejected) {
            if (r.key.empty()) r.object = r.object == "document" ? doc : doc + " " + r.object;
            out_.reject(std::move(r));
        }
        out_.unlisted_rejections += doc_.unlisted_rejections;
        out_.skipped += doc_.skipped;
    }

    // A node from the text (with its anchor, if any) or from an alias being expanded.
    void node(YamlNode n, const unsigned char *anchor = nullptr) {
        if (failed_ || empty_ || !out_.error.empty()) return;
        record(n);
        if (anchor) {
            std::string name(reinterpret_cast<const char *>(anchor));
            recorded_bytes_ += sizeof(Anchor) + name.size() + n.text.size() + sizeof(YamlNode);
            Anchor a;
            a.open = n.kind == YamlNode::Scalar ? 0 : 1;
            a.nodes.push_back(n);
            anchor_index_[std::move(name)] = anchors_.size();
            if (a.open) recording_.push_back(anchors_.size());
            anchors_.push_back(std::move(a));
            if (recorded_bytes_ > limits_.max_object_bytes) give_up_recording();
        }
        deliver(std::move(n));
    }

    void record(const YamlNode &n) {
        for (size_t i : recording_) {
            Anchor &a = anchors_[i];
            if (n.kind == YamlNode::MapStart || n.kind == YamlNode::SeqStart) a.open++;
            if (n.kind == YamlNode::End) a.open--;
            a.nodes.push_back(n);
            recorded_bytes_ += n.text.size() + sizeof(YamlNode);
        }
        std::erase_if(recording_, [&](size_t i) { return anchors_[i].open == 0; });
        if (recorded_bytes_ > limits_.max_object_bytes) give_up_recording();
    }

    // Past the budget every anchor of the document so far is dropped (an alias to one then
    // refuses the stream): anchors must not make memory follow the document.
    void give_up_recording() {
        anchors_.clear();
        anchor_index_.clear();
        recording_.clear();
        recorded_bytes_ = 0;
        anchors_dropped_ = true;
    }

    void alias(const char *name, const yaml_mark_t &mark) {
        if (failed_ || empty_ || !out_.error.empty()) return;
        auto it = anchor_index_.find(name);
        std::string star = std::string("alias *") + name;
        if (it == anchor_index_.end())
            return stream_error(
                mark,
                star + (anchors_dropped_ ? " names no anchor kept (anchored nodes of this document "
                                           "exceed " +
                                               std::to_string(limits_.max_object_bytes) + " bytes)"
                                         : " names no anchor before it"));
        const Anchor &a = anchors_[it->second];
        if (a.open) return stream_error(mark, star + " is inside the node it names (a cycle)");
        if (a.nodes.size() > alias_nodes_left_)
            return stream_error(mark, "aliases expand to more nodes than the text has bytes");
        alias_nodes_left_ -= a.nodes.size();
        // A copy: replaying can drop every anchor (the budget) while it runs.
        std::vector<YamlNode> nodes = a.nodes;
        for (YamlNode &n : nodes) {
            node(std::move(n));
            if (!out_.error.empty() || failed_) return;
        }
    }

    void stream_error(const yaml_mark_t &mark, const std::string &why) {
        out_.error = "invalid YAML at line " + std::to_string(mark.line + 1) + ", column " +
                     std::to_string(mark.column + 1) + ": " + why;
    }

    // Hands a node to the DocumentSax, keeping track of keys and values in mappings. A key that
    // is not a scalar cannot name a field: it is skipped with its value.
    void deliver(YamlNode n) {
        if (skip_depth_ > 0) {
            if (n.kind == YamlNode::End) {
                if (--skip_depth_ == 0) after_node();
            } else if (n.kind != YamlNode::Scalar) {
                skip_depth_++;
            }
            return;
        }
        if (n.kind == YamlNode::End) {
            bool map = frames_.back().map;
            frames_.pop_back();
            check(map ? sax_->end_object() : sax_->end_array());
            after_node();
            return;
        }
        Frame *f = frames_.empty() ? nullptr : &frames_.back();
        bool at_key = f && f->map && f->want_key;
        if (at_key && n.kind == YamlNode::Scalar) {
            check(sax_->key(n.text));
            f->want_key = false;
            return;
        }
        if (at_key || (f && f->map && f->skip_value)) {
            if (n.kind == YamlNode::Scalar)
                after_node();
            else
                skip_depth_ = 1;
            return;
        }
        if (n.kind == YamlNode::Scalar) {
            json v = n.text_only ? json(std::move(n.text)) : plain_scalar(n.text);
            if (!f && v.is_null()) {
                empty_ = true;  // "---" with nothing after it
                return;
            }
            check(sax_->value(std::move(v)));
            after_node();
            return;
        }
        bool map = n.kind == YamlNode::MapStart;
        frames_.push_back({map});
        check(map ? sax_->start_object(0) : sax_->start_array(0));
    }

    // A node in the current mapping or list is complete.
    void after_node() {
        if (frames_.empty() || !frames_.back().map) return;
        Frame &f = frames_.back();
        if (f.want_key) {  // a skipped key: its value goes too
            f.want_key = false;
            f.skip_value = true;
        } else {
            f.want_key = true;
            f.skip_value = false;
        }
    }

    // The DocumentSax refuses the document at its first false; the rest of it is read and
    // ignored.
    void check(bool ok) {
        if (!ok) failed_ = true;
    }

    static std::string parser_error(const yaml_parser_t &p) {
        std::string problem = p.problem ? p.problem : "cannot parse";
        if (p.error == YAML_MEMORY_ERROR) return "cannot decode YAML: out of memory";
        if (p.error == YAML_READER_ERROR)
            return "invalid YAML at byte " + std::to_string(p.problem_offset) + ": " + problem;
        std::string why = "invalid YAML at line " + std::to_string(p.problem_mark.line + 1) +
                          ", column " + std::to_string(p.problem_mark.column + 1) + ": " + problem;
        if (p.context)
            why += " (" + std::string(p.context) + " at line " +
                   std::to_string(p.context_mark.line + 1) + ", column " +
                   std::to_string(p.context_mark.column + 1) + ")";
        return why;
    }

    std::string_view text_;
    const DecodeLimits &limits_;
    DocumentResult &out_;
    size_t alias_nodes_left_;  // over the whole stream: a "billion laughs" stops here

    size_t doc_no_ = 0;
    DocumentResult doc_;
    std::optional<DocumentSax> sax_;
    std::vector<Frame> frames_;
    size_t skip_depth_ = 0;
    bool failed_ = false, empty_ = false;
    std::vector<Anchor> anchors_;
    std::unordered_map<std::string, size_t> anchor_index_;
    std::vector<size_t> recording_;  // anchors whose node is still open
    size_t recorded_bytes_ = 0;
    bool anchors_dropped_ = false;  // the budget dropped this document's anchors
};

}  // namespace

DocumentResult decode_json_document(std::string_view text, Container container,
                                    const DecodeLimits &limits) {
    DocumentResult out;
    Mode mode = container == Container::Array  ? Mode::Array
                : container == Container::List ? Mode::List
                                               : Mode::Manifest;
    DocumentSax sax(mode, limits, out);
    if (!run_sax(sax, text, out.error, "the document")) return out;
    finish_document(sax, container, out);
    return out;
}

DocumentResult decode_yaml_documents(std::string_view text, const DecodeLimits &limits) {
    DocumentResult out;
    YamlStream(text, limits, out).run();
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
