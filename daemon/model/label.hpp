// Label: an interned, immutable string (a cluster, zone, region, port name or protocol) as
// one pointer, so that the few distinct values repeated across every endpoint of every
// service are stored once and compare by pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>

namespace fabdns {

// A string held in a process-wide pool: equal live strings are one reference-counted entry, so
// a Label is 8 bytes and == is a pointer comparison. The entry goes when its last Label does
// (a hub sending a new random zone every poll must not grow the pool). The empty string is the
// null pointer and takes no entry. Safe to create, copy and destroy on any thread.
class Label {
  public:
    Label() noexcept = default;
    // Implicit both ways, as a std::string field was: assignments from strings and reads as
    // strings compile unchanged.
    Label(std::string_view text) : e_(intern(text)) {}
    Label(const std::string &text) : Label(std::string_view(text)) {}
    Label(const char *text) : Label(std::string_view(text)) {}
    Label(const Label &o) noexcept : e_(o.e_) {
        if (e_) e_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    Label(Label &&o) noexcept : e_(o.e_) { o.e_ = nullptr; }
    Label &operator=(Label o) noexcept {
        std::swap(e_, o.e_);
        return *this;
    }
    ~Label() {
        if (e_) release(e_);
    }

    const std::string &str() const noexcept { return e_ ? e_->text : empty_string(); }
    operator const std::string &() const noexcept { return str(); }
    operator std::string_view() const noexcept { return str(); }
    bool empty() const noexcept { return e_ == nullptr; }
    size_t size() const noexcept { return str().size(); }

    // Equal strings are the same entry while both are alive, so the pointer decides.
    friend bool operator==(const Label &a, const Label &b) noexcept { return a.e_ == b.e_; }
    friend bool operator==(const Label &a, std::string_view b) noexcept { return a.str() == b; }
    friend bool operator==(const Label &a, const std::string &b) noexcept { return a.str() == b; }
    friend bool operator==(const Label &a, const char *b) noexcept { return a.str() == b; }

    // Concatenation as with std::string, so that names are built as before.
    friend std::string operator+(const Label &a, const char *b) { return a.str() + b; }
    friend std::string operator+(const Label &a, const std::string &b) { return a.str() + b; }
    friend std::string operator+(const char *a, const Label &b) { return a + b.str(); }
    friend std::string operator+(const std::string &a, const Label &b) { return a + b.str(); }

    // The number of distinct non-empty strings held now (for tests and diagnostics).
    static size_t pool_size();

  private:
    struct Entry {
        std::atomic<uint32_t> refs;
        const std::string text;
    };
    static Entry *intern(std::string_view text);
    static void release(Entry *e) noexcept;
    static const std::string &empty_string() noexcept;

    Entry *e_ = nullptr;
};

std::ostream &operator<<(std::ostream &out, const Label &label);

}  // namespace fabdns
