// Streaming decode of JSON and YAML documents that carry GlobalServices (the hub's array, a
// Kubernetes list, a manifest file, a watch event): the document is read as a stream of parser
// events and only one object at a time is held as a tree, so memory follows the largest object,
// not the document. JSON and YAML events feed the same builder and the same object decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "model/globalservice.hpp"

namespace fabdns {

// What a document is expected to hold. The objects inside are decoded by decode_element in every
// case; only the envelope differs.
enum class Container {
    Array,     // a JSON array of objects (the hub's /api/global-services, its snapshot)
    List,      // a Kubernetes list: {"kind": "...List", "metadata": {...}, "items": [...]}
    Manifest,  // a manifest file: one object, a List, or an array of objects
};

struct DecodeLimits {
    size_t max_object_bytes = size_t{1} << 20;  // one object's tree, estimated; larger: rejected
    size_t max_depth = 32;                      // nesting inside one object; deeper: rejected
};

struct DocumentResult : DecodeResult {
    std::string error;  // non-empty: the document is refused as a whole (syntax, shape)
    // A Kubernetes list's metadata (strings; any other type refuses the document).
    std::string resource_version, continue_token;
};

// Decodes `text` as `container`. Never throws for any input.
DocumentResult decode_json_document(std::string_view text, Container container,
                                    const DecodeLimits &limits = {});

// The outcome of each object of the last document decoded through it, by a digest of the
// object's exact bytes: decoding the next version of a document then decodes only the objects
// whose bytes changed. Holds one entry per object of that document (64 bytes each, the
// services themselves being shared with the set that holds them: 6.4 MB at 100,000 objects,
// twice that while the next document is decoded, plus a 4-8 byte index entry per object once a
// document moved objects). Not thread-safe: one per source.
class SpanCache {
  public:
    SpanCache();
    ~SpanCache();
    SpanCache(SpanCache &&) noexcept;
    SpanCache &operator=(SpanCache &&) noexcept;

    // Objects parsed and decoded through this cache (a reused outcome is not counted), and
    // documents that had to be decoded whole (see decode_json_document below).
    uint64_t objects_decoded() const { return objects_decoded_; }
    uint64_t documents_decoded_whole() const { return documents_decoded_whole_; }
    size_t size() const;  // entries held

    // Several documents that make one (the pages of a Kubernetes list): the entries of all of
    // them are kept until end_batch(), which keeps them for the next batch when `complete`,
    // else returns to the entries held before.
    void begin_batch();
    void end_batch(bool complete);

    struct Impl;

  private:
    friend DocumentResult decode_json_document(std::string_view, Container, const DecodeLimits &,
                                               SpanCache &);
    friend class DocumentStream;
    std::unique_ptr<Impl> impl_;
    uint64_t objects_decoded_ = 0, documents_decoded_whole_ = 0;
};

// The same result as the decode above (services in `shared` instead of `services`), computed
// through `cache`: when the document is an array of objects (a hub answer, a List's items, a
// manifest file that is either), each object's bytes are found by a bracket scan and only those
// not in the last document are parsed and decoded; the others give the outcome they gave then
// (the same service pointer, rejection or skip; an unnamed rejection only at the same
// position, as its name is the position). A List's other members are decoded as always. Any
// document that is not plainly so (an element that is not an object, a syntax error anywhere)
// is decoded whole, exactly as above.
DocumentResult decode_json_document(std::string_view text, Container container,
                                    const DecodeLimits &limits, SpanCache &cache);

// decode_json_document(text, container, limits, cache) for text that arrives in pieces, holding
// only the object being received (copied only when it spans two pieces) and a List's envelope:
// a hub answer (47 MB at 100,000 services) or a manifest file is never held whole. finish()
// gives that call's result, or nullopt when the text is not plainly an array of objects (or a
// List of them) or an element does not decode on its own: then only a decode of the whole text
// gives the result (a single object's manifest) or the error (with its line and column). The
// cache keeps the last document it finished until this one finishes; one not finished, or
// finished with nullopt, leaves it as it was. Not for a cache in a batch.
class DocumentStream {
  public:
    DocumentStream(Container container, const DecodeLimits &limits, SpanCache &cache);
    ~DocumentStream();
    DocumentStream(const DocumentStream &) = delete;
    DocumentStream &operator=(const DocumentStream &) = delete;

    void feed(std::string_view piece);
    // Already known to need the whole text (the rest need not be fed).
    bool irregular() const;
    std::optional<DocumentResult> finish();

  private:
    struct State;
    std::unique_ptr<State> s_;
};

// Decodes `text` as a YAML stream of manifests ("---" between documents), each document what a
// JSON manifest file may be (one object, a List, or a list of objects); an empty document is
// skipped. Plain scalars are typed by the YAML 1.2 core schema (`port: 80` is a number,
// `zone: "1"` and `zone: no` are strings); an explicit !!str or ! tag keeps a scalar a string.
// Anchors and aliases are expanded, within the object budget; an undefined, cyclic or oversized
// alias refuses the stream, as a syntax error does (`error`, with its line and column); so does
// a document that is not a manifest (a bare string, `items` that is not a list), as it refuses a
// JSON file. Unnamed objects are named "document N" or "document N items[I]".
// Never throws for any input.
DocumentResult decode_yaml_documents(std::string_view text, const DecodeLimits &limits = {});

// One line of a Kubernetes watch stream.
struct WatchEvent {
    std::string error;             // non-empty: the line is unusable (not JSON, no type or object)
    std::string type;              // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR, or anything else
    std::string key;               // "namespace/name" of the object, "" when it names none
    std::string resource_version;  // the object's metadata.resourceVersion, "" when absent
    std::optional<GlobalService> service;  // ADDED/MODIFIED: the decoded object...
    std::string rejection;                 // ...or why it was refused
    // ERROR: the Status object's code (a number, or a string of digits) and message.
    int64_t code = 0;
    std::string message;
};

// Decodes one watch event line. Never throws for any input.
WatchEvent decode_watch_event(std::string_view line, const DecodeLimits &limits = {});

}  // namespace fabdns
