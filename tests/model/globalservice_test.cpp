// Unit tests for daemon/model/: JSON (streaming) and YAML decoding, validation, the reasons given
// for rejected objects, and that every container gives an object the same meaning.
#include "model/globalservice.hpp"

#include "model/document.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace fabdns {
namespace {

using nlohmann::json;

json valid_object() {
    return json::parse(R"({
        "apiVersion": "dns.fabedge.io/v1alpha1",
        "kind": "GlobalService",
        "metadata": {"name": "nginx", "namespace": "default", "resourceVersion": "42"},
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "appProtocol": "http"}],
            "endpoints": [
                {"addresses": ["10.233.0.10"], "cluster": "beijing", "zone": "bj-1",
                 "region": "north",
                 "targetRef": {"kind": "Service", "name": "nginx", "namespace": "default",
                               "uid": "u-1"}},
                {"addresses": ["10.234.0.10", "fd00::10"], "cluster": "shanghai",
                 "zone": "sh-1", "region": "south"}
            ]
        }
    })");
}

// Decodes one object as a value (decode_globalservice) and as the document decoders see it (the
// element of an array, read from text into a tree): both must agree, service or reason.
std::optional<GlobalService> decode_both(const json &j, std::string &why) {
    auto svc = decode_globalservice(j, why);
    DocumentResult doc = decode_json_document(json::array({j}).dump(), Container::Array);
    EXPECT_EQ(doc.error, "") << j.dump();
    if (svc) {
        EXPECT_EQ(doc.services.size(), 1u) << j.dump();
        if (doc.services.size() == 1) {
            EXPECT_EQ(doc.services[0], *svc) << j.dump();
        }
    } else if (j.is_object() && j.contains("kind") && j["kind"].is_string() &&
               j["kind"] != "GlobalService") {
        EXPECT_EQ(doc.skipped, 1u) << j.dump();
    } else {
        EXPECT_EQ(doc.rejected.size(), 1u) << j.dump();
        if (doc.rejected.size() == 1) {
            EXPECT_EQ(doc.rejected[0].reason, why) << j.dump();
        }
    }
    return svc;
}

std::optional<GlobalService> decode(const json &j, std::string &why) {
    return decode_both(j, why);
}

// Decodes an object expected to be invalid and returns the reason.
std::string reject_reason(const json &j) {
    std::string why;
    auto svc = decode_both(j, why);
    EXPECT_FALSE(svc.has_value()) << j.dump();
    EXPECT_FALSE(why.empty());
    return why;
}

TEST(GlobalServiceDecode, DecodesEveryField) {
    std::string why;
    auto svc = decode(valid_object(), why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->name, "nginx");
    EXPECT_EQ(svc->ns, "default");
    EXPECT_EQ(svc->key(), "default/nginx");
    EXPECT_EQ(svc->resource_version, "42");
    EXPECT_EQ(svc->type, ServiceType::ClusterIP);
    ASSERT_EQ(svc->ports.size(), 1u);
    EXPECT_EQ(svc->ports[0].name, "http");
    EXPECT_EQ(svc->ports[0].protocol, "TCP");
    EXPECT_EQ(svc->ports[0].port, 80);
    EXPECT_EQ(svc->ports[0].app_protocol, "http");
    ASSERT_EQ(svc->endpoints.size(), 2u);
    const Endpoint &bj = svc->endpoints[0];
    ASSERT_EQ(bj.addresses.size(), 1u);
    EXPECT_EQ(bj.addresses[0], *IpAddr::parse("10.233.0.10"));
    EXPECT_EQ(bj.cluster, "beijing");
    EXPECT_EQ(bj.zone, "bj-1");
    EXPECT_EQ(bj.region, "north");
    EXPECT_TRUE(bj.hostname.empty());
    const Endpoint &sh = svc->endpoints[1];
    ASSERT_EQ(sh.addresses.size(), 2u);
    EXPECT_TRUE(sh.addresses[0].is_v4());
    EXPECT_TRUE(sh.addresses[1].is_v6());
}

TEST(GlobalServiceDecode, ApiVersionAndKindMayBeAbsentButNotWrong) {
    json j = valid_object();
    j.erase("apiVersion");
    j.erase("kind");
    std::string why;
    EXPECT_TRUE(decode(j, why)) << why;

    j = valid_object();
    j["apiVersion"] = "dns.fabedge.io/v1beta9";
    EXPECT_NE(reject_reason(j).find("apiVersion"), std::string::npos);

    j = valid_object();
    j["kind"] = "Service";
    EXPECT_NE(reject_reason(j).find("kind: 'Service'"), std::string::npos);
}

TEST(GlobalServiceDecode, TypeDefaultsToClusterIpAndRejectsUnknown) {
    json j = valid_object();
    j["spec"].erase("type");
    std::string why;
    auto svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->type, ServiceType::ClusterIP);

    j["spec"]["type"] = "Headless";
    svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->type, ServiceType::Headless);

    j["spec"]["type"] = "NodePort";
    std::string reason = reject_reason(j);
    EXPECT_EQ(reason.rfind("spec.type:", 0), 0u) << reason;
    EXPECT_NE(reason.find("NodePort"), std::string::npos);
}

TEST(GlobalServiceDecode, PortsAreNumbersOrNumericStrings) {
    json j = valid_object();
    j["spec"]["ports"][0]["port"] = "8080";
    std::string why;
    auto svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->ports[0].port, 8080);

    j["spec"]["ports"][0].erase("protocol");
    svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->ports[0].protocol, "TCP");

    for (json bad : {json(0), json(65536), json(-1), json("http"), json("80x"), json(80.5),
                     json(true), json::array()}) {
        j["spec"]["ports"][0]["port"] = bad;
        std::string reason = reject_reason(j);
        EXPECT_EQ(reason.rfind("spec.ports[0].port:", 0), 0u) << bad.dump() << ": " << reason;
    }
    j["spec"]["ports"][0]["port"] = 53;
    j["spec"]["ports"][0]["protocol"] = "ICMP";
    EXPECT_EQ(reject_reason(j).rfind("spec.ports[0].protocol:", 0), 0u);
}

TEST(GlobalServiceDecode, RejectsBadAddressesNamingThePath) {
    json j = valid_object();
    j["spec"]["endpoints"][1]["addresses"][0] = "10.0.0.300";
    std::string reason = reject_reason(j);
    EXPECT_EQ(reason, "spec.endpoints[1].addresses[0]: '10.0.0.300' is not an IP address");

    j = valid_object();
    j["spec"]["endpoints"][0]["addresses"] = json::array();
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints[0].addresses:", 0), 0u);

    j = valid_object();
    j["spec"]["endpoints"][0].erase("addresses");
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints[0].addresses:", 0), 0u);

    j = valid_object();
    j["spec"]["endpoints"][0]["addresses"][0] = 167772170;  // a number is not an address
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints[0].addresses[0]:", 0), 0u);

    // Input quoted in a reason is bounded and printable.
    j = valid_object();
    j["spec"]["endpoints"][0]["addresses"][0] = std::string(5000, 'x') + "\n";
    std::string long_reason = reject_reason(j);
    EXPECT_LT(long_reason.size(), 200u);
    EXPECT_EQ(long_reason.find('\n'), std::string::npos);

    j = valid_object();
    j["spec"]["endpoints"][0]["addresses"][0] = "0.0.0.0";
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints[0].addresses[0]:", 0), 0u);
}

TEST(GlobalServiceDecode, EndpointNeedsACluster) {
    json j = valid_object();
    j["spec"]["endpoints"][1].erase("cluster");
    EXPECT_EQ(reject_reason(j), "spec.endpoints[1].cluster: missing");

    j["spec"]["endpoints"][1]["cluster"] = "";
    EXPECT_EQ(reject_reason(j), "spec.endpoints[1].cluster: missing");

    j["spec"]["endpoints"][1]["cluster"] = "Shang.Hai";
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints[1].cluster:", 0), 0u);
}

TEST(GlobalServiceDecode, HostnameMustBeADnsLabel) {
    json j = valid_object();
    j["spec"]["type"] = "Headless";
    for (const char *bad : {"Web-0", "-web", "web-", "web_0", "web.0"}) {
        j["spec"]["endpoints"][0]["hostname"] = bad;
        std::string reason = reject_reason(j);
        EXPECT_EQ(reason.rfind("spec.endpoints[0].hostname: '", 0), 0u) << bad << ": " << reason;
    }
    j["spec"]["endpoints"][0]["hostname"] = std::string(64, 'a');
    reject_reason(j);

    j["spec"]["endpoints"][0]["hostname"] = std::string(63, 'a');
    std::string why;
    auto svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->endpoints[0].hostname, std::string(63, 'a'));

    // An empty hostname is no hostname.
    j["spec"]["endpoints"][0]["hostname"] = "";
    svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_TRUE(svc->endpoints[0].hostname.empty());
}

TEST(GlobalServiceDecode, MetadataNameAndNamespaceAreRequiredLabels) {
    json j = valid_object();
    j["metadata"].erase("name");
    EXPECT_EQ(reject_reason(j), "metadata.name: missing");

    // As kubectl does, and whatever carried the object: no namespace means "default".
    j = valid_object();
    j["metadata"].erase("namespace");
    j["metadata"]["name"] = "other";
    std::string why;
    auto svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_EQ(svc->key(), "default/other");
    j["metadata"]["namespace"] = "";
    ASSERT_TRUE(decode(j, why)) << why;
    j["metadata"]["namespace"] = 7;
    EXPECT_EQ(reject_reason(j), "metadata.namespace: expected a string, got a number");

    j = valid_object();
    j["metadata"]["name"] = "Nginx";
    EXPECT_EQ(reject_reason(j).rfind("metadata.name: 'Nginx' is not a DNS label", 0), 0u);

    j = valid_object();
    j["metadata"]["namespace"] = "kube.system";
    EXPECT_EQ(reject_reason(j).rfind("metadata.namespace:", 0), 0u);

    j = valid_object();
    j.erase("metadata");
    EXPECT_EQ(reject_reason(j), "metadata: missing");

    EXPECT_EQ(reject_reason(json::array()).rfind("object:", 0), 0u);
}

TEST(GlobalServiceDecode, WrongFieldTypesAreReported) {
    json j = valid_object();
    j["spec"]["endpoints"][0]["zone"] = 1;
    EXPECT_EQ(reject_reason(j), "spec.endpoints[0].zone: expected a string, got a number");

    j = valid_object();
    j["spec"]["endpoints"] = json::object();
    EXPECT_EQ(reject_reason(j).rfind("spec.endpoints:", 0), 0u);

    j = valid_object();
    j["spec"] = "nope";
    EXPECT_EQ(reject_reason(j).rfind("spec:", 0), 0u);

    // targetRef is not kept, but its shape is checked like any field.
    j = valid_object();
    j["spec"]["endpoints"][0]["targetRef"]["uid"] = 5;
    EXPECT_EQ(reject_reason(j), "spec.endpoints[0].targetRef.uid: expected a string, got a number");
    j["spec"]["endpoints"][0]["targetRef"] = "Service/nginx";
    EXPECT_EQ(reject_reason(j), "spec.endpoints[0].targetRef: expected a mapping, got a string");
}

TEST(GlobalServiceDecode, SpecIsRequiredButMayBeEmpty) {
    json j = valid_object();
    j.erase("spec");
    EXPECT_EQ(reject_reason(j), "spec: missing");
    j["spec"] = json::object();
    std::string why;
    auto svc = decode(j, why);
    ASSERT_TRUE(svc) << why;
    EXPECT_TRUE(svc->endpoints.empty());
    EXPECT_EQ(svc->type, ServiceType::ClusterIP);
}

TEST(DecodeJsonDocument, ArrayKeepsValidAndReportsInvalid) {
    json bad = valid_object();
    bad["metadata"]["name"] = "mysql";
    bad["spec"]["endpoints"][1]["addresses"][0] = "10.0.0.300";
    json unnamed = valid_object();
    unnamed["metadata"].erase("name");
    json other = valid_object();
    other["metadata"]["name"] = "redis";

    DocumentResult r = decode_json_document(
        json::array({valid_object(), bad, unnamed, other}).dump(), Container::Array);
    EXPECT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 2u);
    EXPECT_EQ(r.services[0].key(), "default/nginx");
    EXPECT_EQ(r.services[1].key(), "default/redis");
    ASSERT_EQ(r.rejected.size(), 2u);
    EXPECT_EQ(r.rejected[0].object, "default/mysql");
    EXPECT_EQ(r.rejected[0].key, "default/mysql");
    EXPECT_EQ(r.rejected[0].reason,
              "spec.endpoints[1].addresses[0]: '10.0.0.300' is not an IP address");
    EXPECT_EQ(r.rejected[1].object, "items[2]");
    EXPECT_EQ(r.rejected[1].key, "");
    EXPECT_EQ(r.rejected[1].reason, "metadata.name: missing");
}

TEST(DecodeJsonDocument, KubernetesList) {
    json item = valid_object();
    item.erase("apiVersion");  // list items come without apiVersion and kind
    item.erase("kind");
    json list = {{"apiVersion", "dns.fabedge.io/v1alpha1"},
                 {"kind", "GlobalServiceList"},
                 {"metadata", {{"resourceVersion", "7"}, {"continue", "abc"}}},
                 {"items", json::array({item})}};
    DocumentResult r = decode_json_document(list.dump(), Container::List);
    EXPECT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 1u);
    EXPECT_TRUE(r.rejected.empty());
    EXPECT_EQ(r.services[0].key(), "default/nginx");
    EXPECT_EQ(r.resource_version, "7");
    EXPECT_EQ(r.continue_token, "abc");

    // An empty list may omit items.
    list.erase("items");
    r = decode_json_document(list.dump(), Container::List);
    EXPECT_EQ(r.error, "");
    EXPECT_TRUE(r.services.empty());
    EXPECT_EQ(r.resource_version, "7");
}

// Each of these once reached the daemon as an uncaught nlohmann::json::type_error.
TEST(DecodeJsonDocument, TypeConfusedEnvelopesAreErrorsNotExceptions) {
    struct Case {
        const char *text;
        Container container;
        const char *error;
    } cases[] = {
        {R"({"metadata":{"resourceVersion":7},"items":[]})", Container::List,
         "metadata.resourceVersion: expected a string, got a number"},
        {R"({"metadata":{"resourceVersion":"7","continue":{}},"items":[]})", Container::List,
         "metadata.continue: expected a string, got a mapping"},
        {R"({"metadata":[],"items":[]})", Container::List,
         "metadata: expected a mapping, got a list"},
        {R"({"items":{}})", Container::List, "items: expected a list, got a mapping"},
        {R"({"kind":"Status","code":500})", Container::List, "no items: not a list object"},
        {R"([])", Container::List, "the document is a list, not a list object"},
        {R"({"items":[]})", Container::Array, "the document is a mapping, not an array"},
        {R"("hello")", Container::Manifest, "the document is a string, not a GlobalService"},
        {R"([1,)", Container::Array, "not valid JSON"},
        {R"([] [])", Container::Array, "not valid JSON"},
    };
    for (const auto &c : cases) {
        DocumentResult r = decode_json_document(c.text, c.container);
        EXPECT_EQ(r.error.rfind(c.error, 0), 0u) << c.text << " -> " << r.error;
        EXPECT_TRUE(r.services.empty()) << c.text;
    }
}

TEST(DecodeJsonDocument, TextThatIsNotJsonIsRefusedWithWhere) {
    DocumentResult r = decode_json_document("[\n  {\"a\": 1,}\n]", Container::Array);
    EXPECT_EQ(r.error.rfind("not valid JSON: ", 0), 0u) << r.error;
    EXPECT_NE(r.error.find("line 2, column"), std::string::npos) << r.error;

    // Invalid UTF-8 inside a string, and a NUL byte after the document, are not JSON either.
    std::string bad_utf8 = "[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"x\":\"\xff\xfe\"}}]";
    r = decode_json_document(bad_utf8, Container::Array);
    EXPECT_EQ(r.error.rfind("not valid JSON: ", 0), 0u) << r.error;
    std::string with_nul = json::array({valid_object()}).dump() + std::string(1, '\0') + "[]";
    r = decode_json_document(with_nul, Container::Array);
    EXPECT_EQ(r.error.rfind("not valid JSON: a NUL byte", 0), 0u) << r.error;
}

TEST(DecodeJsonDocument, NestingPastTheReaderBoundRefusesTheDocument) {
    // Nesting inside one object is that object's problem (OversizedObjectIsRejectedByName); past
    // 4096 levels the document itself is refused, before the reader's stack follows it.
    std::string flood = "[" + json(valid_object()).dump() + "," + std::string(1 << 20, '[');
    DocumentResult r = decode_json_document(flood, Container::Array);
    EXPECT_EQ(r.error, "nested deeper than 4096 levels");
    std::string deep = "[" + std::string(4000, '[') + std::string(4000, ']') + "]";
    r = decode_json_document(deep, Container::Array);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.rejected_count(), 1u);
}

TEST(DecodeJsonDocument, OfEqualKeysTheLastCounts) {
    std::string text =
        R"([{"metadata":{"name":"first","name":"second"},"spec":{"type":"Bogus","type":"Headless"}}])";
    DocumentResult r = decode_json_document(text, Container::Array);
    ASSERT_EQ(r.services.size(), 1u) << (r.rejected.empty() ? "" : r.rejected[0].reason);
    EXPECT_EQ(r.services[0].name, "second");
    EXPECT_EQ(r.services[0].type, ServiceType::Headless);
    std::string why;
    EXPECT_EQ(decode_globalservice(json::parse(text)[0], why), r.services[0]) << why;
}

TEST(DecodeJsonDocument, ManifestIsOneObjectAListOrAnArray) {
    json obj = valid_object();
    obj["metadata"].erase("namespace");
    DocumentResult r = decode_json_document(obj.dump(), Container::Manifest);
    EXPECT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 1u);
    EXPECT_EQ(r.services[0].key(), "default/nginx");

    json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}};
    r = decode_json_document(json::array({obj, cm}).dump(), Container::Manifest);
    EXPECT_EQ(r.services.size(), 1u);
    EXPECT_EQ(r.skipped, 1u);

    r = decode_json_document(json{{"kind", "List"}, {"items", {obj, cm}}}.dump(),
                             Container::Manifest);
    EXPECT_EQ(r.services.size(), 1u);
    EXPECT_EQ(r.skipped, 1u);
    EXPECT_TRUE(r.rejected.empty());
}

TEST(DecodeJsonDocument, OversizedObjectIsRejectedByName) {
    json big = valid_object();
    big["metadata"]["name"] = "big";
    big["spec"]["padding"] = std::string(4096, 'x');
    DecodeLimits limits;
    limits.max_object_bytes = 2048;
    DocumentResult r =
        decode_json_document(json::array({valid_object(), big}).dump(), Container::Array, limits);
    ASSERT_EQ(r.services.size(), 1u);
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].key, "default/big");
    EXPECT_EQ(r.rejected[0].reason, "object larger than 2048 bytes");

    // The same for a single-object manifest, and for nesting.
    r = decode_json_document(big.dump(), Container::Manifest, limits);
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].key, "default/big");
    std::string deep = R"([{"metadata":{"name":"deep"},"spec":)" + std::string(100, '[') +
                       std::string(100, ']') + "}]";
    r = decode_json_document(deep, Container::Array);
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].key, "default/deep");
    EXPECT_EQ(r.rejected[0].reason.find("nested deeper"), 7u) << r.rejected[0].reason;
}

TEST(DecodeJsonDocument, FloodOfUnnamedElementsIsCountedNotListed) {
    std::string zeros = "[0";
    for (int i = 0; i < 100000; ++i) zeros += ",0";
    zeros += "]";
    DocumentResult r = decode_json_document(zeros, Container::Array);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.rejected.size(), DecodeResult::kMaxUnnamedRejections);
    EXPECT_EQ(r.rejected_count(), 100001u);
}

TEST(DecodeWatchEvent, TypeConfusedEventsAreDecodedOrExplained) {
    WatchEvent ev = decode_watch_event(R"({"type":"ERROR","object":{"code":"410"}})");
    EXPECT_EQ(ev.error, "");
    EXPECT_EQ(ev.type, "ERROR");
    EXPECT_EQ(ev.code, 410);
    ev = decode_watch_event(R"({"type":"ERROR","object":{"code":410,"message":"gone"}})");
    EXPECT_EQ(ev.code, 410);
    EXPECT_EQ(ev.message, "gone");
    ev = decode_watch_event(R"({"type":"ERROR","object":{"code":[1],"message":7}})");
    EXPECT_EQ(ev.error, "");
    EXPECT_EQ(ev.code, 0);
    EXPECT_EQ(decode_watch_event(R"({"type":7,"object":{}})").error, "no type");
    EXPECT_EQ(decode_watch_event(R"({"type":"ADDED"})").error, "no object");
    EXPECT_NE(decode_watch_event("[]").error, "");
    EXPECT_NE(decode_watch_event("not json").error, "");

    json obj = valid_object();
    obj["metadata"]["resourceVersion"] = 12;
    ev = decode_watch_event(json{{"type", "MODIFIED"}, {"object", obj}}.dump());
    EXPECT_EQ(ev.key, "default/nginx");
    EXPECT_FALSE(ev.service);
    EXPECT_EQ(ev.rejection, "metadata.resourceVersion: expected a string, got a number");

    obj = valid_object();
    ev = decode_watch_event(json{{"type", "ADDED"}, {"object", obj}}.dump());
    ASSERT_TRUE(ev.service);
    EXPECT_EQ(ev.key, "default/nginx");
    EXPECT_EQ(ev.resource_version, "42");
}

// The same object means the same thing as YAML, as JSON, in a List, in the hub's array and in a
// watch event.
TEST(DecodeJsonDocument, EveryContainerAgrees) {
    const char *yaml = R"(
kind: List
items:
- metadata: {name: a}
  spec: {endpoints: [{addresses: [10.0.0.1], cluster: c1}]}
- metadata: {name: b, namespace: x}
  spec: {ports: [{port: "53"}]}
- metadata: {name: c}
  spec: {endpoints: [{addresses: 10.0.0.1, cluster: c1}]}
)";
    json items = json::array(
        {{{"metadata", {{"name", "a"}}},
          {"spec", {{"endpoints", {{{"addresses", {"10.0.0.1"}}, {"cluster", "c1"}}}}}}},
         {{"metadata", {{"name", "b"}, {"namespace", "x"}}},
          {"spec", {{"ports", {{{"port", "53"}}}}}}},
         {{"metadata", {{"name", "c"}}},
          {"spec", {{"endpoints", {{{"addresses", "10.0.0.1"}, {"cluster", "c1"}}}}}}}});
    DocumentResult from_yaml = decode_yaml_documents(yaml);
    DocumentResult from_json =
        decode_json_document(json{{"kind", "List"}, {"items", items}}.dump(), Container::Manifest);
    DocumentResult from_list = decode_json_document(json{{"items", items}}.dump(), Container::List);
    DocumentResult from_array = decode_json_document(items.dump(), Container::Array);
    for (const DecodeResult *r : {static_cast<const DecodeResult *>(&from_json),
                                  static_cast<const DecodeResult *>(&from_list),
                                  static_cast<const DecodeResult *>(&from_array)}) {
        EXPECT_EQ(r->services, from_yaml.services);
        ASSERT_EQ(r->rejected.size(), 1u);
        ASSERT_EQ(from_yaml.rejected.size(), 1u);
        EXPECT_EQ(r->rejected[0].key, "default/c");
        EXPECT_EQ(r->rejected[0].reason, from_yaml.rejected[0].reason);
    }
    for (size_t i = 0; i < 2; ++i) {
        WatchEvent ev = decode_watch_event(json{{"type", "ADDED"}, {"object", items[i]}}.dump());
        ASSERT_TRUE(ev.service);
        EXPECT_EQ(*ev.service, from_yaml.services[i]);
    }
}

TEST(EncodeGlobalServices, DecodesToTheSameServices) {
    json headless = valid_object();
    headless["metadata"]["name"] = "db";
    headless["spec"]["type"] = "Headless";
    headless["spec"]["endpoints"][0]["hostname"] = "db-0";
    DocumentResult r =
        decode_json_document(json::array({valid_object(), headless}).dump(), Container::Array);
    ASSERT_EQ(r.services.size(), 2u);
    DocumentResult again =
        decode_json_document(encode_globalservices(r.services), Container::Array);
    EXPECT_EQ(again.error, "");
    EXPECT_EQ(again.services, r.services);
    EXPECT_EQ(encode_globalservices({}), "[]");
}

constexpr const char *kManifests = R"(# two services, a ConfigMap and an empty document
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata:
  name: nginx
  namespace: default
  resourceVersion: "42"
spec:
  type: ClusterIP
  ports:
    - name: http
      protocol: TCP
      port: 80
      appProtocol: http
  endpoints:
    - addresses: ["10.233.0.10"]
      cluster: beijing
      zone: bj-1
      region: north
      targetRef: {kind: Service, name: nginx, namespace: default, uid: u-1}
    - addresses:
        - 10.234.0.10
        - fd00::10
      cluster: shanghai
      zone: sh-1
      region: south
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
data:
  port: "80"
---
---
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata:
  name: web
spec:
  type: Headless
  ports:
    - port: "8080"
  endpoints:
    - addresses: [10.243.1.5]
      hostname: web-0
      cluster: beijing
      zone: "1"
      region: no
)";

TEST(DecodeYamlDocuments, MultiDocumentSkipsOtherKinds) {
    DocumentResult r = decode_yaml_documents(kManifests);
    EXPECT_TRUE(r.rejected.empty()) << r.rejected[0].object << ": " << r.rejected[0].reason;
    ASSERT_EQ(r.services.size(), 2u);
    EXPECT_EQ(r.services[0].key(), "default/nginx");
    // The namespace defaults to "default" as kubectl does.
    EXPECT_EQ(r.services[1].key(), "default/web");
    EXPECT_EQ(r.services[1].type, ServiceType::Headless);
    EXPECT_EQ(r.services[1].ports[0].port, 8080);
    ASSERT_EQ(r.services[1].endpoints.size(), 1u);
    EXPECT_EQ(r.services[1].endpoints[0].hostname, "web-0");
    // Quoted and YAML-1.1-boolean-looking scalars stay strings.
    EXPECT_EQ(r.services[1].endpoints[0].zone, "1");
    EXPECT_EQ(r.services[1].endpoints[0].region, "no");
}

TEST(DecodeYamlDocuments, YamlAndJsonDecodeToTheSameService) {
    DocumentResult r = decode_yaml_documents(kManifests);
    ASSERT_FALSE(r.services.empty());
    std::string why;
    auto from_json = decode_globalservice(valid_object(), why);
    ASSERT_TRUE(from_json) << why;
    EXPECT_EQ(r.services[0], *from_json);
}

TEST(DecodeYamlDocuments, ListKindWithItems) {
    DocumentResult r = decode_yaml_documents(R"(
apiVersion: v1
kind: List
items:
  - apiVersion: dns.fabedge.io/v1alpha1
    kind: GlobalService
    metadata: {name: a, namespace: ns1}
    spec:
      endpoints: [{addresses: [10.0.0.1], cluster: c1}]
  - apiVersion: v1
    kind: Service
    metadata: {name: ignored}
  - apiVersion: dns.fabedge.io/v1alpha1
    kind: GlobalService
    metadata: {name: b, namespace: ns1}
    spec:
      type: Headless
      endpoints: [{addresses: [10.0.0.2], cluster: c1, hostname: b-0}]
  - apiVersion: dns.fabedge.io/v1alpha1
    kind: GlobalService
    metadata: {name: c, namespace: ns1}
    spec:
      endpoints: [{addresses: [10.0.0.3]}]
)");
    ASSERT_EQ(r.services.size(), 2u);
    EXPECT_EQ(r.services[0].key(), "ns1/a");
    EXPECT_EQ(r.services[1].key(), "ns1/b");
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].object, "ns1/c");
    EXPECT_EQ(r.rejected[0].reason, "spec.endpoints[0].cluster: missing");
}

TEST(DecodeYamlDocuments, RejectionsNameTheObjectOrDocument) {
    DocumentResult r = decode_yaml_documents(R"(
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata: {name: ok}
spec: {endpoints: [{addresses: [10.0.0.1], cluster: c1}]}
---
apiVersion: dns.fabedge.io/v1
kind: GlobalService
metadata: {name: old-api, namespace: team}
---
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
spec: {}
---
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata: {name: portless}
spec: {ports: [{port: 80.5}]}
---
- 42
---
apiVersion: dns.fabedge.io/v1alpha1
metadata: {name: kindless}
)");
    ASSERT_EQ(r.services.size(), 1u);
    EXPECT_EQ(r.services[0].key(), "default/ok");
    ASSERT_EQ(r.rejected.size(), 5u);
    EXPECT_EQ(r.rejected[0].object, "team/old-api");
    EXPECT_EQ(r.rejected[0].reason.rfind("apiVersion:", 0), 0u);
    EXPECT_EQ(r.rejected[1].object, "document 3");
    EXPECT_EQ(r.rejected[1].reason, "metadata: missing");
    EXPECT_EQ(r.rejected[2].object, "default/portless");
    EXPECT_EQ(r.rejected[2].reason.rfind("spec.ports[0].port:", 0), 0u);
    EXPECT_EQ(r.rejected[3].object, "document 5 items[0]");
    // Without kind, as in a List's items: a GlobalService, rejected here for lack of a spec.
    EXPECT_EQ(r.rejected[4].object, "default/kindless");
    EXPECT_EQ(r.rejected[4].reason, "spec: missing");
}

TEST(DecodeYamlDocuments, PlainScalarsFollowTheCoreSchema) {
    // A number where a string is expected is an error (as kubectl reports it), not a guess.
    DocumentResult r = decode_yaml_documents(R"(
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata: {name: n, namespace: d}
spec:
  endpoints: [{addresses: [10.0.0.1], cluster: c1, zone: 12}]
)");
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].reason, "spec.endpoints[0].zone: expected a string, got a number");

    r = decode_yaml_documents(R"(
apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata: {name: n, namespace: d}
spec:
  ports: [{port: !!str 53, protocol: UDP}, {port: 0x35}]
  endpoints: [{addresses: [10.0.0.1], cluster: c1, zone: !!str 12, region: ~, hostname: null}]
)");
    ASSERT_EQ(r.services.size(), 1u) << r.rejected[0].reason;
    EXPECT_EQ(r.services[0].ports[0].port, 53);
    EXPECT_EQ(r.services[0].ports[1].port, 53);
    EXPECT_EQ(r.services[0].endpoints[0].zone, "12");
    EXPECT_EQ(r.services[0].endpoints[0].region, "");
    EXPECT_TRUE(r.services[0].endpoints[0].hostname.empty());
}

TEST(DecodeYamlDocuments, InvalidYamlRefusesTheStreamWithLine) {
    DocumentResult r = decode_yaml_documents("kind: GlobalService\nmetadata: {name: [oops\n");
    EXPECT_EQ(r.error.rfind("invalid YAML at line ", 0), 0u) << r.error;
    EXPECT_TRUE(r.services.empty());
    // Bytes that are not UTF-8 are named by their offset from the start (0).
    r = decode_yaml_documents("kind: GlobalService\nmetadata: {name: \xff}\n");
    EXPECT_EQ(r.error, "invalid YAML at byte 37: invalid leading UTF-8 octet");
}

constexpr const char *kAnchored = R"(
kind: List
items:
- metadata: {name: a}
  spec:
    ports: &ports [{port: 53, protocol: UDP}]
    endpoints: &eps
    - {addresses: [10.0.0.1], cluster: &c c1}
- metadata: {name: b}
  spec: {ports: *ports, endpoints: *eps}
- metadata: {name: *c}
  spec: {endpoints: [{addresses: [10.0.0.2], cluster: *c}]}
)";

TEST(DecodeYamlDocuments, AliasesExpandToWhatTheyName) {
    DocumentResult r = decode_yaml_documents(kAnchored);
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 3u) << r.rejected[0].reason;
    EXPECT_EQ(r.services[1].key(), "default/b");
    EXPECT_EQ(r.services[1].ports, r.services[0].ports);
    EXPECT_EQ(r.services[1].endpoints, r.services[0].endpoints);
    EXPECT_EQ(r.services[2].key(), "default/c1");
    EXPECT_EQ(r.services[2].endpoints[0].cluster, "c1");
}

TEST(DecodeYamlDocuments, HostileAliasesRefuseTheStream) {
    // A self-referencing alias would make a cyclic node graph.
    DocumentResult r = decode_yaml_documents("kind: GlobalService\nspec: &a [*a]\n");
    EXPECT_NE(r.error.find("alias *a is inside the node it names"), std::string::npos) << r.error;
    r = decode_yaml_documents("kind: GlobalService\nspec: *nowhere\n");
    EXPECT_EQ(r.error,
              "invalid YAML at line 2, column 7: alias *nowhere names no anchor before it");
    // Anchors are scoped to their document.
    r = decode_yaml_documents("a: &x 1\n---\nb: *x\n");
    EXPECT_NE(r.error.find("alias *x names no anchor"), std::string::npos) << r.error;
    // "Billion laughs": expansion is bounded by the size of the text.
    std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'j'; c++) {
        std::string prev(1, static_cast<char>(c - 1));
        laughs += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev +
                  ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" +
                  prev + ", *" + prev + "]\n";
    }
    laughs += "kind: GlobalService\n";
    r = decode_yaml_documents(laughs);
    EXPECT_NE(r.error.find("aliases expand to more nodes than the text has bytes"),
              std::string::npos)
        << r.error;
    // Anchored nodes past the object budget are not kept: an alias to them refuses the stream.
    DecodeLimits small;
    small.max_object_bytes = 4096;
    std::string big = "a: &big [" + std::string(8000, 'x') + "]\nb: *big\n";
    r = decode_yaml_documents(big, small);
    EXPECT_NE(r.error.find("alias *big names no anchor kept (anchored nodes of this document "
                           "exceed 4096 bytes)"),
              std::string::npos)
        << r.error;
    // The budget can run out while an alias is being expanded: that expansion completes, the
    // anchors are dropped after it.
    std::string xs;
    for (int i = 0; i < 40; ++i) xs += "x, ";
    std::string mid = "a: &a [" + xs + "]\nb: &b [*a, *a]\n";
    r = decode_yaml_documents(mid, small);
    EXPECT_EQ(r.error, "");
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].reason, "metadata: missing");
    r = decode_yaml_documents(mid + "c: *a\n", small);
    EXPECT_NE(r.error.find("alias *a names no anchor kept"), std::string::npos) << r.error;
}

TEST(DecodeYamlDocuments, OddShapesAreRejectedWithAReason) {
    DocumentResult r = decode_yaml_documents(R"(
metadata: {name: a}
spec: {endpoints: [{addresses: [10.0.0.1], cluster: c1}]}
? [complex, key]
: {ignored: yes}
{x: y}: ignored too
---
- metadata: {name: in-a-list}
  spec: {}
- 42
---
!!map {metadata: {name: tagged}, spec: !!map {type: !!str Headless}}
---
metadata: {name: deep}
spec: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
)");
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 3u);
    EXPECT_EQ(r.services[0].key(), "default/a");
    // A top-level list of objects, as in a JSON manifest.
    EXPECT_EQ(r.services[1].key(), "default/in-a-list");
    EXPECT_EQ(r.services[2].key(), "default/tagged");
    EXPECT_EQ(r.services[2].type, ServiceType::Headless);
    ASSERT_EQ(r.rejected.size(), 2u);
    EXPECT_EQ(r.rejected[0].object, "document 2 items[1]");
    EXPECT_EQ(r.rejected[0].reason, "object: expected a mapping, got a number");
    EXPECT_EQ(r.rejected[1].object, "default/deep");
    EXPECT_EQ(r.rejected[1].reason, "spec: nested deeper than 32 levels");

    // A document that is no manifest refuses the stream, as it refuses a JSON file.
    r = decode_yaml_documents("metadata: {name: a}\nspec: {}\n---\nkind: List\nitems: {a: b}\n");
    EXPECT_EQ(r.error, "document 2: items: expected a list, got a mapping");
    r = decode_yaml_documents("--- just a string\n");
    EXPECT_EQ(r.error,
              "document 1: the document is a string, not a GlobalService, a List or an array of "
              "them");
}

// Type-confused fields mean the same in YAML as in JSON: the same reason, the same key.
TEST(DecodeYamlDocuments, TypeConfusedObjectsAgreeWithJson) {
    const char *cases[][2] = {
        {"metadata: {name: x, resourceVersion: 12}\nspec: {}",
         R"({"metadata":{"name":"x","resourceVersion":12},"spec":{}})"},
        {"metadata: {name: x}\nspec: {ports: 80}",
         R"({"metadata":{"name":"x"},"spec":{"ports":80}})"},
        {"metadata: {name: x}\nspec: {endpoints: [{addresses: [1.2.3.4], cluster: true}]}",
         R"({"metadata":{"name":"x"},"spec":{"endpoints":[{"addresses":["1.2.3.4"],"cluster":true}]}})"},
        {"metadata: {name: 7}\nspec: {}", R"({"metadata":{"name":7},"spec":{}})"},
        {"metadata: [x]\nspec: {}", R"({"metadata":["x"],"spec":{}})"},
        {"metadata: {name: x}\nspec: {type: ~}",
         R"({"metadata":{"name":"x"},"spec":{"type":null}})"},
    };
    for (const auto &c : cases) {
        SCOPED_TRACE(c[0]);
        DocumentResult y = decode_yaml_documents(c[0]);
        DocumentResult j = decode_json_document(c[1], Container::Manifest);
        ASSERT_EQ(y.error, "");
        ASSERT_EQ(j.error, "");
        EXPECT_EQ(y.services, j.services);
        ASSERT_EQ(y.rejected.size(), j.rejected.size());
        for (size_t i = 0; i < y.rejected.size(); ++i) {
            EXPECT_EQ(y.rejected[i].key, j.rejected[i].key);
            EXPECT_EQ(y.rejected[i].reason, j.rejected[i].reason);
        }
    }
}

TEST(DecodeYamlDocuments, OversizedObjectIsRejectedByName) {
    DecodeLimits small;
    small.max_object_bytes = 4096;
    std::string text = "metadata: {name: big}\nspec:\n  ports:\n";
    for (int i = 0; i < 400; ++i) text += "  - {port: 80}\n";
    text += "---\nmetadata: {name: ok}\nspec: {}\n";
    DocumentResult r = decode_yaml_documents(text, small);
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.services.size(), 1u);
    EXPECT_EQ(r.services[0].key(), "default/ok");
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].key, "default/big");
    EXPECT_EQ(r.rejected[0].reason.rfind("spec: larger than 4096 bytes", 0), 0u)
        << r.rejected[0].reason;
}

TEST(DecodeYamlDocuments, EmptyTextHasNothing) {
    DocumentResult r = decode_yaml_documents("");
    EXPECT_TRUE(r.services.empty());
    EXPECT_TRUE(r.rejected.empty());
    r = decode_yaml_documents("# only a comment\n---\n");
    EXPECT_TRUE(r.services.empty());
    EXPECT_TRUE(r.rejected.empty());
}

}  // namespace
}  // namespace fabdns
