// Streaming decode of JSON and YAML documents that carry GlobalServices (the hub's array, a
// Kubernetes list, a manifest file, a watch event): the document is read as a stream of parser
// events and only one object at a time is held as a tree, so memory follows the largest object,
// not the document. JSON and YAML events feed the same builder and the same object decoder.
#pragma once

#include <cstddef>
#include <cstdint>
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
