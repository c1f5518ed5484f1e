// The event-driven document decoder: JSON (RapidJSON's SAX reader) and YAML (libyaml's event
// parser) events drive one DocumentSax, which builds envelope members and container elements
// each as a small tree (tree::Tree) under a size and depth budget and hands them to
// decode_element.
#include "model/document.hpp"

#include <yaml.h>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fabdns {

namespace {

// Builds one value from parser events into a tree::Tree, within a byte and depth budget. Past the
// budget it stops storing but keeps following the structure (so the caller knows where the value
// ends) and still notes metadata.name and metadata.namespace, so an oversized object can be
// named. The tree's storage is kept from value to value.
class Builder {
  public:
    Builder(size_t max_bytes, size_t max_depth) : max_bytes_(max_bytes), max_depth_(max_depth) {}

    const tree::Tree &tree() const { return tree_; }

    void reset() {
        tree_.clear();
        stack_.clear();
        key_.clear();
        bytes_ = 0;
        depth_ = 0;
        overflow_.clear();
        meta_name_.reset();
        meta_ns_.reset();
        root_object_ = in_metadata_ = done_ = false;
    }

    // A scalar; true when it completes the root value.
    bool scalar(const tree::Scalar &v) {
        note_meta(v);
        add(&v, false);
        if (depth_ == 0) done_ = true;
        return done_;
    }
    void open(bool object) {
        if (depth_ == 0) root_object_ = object;
        // metadata.name and .namespace are noted at depth 2, inside a "metadata" mapping.
        if (depth_ == 1) in_metadata_ = root_object_ && object && key_ == "metadata";
        add(nullptr, object);
        depth_++;
        if (depth_ > max_depth_ && overflow_.empty())
            overflow_ = "nested deeper than " + std::to_string(max_depth_) + " levels";
    }
    void key(std::string_view k) {
        bytes_ += k.size() + 16;
        key_.assign(k);
    }
    // True when it completes the root value.
    bool close() {
        depth_--;
        if (!stack_.empty()) stack_.pop_back();
        if (depth_ == 0) done_ = true;
        return done_;
    }

    // The value built; only when it completed within the budget.
    tree::Ref value() const { return tree::Ref(tree_, 0); }
    size_t bytes() const { return bytes_; }
    const std::string &overflow() const { return overflow_; }
    // "namespace/name" noted on the way, "" when no name was seen.
    std::string noted_key() const {
        if (!meta_name_ || meta_name_->empty()) return "";
        return (meta_ns_ && !meta_ns_->empty() ? *meta_ns_ : std::string("default")) + "/" +
               *meta_name_;
    }

  private:
    void note_meta(const tree::Scalar &v) {
        if (depth_ != 2 || !in_metadata_ || v.type != tree::Type::String) return;
        if (key_ == "name") meta_name_ = std::string(v.text);
        if (key_ == "namespace") meta_ns_ = std::string(v.text);
    }

    // A scalar (v) or an empty container (v null; `object` tells which).
    void add(const tree::Scalar *v, bool object) {
        bytes_ += 16 + (v && v->type == tree::Type::String ? v->text.size() : 0);
        if (overflow_.empty() && bytes_ > max_bytes_)
            overflow_ = "larger than " + std::to_string(max_bytes_) + " bytes";
        if (!overflow_.empty()) {
            // Nothing more is stored; what was built so far is dropped at once.
            tree_.clear();
            stack_.clear();
            return;
        }
        uint32_t parent = depth_ == 0 ? tree::kNone : stack_.back();
        if (v) {
            tree_.add_scalar(*v, parent, key_);
        } else {
            stack_.push_back(tree_.add_container(object, parent, key_));
        }
    }

    size_t max_bytes_, max_depth_;
    tree::Tree tree_;
    std::vector<uint32_t> stack_;  // open containers of tree_, innermost last
    std::string key_;              // the last key read
    size_t bytes_ = 0, depth_ = 0;
    std::string overflow_;
    std::optional<std::string> meta_name_, meta_ns_;
    bool root_object_ = false, in_metadata_ = false, done_ = false;
};

// Element: the document is one element of an array (SpanCache decodes elements one by one).
enum class Mode { Array, List, Manifest, Event, Element };

// A string member of a mapping: "" when absent or null; false when of another type.
bool string_member(const tree::Ref &obj, const char *key, std::string &out) {
    auto v = obj.get(key);
    if (!v) return true;
    if (!v->is_string()) return false;
    out.assign(v->str());
    return true;
}

tree::Tree empty_object() {
    tree::Tree t;
    t.add_container(true, tree::kNone, {});
    return t;
}

// Follows the document's top levels and hands each envelope member and each element to a
// Builder. Elements are decoded as soon as they end.
class DocumentSax {
  public:
    DocumentSax(Mode mode, const DecodeLimits &limits, DocumentResult &out)
        : mode_(mode), limits_(limits), out_(out), b_(limits.max_object_bytes, limits.max_depth) {}

    // Parser events (JSON and YAML alike); false refuses the document (`error` says why).
    bool value(const tree::Scalar &v) { return scalar(v); }
    bool start_object() { return open(true); }
    bool start_array() { return open(false); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(std::string_view k) {
        if (building_) {
            b_.key(k);
        } else {
            member_.assign(k);
        }
        return true;
    }

    // The root object's members other than streamed items (each within the budget).
    tree::Ref envelope() const { return tree::Ref(envelope_, 0); }
    bool streamed_items() const { return items_seen_; }
    // Element mode: the element's position in its array (names it when unnamed).
    void set_index(size_t index) { index_ = index; }
    bool root_array() const { return root_array_; }
    // An envelope member that was over budget: its name and the noted key.
    const std::string &envelope_overflow() const { return envelope_overflow_; }
    const std::string &envelope_overflow_key() const { return envelope_overflow_key_; }

  private:
    enum class Target { Element, Member };

    // "namespace/name" of the envelope read so far, as a fallback name for an oversized one.
    std::string envelope_key() const {
        auto md = envelope().get("metadata");
        if (!md || !md->is_object()) return "";
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
            envelope_.add_copy(b_.tree(), 0, 0, member_);
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

    bool scalar(const tree::Scalar &v) {
        if (building_) {
            if (b_.scalar(v)) finish();
            return true;
        }
        if (depth_ == 0)
            return fail(std::string("the document is ") + tree::type_name(v.type) + ", " +
                        expected());
        auto t = slot();
        if (!t) return true;
        begin(*t);
        if (b_.scalar(v)) finish();
        return true;
    }

    bool open(bool object) {
        if (building_) {
            b_.open(object);
            return true;
        }
        if (depth_ == 0 && mode_ == Mode::Element) {
            begin(Target::Element);
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
            case Mode::Element:
                return "not an object";
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
    std::string member_;                    // the envelope member being read
    tree::Tree envelope_ = empty_object();  // the root object's members read so far
    size_t envelope_bytes_ = 0;
    std::string envelope_overflow_, envelope_overflow_key_;
    size_t index_ = 0;
};

void read_list_metadata(const tree::Ref &env, DocumentResult &out) {
    auto md = env.get("metadata");
    if (!md) return;
    if (!md->is_object()) {
        out.error = std::string("metadata: expected a mapping, got ") + tree::type_name(md->type());
        return;
    }
    for (auto [key, dest] : {std::pair{"resourceVersion", &out.resource_version},
                             std::pair{"continue", &out.continue_token}}) {
        if (!string_member(*md, key, *dest)) {
            out.error = std::string("metadata.") + key + ": expected a string, got " +
                        tree::type_name(md->get(key)->type());
            return;
        }
    }
}

// RapidJSON's SAX reader driving a DocumentSax.
class JsonEvents : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, JsonEvents> {
  public:
    // The reader's own stack grows with nesting (4 bytes a level): a 64 MiB body of '[' must not
    // become 256 MiB. Objects themselves are refused far sooner (DecodeLimits::max_depth).
    static constexpr size_t kMaxNesting = 4096;

    // `depth`: levels already open around the text (an element's array and envelope).
    JsonEvents(DocumentSax &sax, std::string &error, size_t depth = 0)
        : sax_(sax), error_(error), depth_(depth) {}

    bool Null() { return sax_.value({}); }
    bool Bool(bool b) {
        tree::Scalar v;
        v.type = tree::Type::Bool;
        v.boolean = b;
        return sax_.value(v);
    }
    bool Int(int i) { return Int64(i); }
    bool Uint(unsigned u) { return Uint64(u); }
    bool Int64(int64_t i) {
        tree::Scalar v;
        v.type = tree::Type::Int;
        v.i = i;
        return sax_.value(v);
    }
    bool Uint64(uint64_t u) {
        tree::Scalar v;
        v.type = tree::Type::Uint;
        v.u = u;
        return sax_.value(v);
    }
    bool Double(double d) {
        tree::Scalar v;
        v.type = tree::Type::Float;
        v.d = d;
        return sax_.value(v);
    }
    bool String(const char *s, rapidjson::SizeType n, bool) {
        tree::Scalar v;
        v.type = tree::Type::String;
        v.text = std::string_view(s, n);
        return sax_.value(v);
    }
    bool Key(const char *s, rapidjson::SizeType n, bool) {
        return sax_.key(std::string_view(s, n));
    }
    bool StartObject() { return deeper() && sax_.start_object(); }
    bool EndObject(rapidjson::SizeType) {
        depth_--;
        return sax_.end_object();
    }
    bool StartArray() { return deeper() && sax_.start_array(); }
    bool EndArray(rapidjson::SizeType) {
        depth_--;
        return sax_.end_array();
    }

  private:
    bool deeper() {
        if (++depth_ <= kMaxNesting) return true;
        error_ = "nested deeper than " + std::to_string(kMaxNesting) + " levels";
        return false;
    }

    DocumentSax &sax_;
    std::string &error_;
    size_t depth_;
};

// "line L, column C" of a byte offset, for parse errors.
std::string text_position(std::string_view text, size_t offset) {
    offset = std::min(offset, text.size());
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < offset; i++)
        if (text[i] == '\n') line++, line_start = i + 1;
    return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

// Runs the decoder over text. False, with `error` set (the decoder's own reason when it gave
// one), when the text did not decode. The decoder's reader works in place on the text, without
// recursion, and validates UTF-8 as JSON requires.
bool run_sax(DocumentSax &sax, std::string_view text, std::string &error, const char *what,
             size_t depth = 0) {
    JsonEvents events(sax, error, depth);
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::Reader reader;
    rapidjson::ParseResult ok =
        reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
            ms, events);
    if (ok && error.empty()) {
        // The reader takes a NUL byte for the end of the text: what follows one is not JSON.
        if (ms.Tell() >= text.size()) return true;
        error = std::string("not valid JSON: a NUL byte at ") + text_position(text, ms.Tell());
        return false;
    }
    if (error.empty()) {
        if (ok.Code() == rapidjson::kParseErrorTermination)
            error = std::string("cannot decode ") + what;
        else
            error = std::string("not valid JSON: ") + rapidjson::GetParseError_En(ok.Code()) +
                    " at " + text_position(text, ok.Offset());
    }
    return false;
}

// What a document that parsed to its end holds, once its envelope is known: a List's metadata,
// or the one object of a manifest.
void finish_document(DocumentSax &sax, Container container, DocumentResult &out) {
    if (sax.root_array()) return;
    tree::Ref env = sax.envelope();
    if (!sax.envelope_overflow().empty()) {
        if (sax.streamed_items() || container == Container::List) {
            out.error = sax.envelope_overflow();
        } else {
            std::string key = sax.envelope_overflow_key();
            out.reject({key.empty() ? "document" : key, sax.envelope_overflow(), key});
        }
        return;
    }
    if (auto items = env.get("items")) {
        out.error = std::string("items: expected a list, got ") + tree::type_name(items->type());
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
tree::Scalar scalar_of(tree::Type type) {
    tree::Scalar v;
    v.type = type;
    return v;
}

tree::Scalar string_scalar(std::string_view s) {
    tree::Scalar v = scalar_of(tree::Type::String);
    v.text = s;
    return v;
}

tree::Scalar float_scalar(double d) {
    tree::Scalar v = scalar_of(tree::Type::Float);
    v.d = d;
    return v;
}

tree::Scalar int_scalar(int64_t i) {
    tree::Scalar v = scalar_of(i < 0 ? tree::Type::Int : tree::Type::Uint);
    v.i = i;
    if (i >= 0) v.u = static_cast<uint64_t>(i);
    return v;
}

tree::Scalar bool_scalar(bool b) {
    tree::Scalar v = scalar_of(tree::Type::Bool);
    v.boolean = b;
    return v;
}

// Types a plain (unquoted, untagged) scalar by the YAML 1.2 core schema; a string refers to `s`.
tree::Scalar plain_scalar(const std::string &s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
        return scalar_of(tree::Type::Null);
    if (s == "true" || s == "True" || s == "TRUE") return bool_scalar(true);
    if (s == "false" || s == "False" || s == "FALSE") return bool_scalar(false);

    size_t start = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (digits_from(s, start)) {
        int64_t v = 0;
        const char *b = s.data() + (s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
        if (ec == std::errc() && end == s.data() + s.size()) return int_scalar(v);
        return string_scalar(s);  // out of range: keep the text, the decoder reports it
    }
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        int base = s[1] == 'x' ? 16 : 8;
        int64_t v = 0;
        auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, base);
        if (ec == std::errc() && end == s.data() + s.size()) return int_scalar(v);
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
                return float_scalar(std::stod(s));
            } catch (const std::exception &) {
                return string_scalar(s);
            }
        }
    }
    std::string_view body = std::string_view(s).substr(start);
    if (body == ".inf" || body == ".Inf" || body == ".INF")
        return float_scalar(s[0] == '-' ? -std::numeric_limits<double>::infinity()
                                        : std::numeric_limits<double>::infinity());
    if (s == ".nan" || s == ".NaN" || s == ".NAN")
        return float_scalar(std::numeric_limits<double>::quiet_NaN());
    return string_scalar(s);
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
            tree::Scalar v = n.text_only ? string_scalar(n.text) : plain_scalar(n.text);
            if (!f && v.type == tree::Type::Null) {
                empty_ = true;  // "---" with nothing after it
                return;
            }
            check(sax_->value(v));
            after_node();
            return;
        }
        bool map = n.kind == YamlNode::MapStart;
        frames_.push_back({map});
        check(map ? sax_->start_object() : sax_->start_array());
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
    tree::Ref env = sax.envelope();
    if (!string_member(env, "type", ev.type) || ev.type.empty()) {
        ev.error = "no type";
        return ev;
    }
    auto obj = env.get("object");
    bool object_overflow = sax.envelope_overflow().rfind("object:", 0) == 0;
    if (!object_overflow && !obj) {
        ev.error = "no object";
        return ev;
    }
    if (object_overflow) {
        ev.key = sax.envelope_overflow_key();
        ev.rejection = sax.envelope_overflow();
        return ev;
    }
    if (ev.type == "ERROR") {
        if (auto code = obj->get("code")) {
            if (code->type() == tree::Type::Int) {
                ev.code = code->as_int();
            } else if (code->type() == tree::Type::Uint) {
                ev.code = static_cast<int64_t>(
                    std::min<uint64_t>(code->as_uint(), std::numeric_limits<int64_t>::max()));
            } else if (code->is_string()) {
                // A proxy may quote it; digits are the same code.
                std::string_view s = code->str();
                std::from_chars(s.data(), s.data() + s.size(), ev.code);
            }
        }
        string_member(*obj, "message", ev.message);
        return ev;
    }
    if (auto md = obj->get("metadata"); md && md->is_object())
        string_member(*md, "resourceVersion", ev.resource_version);
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

// --- SpanCache ---------------------------------------------------------------------------

namespace {

constexpr size_t kNone = std::string_view::npos;

bool json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_space(std::string_view t, size_t i) {
    while (i < t.size() && json_space(t[i])) ++i;
    return i;
}

// Nonzero when one of the eight bytes of `word` is the byte `b` repeated in `bytes`.
uint64_t has_byte(uint64_t word, uint64_t bytes) {
    uint64_t v = word ^ bytes;
    return (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
}

// One past the closing quote of the string that opens at t[i], or kNone. Only quotes and
// backslashes are looked at (a backslash hides the byte after it): the parser checks whatever
// it decodes. Eight bytes at a time: strings are most of a document's bytes.
size_t skip_string(std::string_view t, size_t i) {
    constexpr uint64_t kQuotes = 0x0101010101010101ULL * '"';
    constexpr uint64_t kBackslashes = 0x0101010101010101ULL * '\\';
    const size_t n = t.size();
    size_t at = i + 1;
    for (;;) {
        while (at + 8 <= n) {
            uint64_t word;
            std::memcpy(&word, t.data() + at, 8);
            if (has_byte(word, kQuotes) | has_byte(word, kBackslashes)) break;
            at += 8;
        }
        if (at >= n) return kNone;
        char c = t[at];
        if (c == '"') return at + 1;
        at += c == '\\' ? 2 : 1;
    }
}

// Where the bytes of a 64-byte block are quotes, backslashes, opening and closing brackets:
// one bit per byte.
struct Block {
    uint64_t quote = 0, backslash = 0, open = 0, close = 0;
};

#if defined(__SSE2__)
Block classify(const char *p) {
    Block b;
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i brace = _mm_set1_epi8('{'), bracket = _mm_set1_epi8('[');
    const __m128i brace_end = _mm_set1_epi8('}'), bracket_end = _mm_set1_epi8(']');
    auto bits = [](__m128i v, int k) {
        return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(v))) << (16 * k);
    };
    for (int k = 0; k < 4; ++k) {
        __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 16 * k));
        b.quote |= bits(_mm_cmpeq_epi8(x, quote), k);
        b.backslash |= bits(_mm_cmpeq_epi8(x, backslash), k);
        b.open |= bits(_mm_or_si128(_mm_cmpeq_epi8(x, brace), _mm_cmpeq_epi8(x, bracket)), k);
        b.close |=
            bits(_mm_or_si128(_mm_cmpeq_epi8(x, brace_end), _mm_cmpeq_epi8(x, bracket_end)), k);
    }
    return b;
}
#else
Block classify(const char *p) {
    Block b;
    for (int k = 0; k < 64; ++k) {
        uint64_t bit = uint64_t{1} << k;
        char c = p[k];
        if (c == '"') b.quote |= bit;
        if (c == '\\') b.backslash |= bit;
        if (c == '{' || c == '[') b.open |= bit;
        if (c == '}' || c == ']') b.close |= bit;
    }
    return b;
}
#endif

// Bit k set when an odd number of bits 0..k of x are: the bytes from an opening quote up to
// (not including) its closing quote.
uint64_t prefix_xor(uint64_t x) {
    for (int shift = 1; shift < 64; shift *= 2) x ^= x << shift;
    return x;
}

// Finds the bracket that closes an object or array, across as many pieces of text as it takes.
// Brackets in strings do not count; brackets of the wrong kind are left for the parser to
// refuse. Blocks of 64 bytes without a backslash are classified at once; others byte by byte.
class ContainerScan {
  public:
    // Scans t from `at` (the opening bracket, for the first piece): one past the bracket that
    // closes the container, or kNone when t ends first (then the next piece goes on from here).
    size_t run(std::string_view t, size_t at) {
        const size_t n = t.size();
        while (at + 64 <= n) {
            Block b = classify(t.data() + at);
            if (b.backslash == 0 && !escaped_) {
                uint64_t in = prefix_xor(b.quote) ^ (in_string_ ? ~uint64_t{0} : 0);
                uint64_t opens = b.open & ~in, brackets = (b.open | b.close) & ~in;
                for (; brackets != 0; brackets &= brackets - 1) {
                    int k = __builtin_ctzll(brackets);
                    if ((opens >> k) & 1) {
                        ++depth_;
                    } else if (--depth_ == 0) {
                        return at + static_cast<size_t>(k) + 1;
                    }
                }
                in_string_ = (in >> 63) != 0;
                at += 64;
                continue;
            }
            for (size_t stop = at + 64; at < stop; ++at)
                if (step(t[at])) return at + 1;
        }
        for (; at < n; ++at)
            if (step(t[at])) return at + 1;
        return kNone;
    }

  private:
    // One byte: true when it closes the container.
    bool step(char c) {
        if (in_string_) {
            if (escaped_) {
                escaped_ = false;
            } else if (c == '\\') {
                escaped_ = true;
            } else if (c == '"') {
                in_string_ = false;
            }
        } else if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if ((c == '}' || c == ']') && --depth_ == 0) {
            return true;
        }
        return false;
    }

    size_t depth_ = 0;
    bool in_string_ = false, escaped_ = false;
};

// One past the bracket that closes the object or array opening at t[i], or kNone.
size_t skip_container(std::string_view t, size_t i) {
    return ContainerScan().run(t, i);
}

// The objects of the array opening at t[i] (offset and length, from '{' to '}') and one past
// its ']' in `end`. False unless it is plainly a list of objects: '{...}' separated by commas
// and whitespace.
bool object_spans(std::string_view t, size_t i, std::vector<std::pair<size_t, size_t>> &spans,
                  size_t &end) {
    i = skip_space(t, i + 1);
    if (i < t.size() && t[i] == ']') {
        end = i + 1;
        return true;
    }
    for (;;) {
        if (i >= t.size() || t[i] != '{') return false;
        size_t e = skip_container(t, i);
        if (e == kNone) return false;
        spans.emplace_back(i, e - i);
        i = skip_space(t, e);
        if (i >= t.size()) return false;
        if (t[i] == ']') {
            end = i + 1;
            return true;
        }
        if (t[i] != ',') return false;
        i = skip_space(t, i + 1);
    }
}

// Where the value of the "items" member of the object opening at t[i] starts and ends, and
// its objects (object_spans), when it is plainly an array of objects, the object is the whole
// text, and it has one such member (spelled without escapes, as no key of that object may be).
bool items_member(std::string_view t, size_t i, size_t &from, size_t &to,
                  std::vector<std::pair<size_t, size_t>> &spans) {
    bool found = false;
    i = skip_space(t, i + 1);
    if (i < t.size() && t[i] == '}') return false;
    for (;;) {
        if (i >= t.size() || t[i] != '"') return false;
        size_t e = skip_string(t, i);
        if (e == kNone) return false;
        std::string_view key = t.substr(i + 1, e - i - 2);
        if (key.find('\\') != kNone) return false;
        i = skip_space(t, e);
        if (i >= t.size() || t[i] != ':') return false;
        i = skip_space(t, i + 1);
        if (i >= t.size()) return false;
        if (key == "items") {
            if (found || t[i] != '[') return false;
            found = true;
            from = i;
            if (!object_spans(t, i, spans, to)) return false;
            i = to;
        } else if (t[i] == '{' || t[i] == '[') {
            i = skip_container(t, i);
        } else if (t[i] == '"') {
            i = skip_string(t, i);
        } else {
            while (i < t.size() && t[i] != ',' && t[i] != '}' && !json_space(t[i])) ++i;
        }
        if (i == kNone) return false;
        i = skip_space(t, i);
        if (i >= t.size()) return false;
        if (t[i] == '}') break;
        if (t[i] != ',') return false;
        i = skip_space(t, i + 1);
    }
    return found && skip_space(t, i + 1) == t.size();
}

struct Digest {
    uint64_t low = 0, high = 0;
    bool operator==(const Digest &) const = default;
};

// Seeded once per process, so that nobody can prepare colliding objects in advance.
uint64_t process_seed() {
    static const uint64_t seed = [] {
        std::random_device rd;
        return (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }();
    return seed;
}

// What decoding one object's bytes gave (shared: an entry is copied into the next document's).
struct Outcome {
    Digest digest;
    ServicePtr service;                          // a GlobalService...
    std::shared_ptr<const Rejection> rejection;  // ...or a rejection...
    bool skipped = false;                        // ...or another kind
    size_t index = 0;                            // its position (names an unnamed rejection)
};

// The outcome of one element decoded on its own, as the whole document's decode gives it at
// `index`; false when the text is not one valid JSON value or not exactly one outcome.
bool decode_span(std::string_view span, size_t index, size_t nesting, const DecodeLimits &limits,
                 Outcome &o) {
    DocumentResult one;
    DocumentSax sax(Mode::Element, limits, one);
    sax.set_index(index);
    if (!run_sax(sax, span, one.error, "the element", nesting)) return false;
    size_t outcomes = one.services.size() + one.rejected.size() + one.skipped;
    if (outcomes != 1 || one.unlisted_rejections != 0) return false;
    o.index = index;
    if (!one.services.empty()) {
        o.service = std::make_shared<const GlobalService>(std::move(one.services.front()));
    } else if (!one.rejected.empty()) {
        o.rejection = std::make_shared<const Rejection>(std::move(one.rejected.front()));
    } else {
        o.skipped = true;
    }
    return true;
}

}  // namespace

// The outcomes of the last document in its order, and of the current one as it is decoded.
// Documents mostly keep their order from one version to the next: each object is looked for
// just after the last one found (a read of the next entry, no hashing); only an object not
// there is looked up in an index by digest (open addressing), built at the first such miss.
struct SpanCache::Impl {
    std::vector<Outcome> last, next;
    DecodeLimits limits;
    bool batch = false;
    size_t cursor = 0;
    std::vector<uint32_t> index;  // positions in `last` + 1, by digest; 0: empty

    static constexpr size_t kBehind = 2, kAhead = 6;

    const Outcome *find(const Digest &d) {
        size_t from = cursor > kBehind ? cursor - kBehind : 0;
        size_t to = std::min(last.size(), cursor + kAhead);
        for (size_t k = from; k < to; ++k) {
            if (last[k].digest == d) {
                cursor = k + 1;
                return &last[k];
            }
        }
        if (last.empty()) return nullptr;
        if (index.empty()) build_index();
        const size_t mask = index.size() - 1;
        for (size_t slot = d.low & mask; index[slot] != 0; slot = (slot + 1) & mask) {
            size_t k = index[slot] - 1;
            if (last[k].digest == d) {
                cursor = k + 1;
                return &last[k];
            }
        }
        return nullptr;
    }

    void build_index() {
        size_t size = 16;
        while (size < 2 * last.size()) size *= 2;
        index.assign(size, 0);
        const size_t mask = size - 1;
        for (size_t k = 0; k < last.size(); ++k) {
            size_t slot = last[k].digest.low & mask;
            while (index[slot] != 0) slot = (slot + 1) & mask;
            index[slot] = static_cast<uint32_t>(k + 1);
        }
    }

    // The current document (batch) is done: its outcomes are the ones held from now on.
    void commit() {
        last.swap(next);
        next.clear();
        restart();
    }

    // The current document (batch) is not kept: the outcomes held before it stay.
    void roll_back() {
        next.clear();
        restart();
    }

    void restart() {
        cursor = 0;
        index = {};
    }
};

SpanCache::SpanCache() : impl_(std::make_unique<Impl>()) {}
SpanCache::~SpanCache() = default;
SpanCache::SpanCache(SpanCache &&) noexcept = default;
SpanCache &SpanCache::operator=(SpanCache &&) noexcept = default;

size_t SpanCache::size() const {
    return impl_->last.size() + impl_->next.size();
}

void SpanCache::begin_batch() {
    impl_->batch = true;
}

void SpanCache::end_batch(bool complete) {
    impl_->batch = false;
    if (complete) {
        impl_->commit();
    } else {
        impl_->roll_back();
    }
}

namespace {

// The outcome of the object `span`, element `n` of its array, into `out` and the cache's next
// document: the last document's outcome for the same bytes, else decoded. False when it does
// not decode on its own.
bool take_span(std::string_view span, size_t n, size_t nesting, const DecodeLimits &limits,
               SpanCache::Impl &c, DocumentResult &out, uint64_t &decoded) {
    XXH128_hash_t h = XXH3_128bits_withSeed(span.data(), span.size(), process_seed());
    Digest d{h.low64, h.high64};
    const Outcome *o = c.find(d);
    // An unnamed rejection is named by its position: elsewhere it is decoded again.
    if (o && o->rejection && o->rejection->key.empty() && o->index != n) o = nullptr;
    if (o) {
        c.next.push_back(*o);
    } else {
        Outcome fresh;
        fresh.digest = d;
        if (!decode_span(span, n, nesting, limits, fresh)) return false;
        ++decoded;
        c.next.push_back(std::move(fresh));
    }
    const Outcome &got = c.next.back();
    if (got.service) {
        out.shared.push_back(got.service);
    } else if (got.rejection) {
        out.reject(*got.rejection);
    } else {
        out.skipped++;
    }
    return true;
}

// Clears the cache's outcomes when they were decoded under other limits.
void use_limits(SpanCache::Impl &c, const DecodeLimits &limits) {
    if (c.limits.max_object_bytes == limits.max_object_bytes &&
        c.limits.max_depth == limits.max_depth)
        return;
    c.last.clear();
    c.next.clear();
    c.restart();
    c.limits = limits;
}

// A List's envelope (kind, metadata, ...) with "[]" for its items, decoded as always: its
// metadata into `out`. False when it is refused or holds an object after all.
bool take_envelope(std::string_view envelope, Container container, const DecodeLimits &limits,
                   DocumentResult &out) {
    DocumentResult env = decode_json_document(envelope, container, limits);
    if (!env.error.empty() || !env.services.empty() || !env.rejected.empty() || env.skipped != 0 ||
        env.unlisted_rejections != 0)
        return false;
    out.resource_version = std::move(env.resource_version);
    out.continue_token = std::move(env.continue_token);
    return true;
}

// decode_json_document through the cache, for a document that is plainly an array of objects
// (or a List of them); false when it is not, or when any element does not decode on its own
// (then the document is decoded whole).
bool decode_spans(std::string_view text, Container container, const DecodeLimits &limits,
                  SpanCache::Impl &c, DocumentResult &out, uint64_t &decoded) {
    size_t i = skip_space(text, 0);
    if (i >= text.size()) return false;
    size_t from = 0, to = 0, nesting = 0;
    std::vector<std::pair<size_t, size_t>> spans;
    if (text[i] == '[' && container != Container::List) {
        if (!object_spans(text, i, spans, to) || skip_space(text, to) != text.size()) return false;
        nesting = 1;
    } else if (text[i] == '{' && container != Container::Array) {
        if (!items_member(text, i, from, to, spans)) return false;
        nesting = 2;
    } else {
        return false;
    }
    if (nesting == 2) {
        // The envelope (kind, metadata, ...) is decoded as always, with an empty list of items.
        std::string envelope;
        envelope.reserve(text.size() - (to - from) + 2);
        envelope.append(text.substr(0, from)).append("[]").append(text.substr(to));
        if (!take_envelope(envelope, container, limits, out)) return false;
    }
    out.shared.reserve(spans.size());
    c.next.reserve(c.next.size() + spans.size());
    for (size_t n = 0; n < spans.size(); ++n) {
        if (!take_span(text.substr(spans[n].first, spans[n].second), n, nesting, limits, c, out,
                       decoded))
            return false;
    }
    return true;
}

}  // namespace

DocumentResult decode_json_document(std::string_view text, Container container,
                                    const DecodeLimits &limits, SpanCache &cache) {
    SpanCache::Impl &c = *cache.impl_;
    use_limits(c, limits);
    DocumentResult out;
    size_t next_before = c.next.size();
    if (decode_spans(text, container, limits, c, out, cache.objects_decoded_)) {
        if (!c.batch) c.commit();
        return out;
    }
    if (c.batch) {
        c.next.resize(next_before);  // this page's part
    } else {
        c.roll_back();
    }
    cache.documents_decoded_whole_++;
    out = decode_json_document(text, container, limits);
    cache.objects_decoded_ += out.services.size() + out.rejected_count() + out.skipped;
    out.shared.reserve(out.services.size());
    for (auto &svc : out.services)
        out.shared.push_back(std::make_shared<const GlobalService>(std::move(svc)));
    out.services = std::vector<GlobalService>();
    return out;
}

// --- DocumentStream ----------------------------------------------------------------------

struct DocumentStream::State {
    State(Container k, const DecodeLimits &l, SpanCache &cache)
        : container(k), limits(l), owner(cache), c(*cache.impl_) {}

    // Which part of the document the text is in: before its first byte, in an array of objects
    // (the whole document), in a List's envelope, in its items' array, after its last '}', or
    // somewhere decode_spans would refuse.
    enum class Part { Start, Array, Envelope, Items, After, Irregular };
    // Where an array's text is: before '[', after it, inside an object, after an object, after
    // a comma, after ']', or somewhere object_spans would refuse.
    enum class At { Start, First, Object, AfterObject, AfterComma, End, Irregular };
    Container container;
    Part part = Part::Start;
    At at = At::Start;
    DecodeLimits limits;
    SpanCache &owner;
    SpanCache::Impl &c;
    DocumentResult out;
    ContainerScan scan;
    std::string object;  // the start of an object that began in an earlier piece
    size_t index = 0;
    bool finished = false;

    // A List's envelope, byte by byte (it is small): its text with "[]" for the items, and
    // where its members' keys are, as items_member finds them.
    std::string envelope;
    size_t depth = 0;
    bool in_string = false, escaped = false;
    bool key_next = false;  // at depth 1 after '{' or ',': the next string is a key
    bool in_key = false;    // that key is being read (from key_from in `envelope`)
    size_t key_from = 0;
    bool items_key = false;    // the last key at depth 1 was "items"...
    bool items_value = false;  // ...and its ':' came: the next byte starts its value
    bool items_seen = false;

    bool irregular() const { return part == Part::Irregular; }

    void feed(std::string_view t) {
        size_t i = 0;
        while (i < t.size() && part != Part::Irregular) {
            switch (part) {
                case Part::Start:
                    if (json_space(t[i])) {
                        ++i;
                    } else if (t[i] == '[' && container != Container::List) {
                        part = Part::Array;
                    } else if (t[i] == '{' && container != Container::Array) {
                        part = Part::Envelope;
                    } else {
                        part = Part::Irregular;
                    }
                    break;
                case Part::Array:
                case Part::Items:
                    i = feed_array(t, i, part == Part::Items);
                    if (at == At::Irregular) part = Part::Irregular;
                    if (part == Part::Items && at == At::End) part = Part::Envelope;
                    break;
                case Part::Envelope:
                    i = feed_envelope(t, i);
                    break;
                default:  // After
                    if (!json_space(t[i])) part = Part::Irregular;
                    ++i;
            }
        }
    }

    // The array's text from t[i]: returns where it stopped (t's end, or one past the ']' of a
    // List's items).
    size_t feed_array(std::string_view t, size_t i, bool items) {
        const size_t nesting = items ? 2 : 1;
        while (i < t.size() && at != At::Irregular) {
            if (at == At::Object) {
                size_t e = scan.run(t, i);
                if (e == kNone) {
                    object.append(t.substr(i));
                    return t.size();
                }
                std::string_view span = t.substr(i, e - i);
                if (!object.empty()) span = object.append(span);
                at = take_span(span, index, nesting, limits, c, out, owner.objects_decoded_)
                         ? At::AfterObject
                         : At::Irregular;
                ++index;
                object.clear();
                i = e;
                continue;
            }
            char ch = t[i];
            if (json_space(ch)) {
                ++i;
                continue;
            }
            if (at == At::Start && ch == '[') {
                at = At::First;
                ++i;
            } else if ((at == At::First || at == At::AfterComma) && ch == '{') {
                scan = ContainerScan();
                at = At::Object;  // the scan starts at the '{'
            } else if ((at == At::First || at == At::AfterObject) && ch == ']') {
                at = At::End;
                ++i;
                if (items) return i;
            } else if (at == At::AfterObject && ch == ',') {
                at = At::AfterComma;
                ++i;
            } else {
                at = At::Irregular;
            }
        }
        return i;
    }

    // The envelope's text from t[i], up to its end or the items' '[' (not consumed). Refuses
    // what items_member refuses: a key with an escape, "items" twice or not an array.
    size_t feed_envelope(std::string_view t, size_t i) {
        for (; i < t.size(); ++i) {
            char ch = t[i];
            if (in_string) {
                envelope += ch;
                if (escaped) {
                    escaped = false;
                } else if (ch == '\\') {
                    if (in_key) return fail(i);
                    escaped = true;
                } else if (ch == '"') {
                    in_string = false;
                    if (in_key) {
                        in_key = false;
                        items_key = std::string_view(envelope).substr(key_from) == "items\"";
                    }
                }
                continue;
            }
            if (json_space(ch)) {
                envelope += ch;
                continue;
            }
            if (items_value) {
                items_value = false;
                if (ch != '[' || items_seen) return fail(i);
                items_seen = true;
                envelope += "[]";
                part = Part::Items;
                return i;
            }
            envelope += ch;
            const bool after_items_key = items_key;
            items_key = false;
            if (ch == '"') {
                in_string = true;
                in_key = depth == 1 && key_next;
                key_from = envelope.size();
                key_next = false;
            } else if (ch == '{' || ch == '[') {
                key_next = ++depth == 1;
            } else if (ch == '}' || ch == ']') {
                if (depth == 0) return fail(i);
                if (--depth == 0) {
                    part = Part::After;
                    return i + 1;
                }
            } else if (ch == ',' && depth == 1) {
                key_next = true;
            } else if (ch == ':' && depth == 1) {
                items_value = after_items_key;
            }
        }
        return i;
    }

    size_t fail(size_t i) {
        part = Part::Irregular;
        return i;
    }

    // The result, as decode_spans gives it, or nullopt.
    std::optional<DocumentResult> result() {
        if (part == Part::Array && at == At::End) return std::move(out);
        if (part != Part::After || !items_seen) return std::nullopt;
        if (!take_envelope(envelope, container, limits, out)) return std::nullopt;
        return std::move(out);
    }
};

DocumentStream::DocumentStream(Container container, const DecodeLimits &limits, SpanCache &cache)
    : s_(std::make_unique<State>(container, limits, cache)) {
    use_limits(s_->c, limits);
    s_->c.next.reserve(s_->c.last.size());
}

DocumentStream::~DocumentStream() {
    if (!s_->finished) s_->c.roll_back();
}

void DocumentStream::feed(std::string_view piece) {
    s_->feed(piece);
}

bool DocumentStream::irregular() const {
    return s_->irregular();
}

std::optional<DocumentResult> DocumentStream::finish() {
    s_->finished = true;
    std::optional<DocumentResult> got = s_->result();
    if (got) {
        s_->c.commit();
    } else {
        s_->c.roll_back();
    }
    return got;
}

}  // namespace fabdns
