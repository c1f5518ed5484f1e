// One decoded value (an object of a document, an envelope member) as a flat tree: its nodes in one
// vector and its strings in one buffer, both kept from value to value, so that decoding a
// document of 100,000 objects allocates nothing per object once warm. Built by the document
// decoder from parser events; read by the object decoder through Ref.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabdns::tree {

enum class Type : uint8_t { Null, Bool, Int, Uint, Float, String, Array, Object };

// One scalar as a parser reports it (the string is copied into the tree).
struct Scalar {
    Type type = Type::Null;
    std::string_view text;  // String
    bool boolean = false;   // Bool
    int64_t i = 0;          // Int (negative integers)
    uint64_t u = 0;         // Uint (non-negative integers)
    double d = 0;           // Float
};

// How an error message names a value's type: "a mapping", "a list", "a string", "a number",
// "a boolean" or "null".
inline const char *type_name(Type t) {
    switch (t) {
        case Type::Null:
            return "null";
        case Type::Object:
            return "a mapping";
        case Type::Array:
            return "a list";
        case Type::String:
            return "a string";
        case Type::Bool:
            return "a boolean";
        case Type::Int:
        case Type::Uint:
        case Type::Float:
            return "a number";
    }
    return "an unsupported value";
}

inline constexpr uint32_t kNone = UINT32_MAX;

class Tree {
  public:
    struct Node {
        Type type = Type::Null;
        bool boolean = false;
        // The member's key in text_, when the parent is an object.
        uint32_t key_off = 0, key_len = 0;
        uint32_t off = 0, len = 0;             // String: its text in text_; containers: child count
        uint32_t first = kNone, last = kNone;  // containers: first and last child
        uint32_t next = kNone;                 // the next sibling
        union {
            int64_t i;
            uint64_t u;
            double d;
        };
        Node() : u(0) {}
    };

    void clear() {
        nodes_.clear();
        text_.clear();
    }
    bool empty() const { return nodes_.empty(); }

    // Appends a scalar or an empty container under `parent` (kNone: the root), with `key` when
    // the parent is an object; returns its index.
    uint32_t add_scalar(const Scalar &s, uint32_t parent, std::string_view key) {
        Node n;
        n.type = s.type;
        n.boolean = s.boolean;
        if (s.type == Type::Int) n.i = s.i;
        if (s.type == Type::Uint) n.u = s.u;
        if (s.type == Type::Float) n.d = s.d;
        if (s.type == Type::String) {
            n.off = static_cast<uint32_t>(text_.size());
            n.len = static_cast<uint32_t>(s.text.size());
            text_.append(s.text);
        }
        return link(n, parent, key);
    }
    uint32_t add_container(bool object, uint32_t parent, std::string_view key) {
        Node n;
        n.type = object ? Type::Object : Type::Array;
        return link(n, parent, key);
    }

    // Appends a copy of another tree's value under `parent`, as add_* do; recursive, so only for
    // trees within the builder's depth budget.
    uint32_t add_copy(const Tree &from, uint32_t from_node, uint32_t parent, std::string_view key);

    const Node &node(uint32_t i) const { return nodes_[i]; }
    std::string_view text(uint32_t off, uint32_t len) const {
        return std::string_view(text_).substr(off, len);
    }

  private:
    uint32_t link(Node &n, uint32_t parent, std::string_view key) {
        auto idx = static_cast<uint32_t>(nodes_.size());
        if (parent != kNone) {
            Node &p = nodes_[parent];
            if (p.type == Type::Object) {
                n.key_off = static_cast<uint32_t>(text_.size());
                n.key_len = static_cast<uint32_t>(key.size());
                text_.append(key);
            }
            if (p.last == kNone)
                p.first = idx;
            else
                nodes_[p.last].next = idx;
            p.last = idx;
            p.len++;
        }
        nodes_.push_back(n);
        return idx;
    }

    std::vector<Node> nodes_;
    std::string text_;
};

// A read-only view of one node: what the object decoder sees of a value.
class Ref {
  public:
    Ref(const Tree &t, uint32_t n) : t_(&t), n_(n) {}

    Type type() const { return node().type; }
    bool is_null() const { return type() == Type::Null; }
    bool is_object() const { return type() == Type::Object; }
    bool is_array() const { return type() == Type::Array; }
    bool is_string() const { return type() == Type::String; }
    std::string_view str() const { return t_->text(node().off, node().len); }
    std::string_view key() const { return t_->text(node().key_off, node().key_len); }
    bool boolean() const { return node().boolean; }
    int64_t as_int() const { return node().i; }
    uint64_t as_uint() const { return node().u; }
    double as_float() const { return node().d; }
    // Containers: the number of children.
    size_t size() const { return is_object() || is_array() ? node().len : 0; }

    // A member of an object, the last of equal keys (as a JSON object built from the same text
    // keeps it); nullopt when absent or null.
    std::optional<Ref> get(std::string_view k) const {
        if (!is_object()) return std::nullopt;
        uint32_t found = kNone;
        for (uint32_t c = node().first; c != kNone; c = t_->node(c).next)
            if (t_->text(t_->node(c).key_off, t_->node(c).key_len) == k) found = c;
        if (found == kNone || t_->node(found).type == Type::Null) return std::nullopt;
        return Ref(*t_, found);
    }

    // Calls f(index, child) for each child of a container in order, while f returns true; false
    // when f stopped it.
    template <class F>
    bool each(F &&f) const {
        size_t i = 0;
        for (uint32_t c = node().first; c != kNone; c = t_->node(c).next)
            if (!f(i++, Ref(*t_, c))) return false;
        return true;
    }

  private:
    const Tree::Node &node() const { return t_->node(n_); }
    const Tree *t_;
    uint32_t n_;
};

inline uint32_t Tree::add_copy(const Tree &from, uint32_t from_node, uint32_t parent,
                               std::string_view key) {
    const Node &src = from.node(from_node);
    if (src.type != Type::Object && src.type != Type::Array) {
        Node n = src;  // the scalar's payload as it is; its text and links are this tree's
        n.key_off = n.key_len = 0;
        n.next = kNone;
        if (n.type == Type::String) {
            n.off = static_cast<uint32_t>(text_.size());
            text_.append(from.text(src.off, src.len));
        }
        return link(n, parent, key);
    }
    uint32_t idx = add_container(src.type == Type::Object, parent, key);
    for (uint32_t c = src.first; c != kNone; c = from.node(c).next)
        add_copy(from, c, idx, from.text(from.node(c).key_off, from.node(c).key_len));
    return idx;
}

}  // namespace fabdns::tree
