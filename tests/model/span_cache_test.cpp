// SpanCache: a document decoded through the cache gives exactly what the whole decode gives, for
// random sequences of edits; unchanged objects are not decoded again and keep their pointers.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "model/document.hpp"

namespace fabdns {
namespace {

// What one element of a generated document is.
enum Kind {
    Valid,         // a GlobalService
    BadAddress,    // a named object with an invalid address: a named rejection
    Unnamed,       // an object without metadata: an unnamed rejection (named by position)
    OtherKind,     // a ConfigMap: skipped
    Oversized,     // larger than the object budget
    TooDeep,       // nested deeper than the depth budget
    DuplicateKey,  // metadata.name twice: the last counts
    NotAnObject,   // a number: not cacheable, the document is decoded whole
    kKinds
};

struct Element {
    int kind = Valid;
    int name = 0;         // from a small pool, so that names repeat
    int variant = 0;      // the address, and so the bytes
    bool tricky = false;  // an unknown field with brackets, quotes and escapes in its strings
};

std::string element_text(const Element &e) {
    std::string name = "svc" + std::to_string(e.name);
    std::string ns =
        e.name % 3 == 0 ? "" : ",\"namespace\":\"ns" + std::to_string(e.name % 3) + "\"";
    std::string extra =
        e.tricky ? ",\"note\":\"a\\\"}]{[\\\\\",\"n2\":[\"]\",{\"}\":\"\\u005d\"}]" : "";
    std::string address = "10.0." + std::to_string(e.variant % 200) + ".1";
    auto spec = [&](const std::string &addr) {
        return "\"spec\":{\"type\":\"ClusterIP\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}],"
               "\"endpoints\":[{\"addresses\":[\"" +
               addr + "\"],\"cluster\":\"c1\"}]}";
    };
    switch (e.kind) {
        case Valid:
            return "{\"metadata\":{\"name\":\"" + name + "\"" + ns + "}" + extra + "," +
                   spec(address) + "}";
        case BadAddress:
            return "{\"metadata\":{\"name\":\"" + name + "\"" + ns + "}," + spec("10.0.0.300") +
                   extra + "}";
        case Unnamed:
            return "{" + spec(address) + extra + "}";
        case OtherKind:
            return "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"" + name + "\"}" + extra + "}";
        case Oversized: {
            std::string eps;
            for (int i = 0; i < 40; i++)
                eps += std::string(i ? "," : "") + "{\"addresses\":[\"" + address +
                       "\"],\"cluster\":\"cluster-with-a-long-name\"}";
            return "{\"metadata\":{\"name\":\"" + name + "\"" + ns + "},\"spec\":{\"endpoints\":[" +
                   eps + "]}}";
        }
        case TooDeep:
            return "{\"metadata\":{\"name\":\"" + name + "\"},\"x\":" + std::string(12, '[') +
                   std::string(12, ']') + "," + spec(address) + "}";
        case DuplicateKey:
            return "{\"metadata\":{\"name\":\"zzz\",\"name\":\"" + name + "\"" + ns + "}," +
                   spec(address) + "}";
        default:
            return std::to_string(e.variant);
    }
}

struct Doc {
    Container container = Container::Array;
    bool list_form = false;  // a List envelope (List; Manifest may be either)
    int envelope = 0;        // which envelope variant
    std::vector<Element> elements;
    std::vector<int> separators;
};

std::string document_text(const Doc &d) {
    static const char *const seps[] = {",", " , ", ",\n  ", "\n,\t"};
    std::string items = "[";
    for (size_t i = 0; i < d.elements.size(); i++) {
        if (i) items += seps[static_cast<unsigned>(d.separators[i]) % 4];
        items += element_text(d.elements[i]);
    }
    items += "]";
    if (!d.list_form) return items;
    std::string md = "\"metadata\":{\"resourceVersion\":\"" + std::to_string(d.envelope) +
                     "\",\"continue\":\"c\"}";
    switch (d.envelope % 6) {
        case 0:
            return "{\"kind\":\"GlobalServiceList\"," + md + ",\"items\":" + items + "}";
        case 1:
            return "{\"items\": " + items + ",\n \"kind\":\"GlobalServiceList\"," + md + "}\n";
        case 2:  // a type error in the envelope: the document is refused
            return "{\"kind\":\"GlobalServiceList\",\"metadata\":{\"resourceVersion\":5},"
                   "\"items\":" +
                   items + "}";
        case 3:  // "items" spelled with an escape: decoded whole
            return "{\"kind\":\"GlobalServiceList\"," + md + ",\"it\\u0065ms\":" + items + "}";
        case 4:  // items twice: both are decoded
            return "{\"items\":[" + element_text({Valid, 99, 1, false}) + "]," + md +
                   ",\"items\":" + items + "}";
        default:
            return "{" + md + ",\"items\":" + items + "}";
    }
}

void expect_same(const DocumentResult &cached, const DocumentResult &plain,
                 const std::string &text) {
    SCOPED_TRACE(text);
    EXPECT_EQ(cached.error, plain.error);
    EXPECT_TRUE(cached.services.empty());
    ASSERT_EQ(cached.shared.size(), plain.services.size());
    for (size_t i = 0; i < plain.services.size(); i++)
        EXPECT_EQ(*cached.shared[i], plain.services[i]) << "service " << i;
    ASSERT_EQ(cached.rejected.size(), plain.rejected.size());
    for (size_t i = 0; i < plain.rejected.size(); i++) {
        EXPECT_EQ(cached.rejected[i].object, plain.rejected[i].object);
        EXPECT_EQ(cached.rejected[i].reason, plain.rejected[i].reason);
        EXPECT_EQ(cached.rejected[i].key, plain.rejected[i].key);
    }
    EXPECT_EQ(cached.unlisted_rejections, plain.unlisted_rejections);
    EXPECT_EQ(cached.listed_unnamed, plain.listed_unnamed);
    EXPECT_EQ(cached.skipped, plain.skipped);
    EXPECT_EQ(cached.resource_version, plain.resource_version);
    EXPECT_EQ(cached.continue_token, plain.continue_token);
}

Element random_element(std::mt19937 &rng) {
    Element e;
    int k = static_cast<int>(rng() % 40);
    // Mostly valid services; now and then every other kind.
    e.kind = k < 26   ? Valid
             : k < 29 ? BadAddress
             : k < 32 ? Unnamed
             : k < 34 ? OtherKind
             : k < 35 ? Oversized
             : k < 36 ? TooDeep
             : k < 38 ? DuplicateKey
             : k < 39 ? Valid
                      : NotAnObject;
    e.name = static_cast<int>(rng() % 30);
    e.variant = static_cast<int>(rng() % 1000);
    e.tricky = rng() % 4 == 0;
    return e;
}

// One random edit of the document's elements.
void edit(Doc &d, std::mt19937 &rng) {
    auto &el = d.elements;
    auto pick = [&] { return static_cast<size_t>(rng() % el.size()); };
    switch (rng() % 9) {
        case 0:  // change one object's bytes
            if (!el.empty()) el[pick()].variant++;
            break;
        case 1:  // insert one
            el.insert(el.begin() + static_cast<std::ptrdiff_t>(el.empty() ? 0 : pick()),
                      random_element(rng));
            d.separators.push_back(static_cast<int>(rng()));
            break;
        case 2:  // remove one
            if (!el.empty()) el.erase(el.begin() + static_cast<std::ptrdiff_t>(pick()));
            break;
        case 3:  // swap two
            if (!el.empty()) std::swap(el[pick()], el[pick()]);
            break;
        case 4:  // duplicate one
            if (!el.empty()) {
                Element copy = el[pick()];
                el.insert(el.begin() + static_cast<std::ptrdiff_t>(pick()), copy);
                d.separators.push_back(static_cast<int>(rng()));
            }
            break;
        case 5:  // make one invalid
            if (!el.empty()) el[pick()].kind = rng() % 2 ? BadAddress : Unnamed;
            break;
        case 6:  // another layout between the elements
            if (!d.separators.empty()) d.separators[rng() % d.separators.size()]++;
            break;
        case 7:  // another envelope
            d.envelope = static_cast<int>(rng() % 12);
            break;
        default:  // reverse: every unnamed rejection moves
            std::reverse(el.begin(), el.end());
            break;
    }
    while (d.separators.size() < el.size()) d.separators.push_back(static_cast<int>(rng()));
}

// Breaks the syntax somewhere (or not): the document must be refused with the same message.
std::string maybe_break(std::string text, std::mt19937 &rng) {
    if (text.empty() || rng() % 8 != 0) return text;
    size_t at = rng() % text.size();
    switch (rng() % 4) {
        case 0:
            text.erase(at, 1);
            break;
        case 1:
            text.insert(at, "}");
            break;
        case 2:
            text.insert(at, "\"");
            break;
        default:
            text.resize(at);
            break;
    }
    return text;
}

TEST(SpanCache, RandomEditsDecodeAsTheWholeDocument) {
    DecodeLimits limits;
    limits.max_object_bytes = 2000;  // the Oversized element exceeds it, no other one does
    limits.max_depth = 8;
    uint64_t reused = 0;
    for (uint32_t seed = 1; seed <= 150; seed++) {
        std::mt19937 rng(seed);
        Doc d;
        d.container = static_cast<Container>(seed % 3);
        d.list_form =
            d.container == Container::List || (d.container == Container::Manifest && seed % 2 == 0);
        size_t n = rng() % 25;
        for (size_t i = 0; i < n; i++) {
            d.elements.push_back(random_element(rng));
            d.separators.push_back(static_cast<int>(rng()));
        }
        SpanCache cache, streamed_cache;
        for (int step = 0; step < 25; step++) {
            std::string text = maybe_break(document_text(d), rng);
            uint64_t before = cache.objects_decoded(), whole = cache.documents_decoded_whole();
            DocumentResult cached = decode_json_document(text, d.container, limits, cache);
            DocumentResult plain = decode_json_document(text, d.container, limits);
            expect_same(cached, plain, text);
            if (HasFailure()) return;
            // The same through a DocumentStream, in pieces of random sizes (one byte too): the
            // same result, or nullopt exactly where the cache decoded the whole text.
            DocumentStream stream(d.container, limits, streamed_cache);
            for (size_t at = 0; at < text.size();) {
                size_t n = rng() % 4 == 0 ? 1 : 1 + rng() % 300;
                stream.feed(std::string_view(text).substr(at, n));
                at += n;
            }
            std::optional<DocumentResult> got = stream.finish();
            bool went_whole = cache.documents_decoded_whole() != whole;
            EXPECT_EQ(!got, went_whole) << text;
            if (got) expect_same(*got, plain, text);
            if (HasFailure()) return;
            size_t outcomes = plain.services.size() + plain.rejected_count() + plain.skipped;
            reused += outcomes - std::min<uint64_t>(outcomes, cache.objects_decoded() - before);
            edit(d, rng);
        }
    }
    // The cache was used, not only the fallback.
    EXPECT_GT(reused, 10000u);
}

std::string list_of(const std::vector<Element> &elements) {
    Doc d;
    d.container = Container::List;
    d.list_form = true;
    d.elements = elements;
    d.separators.assign(elements.size(), 0);
    return document_text(d);
}

TEST(SpanCache, OneChangedObjectIsTheOnlyOneDecodedAndTheRestKeepTheirPointers) {
    std::vector<Element> elements;
    for (int i = 0; i < 100; i++) elements.push_back({Valid, i, i, i % 7 == 0});
    SpanCache cache;
    DocumentResult first = decode_json_document(list_of(elements), Container::List, {}, cache);
    ASSERT_EQ(first.shared.size(), 100u);
    EXPECT_EQ(cache.objects_decoded(), 100u);
    EXPECT_EQ(cache.size(), 100u);

    elements[42].variant = 500;
    DocumentResult second = decode_json_document(list_of(elements), Container::List, {}, cache);
    ASSERT_EQ(second.shared.size(), 100u);
    EXPECT_EQ(cache.objects_decoded(), 101u);  // only the changed one
    EXPECT_EQ(cache.documents_decoded_whole(), 0u);
    EXPECT_EQ(cache.size(), 100u);  // the old version of the changed one is gone
    for (size_t i = 0; i < 100; i++) {
        if (i == 42) {
            EXPECT_NE(second.shared[i], first.shared[i]);
            EXPECT_EQ(second.shared[i]->endpoints[0].addresses[0].to_string(), "10.0.100.1");
        } else {
            EXPECT_EQ(second.shared[i], first.shared[i]) << i;  // the same pointer
        }
    }
    // Moved, removed and duplicated objects are found by their bytes wherever they are.
    std::swap(elements[0], elements[99]);
    elements.erase(elements.begin() + 50);
    elements.push_back(elements[10]);
    DocumentResult third = decode_json_document(list_of(elements), Container::List, {}, cache);
    EXPECT_EQ(cache.objects_decoded(), 101u);
    EXPECT_EQ(third.shared.front(), first.shared[99]);
    EXPECT_EQ(third.shared.back(), first.shared[10]);
}

TEST(SpanCache, AnUnnamedRejectionIsNamedByItsNewPosition) {
    std::vector<Element> elements{{Valid, 1, 1, false}, {Unnamed, 2, 2, false}};
    SpanCache cache;
    DocumentResult first = decode_json_document(list_of(elements), Container::List, {}, cache);
    ASSERT_EQ(first.rejected.size(), 1u);
    EXPECT_EQ(first.rejected[0].object, "items[1]");
    std::swap(elements[0], elements[1]);
    DocumentResult second = decode_json_document(list_of(elements), Container::List, {}, cache);
    ASSERT_EQ(second.rejected.size(), 1u);
    EXPECT_EQ(second.rejected[0].object, "items[0]");
    EXPECT_EQ(cache.objects_decoded(), 3u);  // decoded again at its new position
}

// A stream fed in pieces decodes only the changed object, keeps the pointers of the rest, and
// one not finished (a transfer cut short) leaves the cache as the last finished one left it.
TEST(DocumentStream, OneChangedObjectIsTheOnlyOneDecodedAndAnUnfinishedOneChangesNothing) {
    std::vector<Element> elements;
    for (int i = 0; i < 100; i++) elements.push_back({Valid, i, i, false});
    auto array_of = [&] {
        Doc d;
        d.container = Container::Array;
        d.elements = elements;
        d.separators.assign(elements.size(), 0);
        return document_text(d);
    };
    auto stream = [](const std::string &text, SpanCache &cache, size_t upto) {
        DocumentStream s(Container::Array, {}, cache);
        for (size_t at = 0; at < upto; at += 100)
            s.feed(std::string_view(text).substr(at, std::min<size_t>(100, upto - at)));
        return upto == text.size() ? s.finish() : std::nullopt;
    };
    SpanCache cache;
    std::string text = array_of();
    std::optional<DocumentResult> first = stream(text, cache, text.size());
    ASSERT_TRUE(first);
    ASSERT_EQ(first->shared.size(), 100u);
    EXPECT_EQ(cache.objects_decoded(), 100u);
    elements[42].variant = 500;
    text = array_of();
    stream(text, cache, text.size() / 2);  // cut short
    EXPECT_EQ(cache.size(), 100u);
    std::optional<DocumentResult> second = stream(text, cache, text.size());
    ASSERT_TRUE(second);
    ASSERT_EQ(second->shared.size(), 100u);
    // #42 was decoded by the stream cut short, which kept nothing, and then once more.
    EXPECT_EQ(cache.objects_decoded(), 102u);
    for (size_t i = 0; i < 100; i++) {
        if (i == 42) {
            EXPECT_EQ(second->shared[i]->endpoints[0].addresses[0].to_string(), "10.0.100.1");
        } else {
            EXPECT_EQ(second->shared[i], first->shared[i]) << i;
        }
    }
}

// A List's envelope is read as items_member reads it: only a key at the top, spelled without
// escapes, is the items; strings, nested objects and whitespace do not mislead it.
TEST(DocumentStream, ListEnvelopesAreReadAsTheCacheReadsThem) {
    const std::string items =
        "[" + element_text({Valid, 1, 1, false}) + "," + element_text({Valid, 2, 2, false}) + "]";
    const std::vector<std::string> texts{
        R"({"kind":"GlobalServiceList","metadata":{"items":"x","resourceVersion":"7"},"items":)" +
            items + "}",
        R"({"kind":"items","items":)" + items + "}",
        R"({"items":)" + items + R"(,"kind":"List","extra":{"items":[1,2]},"more":[{"items":3}]})",
        R"({"x":"a\"items\":[","items":)" + items + "}",
        " {\n\"items\" :\t\n" + items + " , \"kind\" : \"List\" }\n ",
        R"({"items":)" + items + "} x",
        R"({"items":{"a":1}})",
        R"({"items":)" + items + R"(,"items":[]})",
        R"({"it\"ems":1,"items":)" + items + "}",
        R"({"it\u0065ms":)" + items + "}",
        R"({"metadata":{"resourceVersion":7},"items":)" + items + "}",
        R"({"items":)" + items + R"(,"kind":})",
        R"({"items":)" + items,
        "{}",
        items,
        R"({"kind":"GlobalService","metadata":{"name":"a"}})",
    };
    size_t streamed = 0, whole = 0;
    for (Container container : {Container::List, Container::Manifest}) {
        for (const std::string &text : texts) {
            SpanCache cache;
            DocumentResult cached = decode_json_document(text, container, {}, cache);
            bool went_whole = cache.documents_decoded_whole() == 1;
            DocumentResult plain = decode_json_document(text, container);
            for (size_t piece : {text.size(), size_t{1}, size_t{7}}) {
                SpanCache fresh;
                DocumentStream stream(container, {}, fresh);
                for (size_t at = 0; at < text.size(); at += piece)
                    stream.feed(std::string_view(text).substr(at, piece));
                std::optional<DocumentResult> got = stream.finish();
                EXPECT_EQ(!got, went_whole) << text;
                if (got) expect_same(*got, plain, text);
                (got ? streamed : whole)++;
            }
        }
    }
    EXPECT_EQ(streamed, 2u * 3u * 6u);  // the first five, and the array as a manifest
    EXPECT_GT(whole, 0u);
}

TEST(SpanCache, IrregularDocumentsAreDecodedWhole) {
    SpanCache cache;
    std::string good = "[" + element_text({Valid, 1, 1, false}) + "]";
    decode_json_document(good, Container::Array, {}, cache);
    EXPECT_EQ(cache.documents_decoded_whole(), 0u);
    for (std::string text : {"[" + element_text({Valid, 1, 1, false}) + ",7]",
                             "[" + element_text({Valid, 1, 1, false}) + ",]",
                             "[" + element_text({Valid, 1, 1, false}) + "] x",
                             "[" + element_text({Valid, 1, 1, false}) + "\n",
                             "[," + element_text({Valid, 1, 1, false}) + "]",
                             "x[" + element_text({Valid, 1, 1, false}) + "]",
                             "[" + element_text({Valid, 1, 1, false}) + "}]", std::string("[]]")}) {
        uint64_t whole = cache.documents_decoded_whole();
        DocumentResult cached = decode_json_document(text, Container::Array, {}, cache);
        expect_same(cached, decode_json_document(text, Container::Array), text);
        EXPECT_EQ(cache.documents_decoded_whole(), whole + 1) << text;
        // A stream leaves such a text to a whole decode, fed at once or byte by byte.
        for (size_t piece : {text.size(), size_t{1}}) {
            SpanCache fresh;
            DocumentStream stream(Container::Array, {}, fresh);
            for (size_t at = 0; at < text.size(); at += piece)
                stream.feed(std::string_view(text).substr(at, piece));
            EXPECT_FALSE(stream.finish()) << text;
        }
    }
    // Whitespace wherever JSON allows it is no reason to.
    std::string spaced = " \n[ " + element_text({Valid, 1, 1, false}) + " ,\t" +
                         element_text({Valid, 2, 2, false}) + "\r\n] \n";
    for (size_t piece : {spaced.size(), size_t{1}}) {
        SpanCache fresh;
        DocumentStream stream(Container::Array, {}, fresh);
        for (size_t at = 0; at < spaced.size(); at += piece)
            stream.feed(std::string_view(spaced).substr(at, piece));
        std::optional<DocumentResult> got = stream.finish();
        ASSERT_TRUE(got);
        expect_same(*got, decode_json_document(spaced, Container::Array), spaced);
    }
    // A failed document leaves the cache as the last good one left it.
    uint64_t decoded = cache.objects_decoded();
    decode_json_document(good, Container::Array, {}, cache);
    EXPECT_EQ(cache.objects_decoded(), decoded);
}

}  // namespace
}  // namespace fabdns
