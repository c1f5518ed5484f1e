// Tests of FileSource: initial load, reloads on change (in place, rename-replace, ConfigMap-style
// symlink swap), bad YAML keeping the last good set, rejected objects, directories.
#include "source/file_source.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "model/document.hpp"
#include "support.hpp"

namespace fabdns {
namespace {

using namespace fabdns::testing;
namespace fs = std::filesystem;

// SPEC: changes on disk appear without restart; the brief for this source promises 1 s.
constexpr auto kChange = 1s;

class FileSourceTest : public ::testing::Test {
  protected:
    std::unique_ptr<FileSource> start(const std::string &path) {
        FileOptions o;
        o.path = path;
        auto s = std::make_unique<FileSource>(o);
        s->start(collector.callback());
        return s;
    }

    TempDir dir;
    Collector collector;
};

std::string two_services() {
    return service_yaml("nginx", "default", {"10.0.0.1"}) + "---\n" +
           service_yaml("mysql", "default", {"10.0.0.2"});
}

TEST_F(FileSourceTest, InitialLoad) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    auto set = collector.latest();
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(first_address(set, "default/nginx"), "10.0.0.1");
    EXPECT_EQ(first_address(set, "default/mysql"), "10.0.0.2");
    SourceStatus st = src->status();
    EXPECT_EQ(st.kind, "file");
    EXPECT_TRUE(st.healthy);
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.objects, 2u);
    EXPECT_EQ(st.rejected, 0u);
    EXPECT_GT(st.last_sync_unix, 0);
}

TEST_F(FileSourceTest, ChangeInPlaceAppearsWithinOneSecond) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    write_file(dir / "gs.yaml", service_yaml("nginx", "default", {"10.0.0.9"}));
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) {
            return set.size() == 1 && first_address(set, "default/nginx") == "10.0.0.9";
        },
        kChange));
}

TEST_F(FileSourceTest, RenameReplaceAppearsWithinOneSecond) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    for (int i = 1; i <= 3; ++i) {
        std::string ip = "10.0.1." + std::to_string(i);
        replace_file(dir / "gs.yaml", service_yaml("nginx", "default", {ip}));
        EXPECT_TRUE(collector.wait_for(
            [&](const auto &set) { return first_address(set, "default/nginx") == ip; }, kChange))
            << "replacement " << i;
    }
}

TEST_F(FileSourceTest, ConfigMapStyleSymlinkSwap) {
    // Kubernetes' atomic writer: gs.yaml -> ..data/gs.yaml, ..data -> ..v1, swapped by renaming
    // a new symlink over ..data.
    fs::create_directory(dir / "..v1");
    write_file(dir / "..v1/gs.yaml", service_yaml("nginx", "default", {"10.0.0.1"}));
    fs::create_directory_symlink("..v1", dir / "..data");
    fs::create_symlink("..data/gs.yaml", dir / "gs.yaml");
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));

    fs::create_directory(dir / "..v2");
    write_file(dir / "..v2/gs.yaml", service_yaml("nginx", "default", {"10.0.0.2"}));
    fs::create_directory_symlink("..v2", dir / "..data_tmp");
    fs::rename(dir / "..data_tmp", dir / "..data");
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) { return first_address(set, "default/nginx") == "10.0.0.2"; },
        kChange));
}

TEST_F(FileSourceTest, BadYamlKeepsLastGoodAndRecovers) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));

    write_file(dir / "gs.yaml", "apiVersion: dns.fabedge.io/v1alpha1\nkind: [unclosed\n");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures == 1; }, kChange));
    SourceStatus st = src->status();
    EXPECT_FALSE(st.healthy);
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.objects, 2u);
    EXPECT_NE(st.last_error.find("gs.yaml"), std::string::npos) << st.last_error;
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(collector.count(), 1u) << "a bad file must not replace the good set";

    write_file(dir / "gs.yaml", service_yaml("web", "prod", {"10.0.0.3"}));
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) { return set.size() == 1 && has_service(set, "prod/web"); }, kChange));
    st = src->status();
    EXPECT_TRUE(st.healthy);
    EXPECT_EQ(st.consecutive_failures, 0u);
    EXPECT_EQ(st.total_failures, 1u);
}

TEST_F(FileSourceTest, BadYamlAtStartDeliversNothing) {
    write_file(dir / "gs.yaml", "kind: [unclosed\n");
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures == 1; }));
    EXPECT_FALSE(src->status().has_data);
    EXPECT_EQ(collector.count(), 0u);
}

TEST_F(FileSourceTest, RejectedObjectsAreLeftOutAndTheRestLoads) {
    write_file(dir / "gs.yaml", service_yaml("nginx", "default", {"10.0.0.1"}) + "---\n" +
                                    service_yaml("broken", "default", {"10.0.0.300"}));
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    auto set = collector.latest();
    EXPECT_EQ(keys(set), std::vector<std::string>{"default/nginx"});
    SourceStatus st = src->status();
    EXPECT_TRUE(st.healthy);
    EXPECT_EQ(st.objects, 1u);
    EXPECT_EQ(st.rejected, 1u);
}

// SPEC §5: a rejected new version keeps the last good one; a JSON manifest follows the same rules
// as YAML (here: a List whose items omit kind and namespace).
TEST_F(FileSourceTest, TypeConfusedObjectKeepsItsLastGoodVersion) {
    auto item = [](const std::string &name, nlohmann::json addresses) {
        return nlohmann::json{
            {"metadata", {{"name", name}}},
            {"spec", {{"endpoints", {{{"addresses", std::move(addresses)}, {"cluster", "c1"}}}}}}};
    };
    auto list = [](std::initializer_list<nlohmann::json> items) {
        return nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump();
    };
    write_file(dir / "gs.json", list({item("nginx", {"10.0.0.1"}), item("mysql", {"10.0.0.2"})}));
    auto src = start(dir / "gs.json");
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(keys(collector.latest()),
              (std::vector<std::string>{"default/mysql", "default/nginx"}));

    nlohmann::json bad = item("nginx", "10.0.0.9");  // a string where a list belongs
    bad["metadata"]["namespace"] = "default";
    bad["spec"]["ports"] = {{{"port", {80}}}};
    replace_file(dir / "gs.json", list({bad, item("mysql", {"10.0.0.3"})}));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/mysql") == "10.0.0.3"; }, kChange));
    EXPECT_EQ(first_address(collector.latest(), "default/nginx"), "10.0.0.1");
    EXPECT_EQ(src->status().rejected, 1u);
    EXPECT_TRUE(src->status().healthy);

    replace_file(dir / "gs.json", list({item("mysql", {"10.0.0.3"})}));
    EXPECT_TRUE(collector.wait_for([](const auto &s) { return !has_service(s, "default/nginx"); },
                                   kChange));
}

// One decoder: a manifest decodes the same from a .json and a .yaml file (JSON text is YAML),
// services and rejection reasons alike, type-confused objects included.
TEST(DecodeManifestFile, SameTextAsJsonAndAsYamlDecodesTheSame) {
    nlohmann::json good = service_json("nginx", "default", {"10.0.0.1", "fd00::1"});
    nlohmann::json confused = service_json("mysql", "db", {"10.0.0.2"});
    confused["metadata"]["resourceVersion"] = 7;
    nlohmann::json ports = service_json("web", "default", {"10.0.0.3"});
    ports["spec"]["ports"][0]["port"] = {80};
    nlohmann::json nameless = service_json("x", "default", {"10.0.0.4"});
    nameless["metadata"].erase("name");
    nlohmann::json items = {good, confused, ports, nameless, 42, "text", nullptr};
    std::vector<std::string> texts = {
        nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(),
        nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(2),
        items.dump(),
        good.dump(),
        confused.dump(),
        nlohmann::json{{"kind", "List"}, {"items", "not a list"}}.dump(),
    };
    for (const auto &text : texts) {
        SCOPED_TRACE(text);
        DecodeResult js, ym;
        std::string js_why, ym_why;
        bool js_ok = source_detail::decode_manifest_file("gs.json", text, js, js_why);
        bool ym_ok = source_detail::decode_manifest_file("gs.yaml", text, ym, ym_why);
        ASSERT_EQ(js_ok, ym_ok) << js_why << " | " << ym_why;
        EXPECT_EQ(js.services, ym.services);
        ASSERT_EQ(js.rejected.size(), ym.rejected.size());
        for (size_t i = 0; i < js.rejected.size(); ++i) {
            EXPECT_EQ(js.rejected[i].key, ym.rejected[i].key);
            EXPECT_EQ(js.rejected[i].reason, ym.rejected[i].reason);
        }
        EXPECT_EQ(js.skipped, ym.skipped);
    }
}

// Every odd YAML input refuses the file with a reason (false) or rejects the object that holds
// it with a reason; none is taken silently and none throws.
TEST(DecodeManifestFile, YamlOdditiesAreRefusedWithAReason) {
    const std::string svc =
        "metadata: {name: a}\nspec: {endpoints: [{addresses: [10.0.0.1], "
        "cluster: c1}]}\n";
    struct Case {
        std::string text;
        bool file_ok;
        std::string why;  // the file's error, or the one rejection's reason
    };
    const Case cases[] = {
        {"kind: [unclosed\n", false, "invalid YAML at line 2, column 1: did not find expected"},
        {"spec: *missing\n", false, "alias *missing names no anchor before it"},
        {"spec: &s {ports: [*s]}\n", false, "alias *s is inside the node it names"},
        {svc + "---\nx: *a\n", false, "names no anchor"},
        {"\t- a\n", false, "invalid YAML at line 1, column 1:"},
        {"a: \x01\n", false, "invalid YAML at byte 3: control characters are not allowed"},
        {"%YAML 2.0\n---\n" + svc, false, "found incompatible YAML document"},
        {"--- just text\n", false, "document 1: the document is a string, not a GlobalService"},
        {svc + "--- !!binary aGVsbG8=\n", false, "document 2: the document is a string"},
        {"kind: List\nitems: 5\n", false, "document 1: items: expected a list, got a number"},
        {"metadata: {name: a, namespace: !!int 12}\nspec: {}\n", true,
         "metadata.namespace: expected a string, got a number"},
        {"metadata: {name: a}\nspec: {ports: [{port: !!float 80.5}]}\n", true,
         "spec.ports[0].port: not a port number (1..65535)"},
        {"metadata: {name: a}\nspec: {endpoints: [{addresses: [10.0.0.1], cluster: [c1]}]}\n", true,
         "spec.endpoints[0].cluster: expected a string, got a list"},
        {"metadata: {name: a}\nspec: {type: yes}\n", true, "spec.type: 'yes' is not ClusterIP"},
        {"metadata: {name: a}\nspec: {type: true}\n", true,
         "spec.type: expected a string, got a boolean"},
        {"? {name: a}\n: b\nmetadata: {name: a}\n", true, "spec: missing"},
    };
    for (const auto &c : cases) {
        SCOPED_TRACE(c.text);
        DecodeResult out;
        std::string why;
        bool ok = source_detail::decode_manifest_file("gs.yaml", c.text, out, why);
        ASSERT_EQ(ok, c.file_ok) << why;
        if (!ok) {
            EXPECT_NE(why.find(c.why), std::string::npos) << why;
            continue;
        }
        EXPECT_TRUE(out.services.empty());
        ASSERT_EQ(out.rejected.size(), 1u);
        EXPECT_NE(out.rejected[0].reason.find(c.why), std::string::npos) << out.rejected[0].reason;
    }
}

// Anchors and aliases load through the file source; an alias that names nothing keeps the last
// good set, as a syntax error does.
TEST_F(FileSourceTest, YamlAliasesLoadAndABadAliasKeepsLastGood) {
    write_file(dir / "gs.yaml", R"(kind: List
items:
- metadata: {name: a}
  spec: {endpoints: &eps [{addresses: [10.0.0.1], cluster: c1}]}
- metadata: {name: b}
  spec: {endpoints: *eps}
)");
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(first_address(collector.latest(), "default/b"), "10.0.0.1");

    write_file(dir / "gs.yaml", "metadata: {name: c}\nspec: {endpoints: *eps}\n");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures == 1; }, kChange));
    EXPECT_NE(src->status().last_error.find("alias *eps names no anchor"), std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(src->status().objects, 2u);
}

TEST_F(FileSourceTest, EmptyFileIsAnEmptySet) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    write_file(dir / "gs.yaml", "");
    EXPECT_TRUE(collector.wait_for([](const auto &set) { return set.empty(); }, kChange));
}

TEST_F(FileSourceTest, MissingFileKeepsLastGoodAndReturns) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    fs::remove(dir / "gs.yaml");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }, kChange));
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(src->status().objects, 2u);
    write_file(dir / "gs.yaml", service_yaml("nginx", "default", {"10.0.0.7"}));
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) { return first_address(set, "default/nginx") == "10.0.0.7"; },
        kChange));
}

TEST_F(FileSourceTest, FileCreatedAfterStart) {
    auto src = start(dir / "later.yaml");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures == 1; }));
    EXPECT_FALSE(src->status().has_data);
    write_file(dir / "later.yaml", two_services());
    EXPECT_TRUE(collector.wait_for([](const auto &set) { return set.size() == 2; }, kChange));
}

TEST_F(FileSourceTest, DirectoryOfManifests) {
    write_file(dir / "a.yaml", service_yaml("a", "default", {"10.0.0.1"}));
    write_file(dir / "b.yml", service_yaml("b", "default", {"10.0.0.2"}));
    nlohmann::json list = {{"apiVersion", "v1"},
                           {"kind", "List"},
                           {"items", {service_json("c", "default", {"10.0.0.3"})}}};
    write_file(dir / "c.json", list.dump());
    write_file(dir / "notes.txt", "kind: [not a manifest and not read\n");
    write_file(dir / ".hidden.yaml", "kind: [hidden files are skipped\n");
    auto src = start(dir.path());
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(keys(collector.latest()),
              (std::vector<std::string>{"default/a", "default/b", "default/c"}));

    write_file(dir / "d.yaml", service_yaml("d", "default", {"10.0.0.4"}));
    EXPECT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "default/d"); }, kChange));
    fs::remove(dir / "a.yaml");
    EXPECT_TRUE(collector.wait_for(
        [](const auto &s) { return !has_service(s, "default/a") && s.size() == 3; }, kChange));
}

TEST_F(FileSourceTest, SyntaxErrorInOneFileKeepsTheWholeDirectory) {
    write_file(dir / "a.yaml", service_yaml("a", "default", {"10.0.0.1"}));
    write_file(dir / "b.yaml", service_yaml("b", "default", {"10.0.0.2"}));
    auto src = start(dir.path());
    ASSERT_TRUE(collector.wait_for_count(1));
    write_file(dir / "b.yaml", "kind: [broken\n");
    write_file(dir / "a.yaml", service_yaml("a", "default", {"10.0.0.9"}));
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }, kChange));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(first_address(collector.latest(), "default/a"), "10.0.0.1");
    EXPECT_NE(src->status().last_error.find("b.yaml"), std::string::npos);
}

// A directory of `files` manifests, f0.yaml .. f<files-1>.yaml, each with `per_file` services
// s<file>-<i> at 10.<file>.0.<i>.
void write_spread(const TempDir &dir, int files, int per_file) {
    for (int f = 0; f < files; ++f) {
        std::string text;
        for (int i = 0; i < per_file; ++i)
            text +=
                "---\n" + service_yaml("s" + std::to_string(f) + "-" + std::to_string(i), "default",
                                       {"10." + std::to_string(f) + ".0." + std::to_string(i + 1)});
        write_file(dir / ("f" + std::to_string(f) + ".yaml"), text);
    }
}

// What a source started now on `path` delivers first: the set decoded from scratch.
std::vector<GlobalService> from_scratch(const std::string &path) {
    Collector c;
    FileOptions o;
    o.path = path;
    FileSource s(o);
    s.start(c.callback());
    EXPECT_TRUE(c.wait_for_count(1));
    return c.latest();
}

// How many services two sets share by pointer (the engine skips those without comparing).
size_t shared_services(const ServiceSet &a, const ServiceSet &b) {
    size_t n = 0;
    for (const auto &x : *a) n += std::count(b->begin(), b->end(), x);
    return n;
}

TEST_F(FileSourceTest, RewriteInADirectoryDecodesOnlyThatFile) {
    write_spread(dir, 5, 4);
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(collector.latest().size(), 20u);
    EXPECT_EQ(src.files_decoded(), 5u);
    ServiceSet before = collector.latest_set();

    // One service changed, one added, one removed, all in f2.yaml.
    replace_file(dir / "f2.yaml", service_yaml("s2-0", "default", {"10.2.0.1"}) + "---\n" +
                                      service_yaml("s2-1", "default", {"10.2.9.9"}) + "---\n" +
                                      service_yaml("s2-2", "default", {"10.2.0.3"}) + "---\n" +
                                      service_yaml("new", "default", {"10.2.0.5"}));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/s2-1") == "10.2.9.9"; }, kChange));
    EXPECT_EQ(src.files_decoded(), 6u) << "only f2.yaml is decoded again";
    auto set = collector.latest();
    EXPECT_FALSE(has_service(set, "default/s2-3"));
    EXPECT_TRUE(has_service(set, "default/new"));
    EXPECT_EQ(set, from_scratch(dir.path()));
    // Every service that did not change is the same object as before.
    EXPECT_EQ(shared_services(before, collector.latest_set()), 18u);

    // The same bytes again (a new mtime and inode): read, not decoded, not delivered.
    size_t count = collector.count();
    replace_file(dir / "f2.yaml", read_file(dir / "f2.yaml"));
    write_file(dir / "f3.yaml", read_file(dir / "f3.yaml"));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(src.files_decoded(), 6u);
    EXPECT_EQ(collector.count(), count);
}

// A JSON List of `n` services s<i> at 10.0.<i/250>.<i%250+1>, service `changed` at 10.9.9.9.
std::string json_list(int n, int changed = -1) {
    nlohmann::json items = nlohmann::json::array();
    for (int i = 0; i < n; ++i)
        items.push_back(service_json("s" + std::to_string(i), "default",
                                     {i == changed ? "10.9.9.9"
                                                   : "10.0." + std::to_string(i / 250) + "." +
                                                         std::to_string(i % 250 + 1)}));
    return nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(1);
}

TEST_F(FileSourceTest, OneChangedObjectInALargeJsonFileIsTheOnlyOneDecoded) {
    replace_file(dir / "all.json", json_list(200));
    auto src = start(dir / "all.json");
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(collector.latest().size(), 200u);
    EXPECT_EQ(src->objects_decoded(), 200u);
    ServiceSet before = collector.latest_set();

    replace_file(dir / "all.json", json_list(200, 77));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/s77") == "10.9.9.9"; }, kChange));
    EXPECT_EQ(src->objects_decoded(), 201u) << "only the changed object is decoded";
    EXPECT_EQ(src->files_decoded(), 2u);
    EXPECT_EQ(collector.latest(), from_scratch(dir / "all.json"));
    // Every other service is the same object as before.
    EXPECT_EQ(shared_services(before, collector.latest_set()), 199u);
}

// A JSON file is decoded as it is read; one that turns out broken near its end is refused with
// the whole decoder's error, with its position, and the set and the cache stay as they were.
TEST_F(FileSourceTest, JsonFileBrokenNearItsEndIsRefusedWithTheErrorsPosition) {
    replace_file(dir / "all.json", json_list(200));
    auto src = start(dir / "all.json");
    ASSERT_TRUE(collector.wait_for_count(1));
    std::string broken = json_list(200, 5);
    broken.insert(broken.rfind(']'), "x");
    replace_file(dir / "all.json", broken);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures == 1; }, kChange));
    const std::string expected = decode_json_document(broken, Container::Manifest).error;
    ASSERT_NE(expected.find("line"), std::string::npos) << expected;
    EXPECT_NE(src->status().last_error.find(expected), std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(first_address(collector.latest(), "default/s5"), "10.0.0.6");

    uint64_t decoded = src->objects_decoded();
    replace_file(dir / "all.json", json_list(200, 5));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/s5") == "10.9.9.9"; }, kChange));
    EXPECT_EQ(src->objects_decoded(), decoded + 1) << "the cache is the last good file's";
}

// Every shape a JSON file may have (an array, a List with other members, one object), edited at
// random and read in pieces, gives the services a whole decode of the file gives.
TEST_F(FileSourceTest, RandomJsonFilesGiveTheServicesOfAWholeDecode) {
    std::mt19937 rng(20261206);
    std::vector<int> names(30);
    for (int i = 0; i < 30; ++i) names[static_cast<size_t>(i)] = i;
    auto random_text = [&](int step) {
        std::shuffle(names.begin(), names.end(), rng);
        nlohmann::json items = nlohmann::json::array();
        size_t n = rng() % 30;
        for (size_t i = 0; i < n; ++i)
            items.push_back(service_json(
                "s" + std::to_string(names[i]), "default",
                {"10.2." + std::to_string(step) + "." + std::to_string(rng() % 200 + 1)}));
        switch (rng() % 4) {
            case 0:
                return items.dump(static_cast<int>(rng() % 3) - 1);
            case 1:
                return nlohmann::json{{"kind", "List"},
                                      {"metadata", {{"items", "x"}, {"resourceVersion", "9"}}},
                                      {"items", items}}
                    .dump(static_cast<int>(rng() % 3) - 1);
            case 2:
                return "\n{\"items\" : " + items.dump() + ",\n \"kind\": \"items\"}\n";
            default:
                return items.empty() ? std::string("[]") : items[0].dump(2);
        }
    };
    replace_file(dir / "gs.json", random_text(0));
    auto src = start(dir / "gs.json");
    ASSERT_TRUE(collector.wait_for_count(1));
    for (int step = 1; step <= 30; ++step) {
        std::string text = random_text(step);
        replace_file(dir / "gs.json", text);
        DecodeResult whole;
        std::string why;
        ASSERT_TRUE(source_detail::decode_manifest_file("gs.json", text, whole, why)) << why;
        std::sort(whole.services.begin(), whole.services.end(), key_less);
        EXPECT_TRUE(collector.wait_for([&](const auto &s) { return s == whole.services; }, kChange))
            << "step " << step << ": " << text;
    }
}

TEST_F(FileSourceTest, RemovedFileDropsItsServicesAndAnEarlierDuplicateReturns) {
    write_spread(dir, 3, 2);
    // default/s0-0 is in f0.yaml and, with another address, in f2.yaml: the last file wins.
    write_file(dir / "f2.yaml", read_file(dir / "f2.yaml") + "---\n" +
                                    service_yaml("s0-0", "default", {"10.9.9.9"}));
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(first_address(collector.latest(), "default/s0-0"), "10.9.9.9");
    EXPECT_EQ(src.files_decoded(), 3u);

    fs::remove(dir / "f2.yaml");
    ASSERT_TRUE(
        collector.wait_for([](const auto &s) { return !has_service(s, "default/s2-0"); }, kChange));
    auto set = collector.latest();
    EXPECT_EQ(keys(set), (std::vector<std::string>{"default/s0-0", "default/s0-1", "default/s1-0",
                                                   "default/s1-1"}));
    EXPECT_EQ(first_address(set, "default/s0-0"), "10.0.0.1");
    EXPECT_EQ(src.files_decoded(), 3u) << "a removal decodes nothing";
    EXPECT_EQ(set, from_scratch(dir.path()));
}

TEST_F(FileSourceTest, BadRewriteInADirectoryKeepsTheLastGoodSet) {
    write_spread(dir, 3, 2);
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    auto good = collector.latest();

    replace_file(dir / "f1.yaml", "kind: [broken\n");
    ASSERT_TRUE(eventually([&] { return src.status().total_failures == 1; }, kChange));
    EXPECT_NE(src.status().last_error.find("f1.yaml"), std::string::npos);
    // A good change elsewhere is not served while f1.yaml is broken (all or nothing).
    replace_file(dir / "f0.yaml", service_yaml("s0-0", "default", {"10.0.7.7"}));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(collector.latest(), good);
    EXPECT_EQ(src.status().objects, 6u);
    EXPECT_EQ(src.files_decoded(), 5u);

    // f1.yaml repaired with an object the decoder refuses: s1-0 keeps its last good version.
    replace_file(dir / "f1.yaml", service_yaml("s1-0", "default", {"10.1.0.300"}));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 4; }, kChange));
    auto set = collector.latest();
    EXPECT_EQ(first_address(set, "default/s0-0"), "10.0.7.7");
    EXPECT_EQ(first_address(set, "default/s1-0"), "10.1.0.1");
    EXPECT_FALSE(has_service(set, "default/s1-1"));
    EXPECT_EQ(src.files_decoded(), 6u) << "f0.yaml was decoded once, while f1.yaml was broken";
    EXPECT_TRUE(src.status().healthy);
    EXPECT_EQ(src.status().rejected, 1u);
}

// Files rewritten, added and removed at random, names often in several files: after each
// step the set is the one decoded from scratch (the last file's version of a name wins).
TEST_F(FileSourceTest, RandomChangesGiveTheSetDecodedFromScratch) {
    std::mt19937 rng(20261205);
    auto random_file = [&](int step) {
        std::string text;
        int n = static_cast<int>(rng() % 6);
        for (int i = 0; i < n; ++i)
            text += "---\n" +
                    service_yaml("s" + std::to_string(rng() % 40), "default",
                                 {"10.1." + std::to_string(step) + "." + std::to_string(i + 1)});
        return text;
    };
    for (int f = 0; f < 12; ++f)
        write_file(dir / ("f" + std::to_string(f) + ".yaml"), random_file(0));
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    for (int step = 1; step <= 25; ++step) {
        std::string file = dir / ("f" + std::to_string(rng() % 14) + ".yaml");
        if (rng() % 4 == 0)
            fs::remove(file);
        else
            replace_file(file, random_file(step));
        auto want = from_scratch(dir.path());
        EXPECT_TRUE(collector.wait_for([&](const auto &s) { return s == want; }, kChange))
            << "step " << step;
    }
}

// A rejected object keeps its held version when only its file changed, and goes with the file.
TEST_F(FileSourceTest, RejectedObjectInOneOfManyFilesKeepsItsLastGoodVersion) {
    write_spread(dir, 10, 4);
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    replace_file(dir / "f3.yaml", service_yaml("s3-0", "default", {"10.3.0.300"}) + "---\n" +
                                      service_yaml("s3-1", "default", {"10.3.7.7"}));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/s3-1") == "10.3.7.7"; }, kChange));
    auto set = collector.latest();
    EXPECT_EQ(set.size(), 38u);
    EXPECT_EQ(first_address(set, "default/s3-0"), "10.3.0.1");
    EXPECT_EQ(src.status().rejected, 1u);

    fs::remove(dir / "f3.yaml");
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 36; }, kChange));
    EXPECT_FALSE(has_service(collector.latest(), "default/s3-0"));
    EXPECT_EQ(src.status().rejected, 0u);
}

// Kubernetes' atomic writer on a ConfigMap volume: each key is a symlink through "..data" to a
// directory of this version's files; an update writes a new directory and renames a new
// "..data" over the old one, so every file has a new inode, though only one changed.
TEST_F(FileSourceTest, ConfigMapDirectorySwapDecodesOnlyTheChangedFile) {
    auto version = [&](const std::string &name, const std::string &b_address) {
        fs::create_directory(dir / name);
        write_file(dir / (name + "/a.yaml"), service_yaml("a", "default", {"10.0.0.1"}));
        write_file(dir / (name + "/b.yaml"), service_yaml("b", "default", {b_address}));
        write_file(dir / (name + "/c.json"), service_json("c", "default", {"10.0.0.3"}).dump());
    };
    version("..v1", "10.0.0.2");
    fs::create_directory_symlink("..v1", dir / "..data");
    for (const char *f : {"a.yaml", "b.yaml", "c.json"})
        fs::create_symlink(std::string("..data/") + f, dir / f);
    FileOptions o;
    o.path = dir.path();
    FileSource src(o);
    src.start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(collector.latest().size(), 3u);
    EXPECT_EQ(src.files_decoded(), 3u);
    ServiceSet before = collector.latest_set();

    version("..v2", "10.0.0.22");
    fs::create_directory_symlink("..v2", dir / "..data_tmp");
    fs::rename(dir / "..data_tmp", dir / "..data");
    fs::remove_all(dir / "..v1");
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/b") == "10.0.0.22"; }, kChange));
    EXPECT_EQ(src.files_decoded(), 4u) << "a.yaml and c.json are read again, not decoded";
    EXPECT_EQ(collector.latest(), from_scratch(dir.path()));
    EXPECT_EQ(shared_services(before, collector.latest_set()), 2u);

    // The next swap removes b.yaml from the ConfigMap.
    fs::create_directory(dir / "..v3");
    fs::copy(dir / "..v2/a.yaml", dir / "..v3/a.yaml");
    fs::copy(dir / "..v2/c.json", dir / "..v3/c.json");
    fs::create_directory_symlink("..v3", dir / "..data_tmp");
    fs::rename(dir / "..data_tmp", dir / "..data");
    fs::remove(dir / "b.yaml");
    fs::remove_all(dir / "..v2");
    ASSERT_TRUE(
        collector.wait_for([](const auto &s) { return !has_service(s, "default/b"); }, kChange));
    EXPECT_EQ(keys(collector.latest()), (std::vector<std::string>{"default/a", "default/c"}));
    EXPECT_EQ(src.files_decoded(), 4u);
}

TEST_F(FileSourceTest, DuplicateNamesKeepTheLast) {
    write_file(dir / "a.yaml", service_yaml("x", "default", {"10.0.0.1"}));
    write_file(dir / "b.yaml", service_yaml("x", "default", {"10.0.0.2"}));
    auto src = start(dir.path());
    ASSERT_TRUE(collector.wait_for_count(1));
    auto set = collector.latest();
    ASSERT_EQ(set.size(), 1u);
    EXPECT_EQ(first_address(set, "default/x"), "10.0.0.2");
}

TEST_F(FileSourceTest, UnchangedContentIsNotDeliveredAgain) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    write_file(dir / "gs.yaml", two_services());  // same bytes, new mtime
    write_file(dir / "other.txt", "unrelated");
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(collector.count(), 1u);
}

TEST_F(FileSourceTest, StopEndsUpdates) {
    write_file(dir / "gs.yaml", two_services());
    auto src = start(dir / "gs.yaml");
    ASSERT_TRUE(collector.wait_for_count(1));
    src->stop();
    write_file(dir / "gs.yaml", service_yaml("web", "prod", {"10.0.0.3"}));
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(collector.count(), 1u);
}

TEST_F(FileSourceTest, FactoryBuildsFileSource) {
    write_file(dir / "gs.yaml", two_services());
    Config::Source cfg;
    cfg.kind = SourceKind::File;
    cfg.file.path = dir / "gs.yaml";
    auto src = make_source(cfg);
    src->start(collector.callback());
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(src->status().kind, "file");

    cfg.file.path.clear();
    EXPECT_THROW(make_source(cfg), std::invalid_argument);
}

}  // namespace
}  // namespace fabdns
