// Tests of KubernetesSource against tests/standins/kube_apiserver.py: list + watch events,
// 410 Gone re-lists without a gap, resume from the last resourceVersion after a dropped watch,
// bookmarks, bad events, paging, and credentials from a kubeconfig or the service account.
#include "source/kube_source.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "source/objects.hpp"
#include "support.hpp"

namespace fabdns {
namespace {

using namespace fabdns::testing;

// SPEC: watch events reach the answers within a second.
constexpr auto kEvent = 1s;

struct ApiServer {
    explicit ApiServer(std::vector<std::string> extra = {}) : child(argv(std::move(extra))) {
        std::istringstream line(child.wait_for_line("READY", 10s).substr(5));
        line >> port >> control_port;
    }
    static std::vector<std::string> argv(std::vector<std::string> extra) {
        std::vector<std::string> a{python(), standin("kube_apiserver.py")};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string url(const std::string &scheme = "http") const {
        return scheme + "://127.0.0.1:" + std::to_string(port);
    }
    nlohmann::json act(const std::string &path, const std::string &body = "") {
        return control(control_port, path, body);
    }
    // Applies an object; returns the resourceVersion it got.
    std::string apply(const nlohmann::json &obj) {
        return std::to_string(act("/apply", obj.dump())["rv"].get<int>());
    }
    nlohmann::json state() { return act("/state"); }
    std::vector<std::string> watch_rvs() {
        return state()["watch_rvs"].get<std::vector<std::string>>();
    }

    Child child;
    int port = 0, control_port = 0;
};

class KubeSourceTest : public ::testing::Test {
  protected:
    KubeOptions options(const std::string &server) const {
        KubeOptions o;
        o.server = server;
        o.service_account_dir = dir / "no-service-account";
        o.min_backoff = 100ms;
        o.max_backoff = 500ms;
        o.connect_timeout = 1s;
        o.list_timeout = 5s;
        return o;
    }
    std::unique_ptr<KubernetesSource> start(const KubeOptions &o) {
        auto s = std::make_unique<KubernetesSource>(o);
        s->start(collector.callback());
        return s;
    }

    TempDir dir;
    Collector collector;
};

TEST_F(KubeSourceTest, ListThenWatchEvents) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    api.apply(service_json("mysql", "db", {"10.0.0.2"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 2; }));
    SourceStatus st = src->status();
    EXPECT_EQ(st.kind, "kubernetes");
    EXPECT_TRUE(st.healthy);
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.objects, 2u);
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));

    api.apply(service_json("web", "prod", {"10.0.0.3"}));  // ADDED
    EXPECT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, kEvent));
    api.apply(service_json("web", "prod", {"10.0.0.4"}));  // MODIFIED
    EXPECT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "prod/web") == "10.0.0.4"; }, kEvent));
    api.act("/delete?namespace=db&name=mysql");  // DELETED
    EXPECT_TRUE(collector.wait_for(
        [](const auto &s) { return !has_service(s, "db/mysql") && s.size() == 2; }, kEvent));
    EXPECT_EQ(api.state()["lists"], 1);
    EXPECT_EQ(src->status().objects, 2u);
}

// The set comes in (namespace, name) order, which the engine takes as it is: "kube" before
// "kube-system", though "kube-system/..." sorts before "kube/..." as a string.
TEST_F(KubeSourceTest, DeliversTheSetInNamespaceNameOrder) {
    ApiServer api;
    api.apply(service_json("b", "kube-system", {"10.0.0.1"}));
    api.apply(service_json("z", "kube", {"10.0.0.2"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 2; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    api.apply(service_json("a", "kube", {"10.0.0.3"}));  // ADDED, by watch
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 3; }, kEvent));
    std::vector<std::string> keys;
    for (const GlobalService &svc : collector.latest()) keys.push_back(svc.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"kube/a", "kube/z", "kube-system/b"}));
}

TEST_F(KubeSourceTest, EmptyClusterIsAnEmptySet) {
    ApiServer api;
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_TRUE(collector.latest().empty());
    EXPECT_TRUE(src->status().healthy);
}

// Gone via HTTP 410 on the resumed watch, or via an ERROR event on the open one.
class KubeGoneTest : public KubeSourceTest, public ::testing::WithParamInterface<const char *> {};

TEST_P(KubeGoneTest, RelistsWithoutDeliveringAGap) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    api.apply(service_json("mysql", "default", {"10.0.0.2"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 2; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    size_t delivered = collector.count();

    // The first re-lists fail: the old set must stay until one succeeds.
    api.act("/fail_lists?n=3");
    api.act(std::string("/expire?how=") + GetParam());
    ASSERT_TRUE(eventually([&] { return api.state()["lists"] >= 4; }, 10s));
    EXPECT_EQ(collector.count(), delivered) << "nothing may be delivered before the re-list";
    // The stand-in counts the third list before the source has read its answer.
    EXPECT_TRUE(eventually([&] { return src->status().total_failures >= 3u; }));
    EXPECT_EQ(src->status().objects, 2u);

    ASSERT_TRUE(collector.wait_for_count(delivered + 1, 5s));
    EXPECT_EQ(collector.latest().size(), 2u);
    EXPECT_FALSE(collector.saw_empty());
    EXPECT_TRUE(eventually([&] { return src->status().healthy; }));

    // Watching again after the re-list.
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    EXPECT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, kEvent));
}

INSTANTIATE_TEST_SUITE_P(How, KubeGoneTest, ::testing::Values("http", "event"));

TEST_F(KubeSourceTest, ReListDecodesOnlyTheObjectsThatChanged) {
    ApiServer api;
    for (int i = 0; i < 30; ++i)
        api.apply(
            service_json("s" + std::to_string(i), "default", {"10.0.0." + std::to_string(i + 1)}));
    KubeOptions o = options(api.url());
    o.page_size = 7;  // the cache spans the pages of one list
    auto src = start(o);
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 30; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    EXPECT_EQ(src->objects_decoded(), 30u);
    ServiceSet before = collector.latest_set();

    // One object changes while nobody watches; the re-list finds it.
    api.act("/expire?how=http");
    api.apply(service_json("s12", "default", {"10.9.9.9"}));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "default/s12") == "10.9.9.9"; }, 5s));
    EXPECT_EQ(src->objects_decoded(), 31u) << "only the changed object is decoded again";
    size_t shared = 0;
    for (const auto &x : *before)
        shared += std::count(collector.latest_set()->begin(), collector.latest_set()->end(), x);
    EXPECT_EQ(shared, 29u);
}

TEST_F(KubeSourceTest, GoneWithChangesDuringTheGapShowsTheNewList) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    api.act("/expire?how=event");
    ASSERT_TRUE(eventually([&] { return api.state()["lists"] >= 2; }));
    api.act("/expire?how=http");  // the deletion below happens while nobody watches
    api.act("/delete?namespace=default&name=nginx");
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    EXPECT_TRUE(collector.wait_for(
        [](const auto &s) { return keys(s) == std::vector<std::string>{"prod/web"}; }, 5s));
    EXPECT_FALSE(collector.saw_empty());
}

// Breaks every open watch (how: abrupt or clean) and returns the watch request that followed.
std::string break_and_get_next_watch_rv(ApiServer &api, const std::string &how) {
    size_t before = api.watch_rvs().size();
    api.act("/break?how=" + how);
    std::vector<std::string> rvs;
    if (!eventually([&] {
            rvs = api.watch_rvs();
            return rvs.size() > before;
        })) {
        return "";
    }
    return rvs.back();
}

TEST_F(KubeSourceTest, DroppedWatchResumesFromLastResourceVersion) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    std::string rv = api.apply(service_json("web", "prod", {"10.0.0.3"}));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 2; }, kEvent));

    EXPECT_EQ(break_and_get_next_watch_rv(api, "abrupt"), rv);
    rv = api.apply(service_json("web", "prod", {"10.0.0.4"}));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &s) { return first_address(s, "prod/web") == "10.0.0.4"; }, kEvent));
    EXPECT_EQ(break_and_get_next_watch_rv(api, "clean"), rv);
    EXPECT_EQ(api.state()["lists"], 1) << "a dropped watch must not cause a re-list";
    EXPECT_FALSE(collector.saw_empty());
}

TEST_F(KubeSourceTest, EventsDuringTheDropAreReplayed) {
    ApiServer api;
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for_count(1));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    // The change lands while the watch is down (or reopening): the resumed watch replays it.
    api.act("/break?how=abrupt");
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    EXPECT_TRUE(collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, 3s));
    EXPECT_EQ(api.state()["lists"], 1);
}

TEST_F(KubeSourceTest, BookmarksAdvanceResourceVersion) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    api.act("/bump?n=5");  // other resources changed
    int bookmark_rv = api.act("/bookmark")["rv"].get<int>();
    std::this_thread::sleep_for(200ms);  // let the bookmark line arrive before the stream ends
    EXPECT_EQ(break_and_get_next_watch_rv(api, "clean"), std::to_string(bookmark_rv));
    EXPECT_EQ(api.state()["lists"], 1);
    size_t delivered = collector.count();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(collector.count(), delivered) << "a bookmark changes no service";
}

TEST_F(KubeSourceTest, BadEventsAreSkipped) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    size_t watches = api.watch_rvs().size();

    api.act("/raw", "this is not json");
    api.act("/raw", R"({"type":"SURPRISE","object":{}})");
    api.act("/raw", R"({"type":"ADDED"})");
    api.act("/raw", R"({"type":"ADDED","object":{"metadata":{"name":"x"}}})");  // no spec
    api.apply(service_json("broken", "default", {"10.0.0.300"}));
    // MODIFIED into an invalid object keeps the previous version.
    api.apply(service_json("nginx", "default", {"not-an-ip"}));
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    ASSERT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, kEvent));
    auto set = collector.latest();
    EXPECT_EQ(keys(set), (std::vector<std::string>{"default/nginx", "prod/web"}));
    EXPECT_EQ(first_address(set, "default/nginx"), "10.0.0.1");
    EXPECT_EQ(src->status().rejected, 3u);  // default/x, default/broken, default/nginx
    EXPECT_EQ(api.watch_rvs().size(), watches) << "bad events must not end the watch";

    api.act("/delete?namespace=default&name=broken");
    ASSERT_TRUE(eventually([&] { return src->status().rejected == 2; }));
}

// A list whose metadata has the wrong types is a failed list (retried), never a crash.
TEST_F(KubeSourceTest, TypeConfusedListIsAFailureNotACrash) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    api.act("/raw_list?n=2",
            R"({"kind":"GlobalServiceList","metadata":{"resourceVersion":7},"items":[]})");
    auto src = start(options(api.url()));
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_NE(src->status().last_error.find("metadata.resourceVersion: expected a string"),
              std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 0u);
    // Once the server answers properly again, the list goes through.
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }, 5s));
    EXPECT_TRUE(src->status().healthy);
}

// Type-confused watch events: an ERROR whose code is a quoted "410" means Gone (re-list), and a
// field of the wrong type rejects that object only; the daemon and the watch go on.
TEST_F(KubeSourceTest, TypeConfusedWatchEventsAreHandled) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    int lists = api.state()["lists"].get<int>();
    size_t watches = api.watch_rvs().size();

    api.act("/raw", R"({"type":"ERROR","object":{"code":"410"}})");
    ASSERT_TRUE(eventually([&] { return api.state()["lists"].get<int>() > lists; }))
        << "a quoted 410 must re-list";
    ASSERT_TRUE(eventually([&] { return api.watch_rvs().size() > watches; }));
    watches = api.watch_rvs().size();

    api.act("/raw", R"({"type":7,"object":{}})");
    api.act("/raw", R"({"type":"ERROR","object":{"code":[410],"message":{}}})");
    ASSERT_TRUE(eventually([&] { return api.watch_rvs().size() > watches; }, 10s))
        << "an ERROR event ends the watch, and a new one starts";
    EXPECT_EQ(api.state()["lists"].get<int>(), lists + 1) << "only a 410 re-lists";
    auto bad = service_json("nginx", "default", {"10.0.0.9"});
    bad["metadata"]["resourceVersion"] = 12;
    bad["spec"]["endpoints"][0]["addresses"] = "10.0.0.9";
    api.act("/raw", nlohmann::json({{"type", "MODIFIED"}, {"object", bad}}).dump());
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    ASSERT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, kEvent));
    EXPECT_EQ(first_address(collector.latest(), "default/nginx"), "10.0.0.1");
    EXPECT_EQ(src->status().rejected, 1u);
}

TEST_F(KubeSourceTest, ListFailuresAtStartAreRetried) {
    ApiServer api;
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    api.act("/fail_lists?n=2");
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }, 5s));
    SourceStatus st = src->status();
    EXPECT_EQ(st.total_failures, 2u);
    EXPECT_TRUE(st.healthy);
}

TEST_F(KubeSourceTest, ApiServerOutageKeepsTheSet) {
    auto api = std::make_unique<ApiServer>();
    api->apply(service_json("nginx", "default", {"10.0.0.1"}));
    auto src = start(options(api->url()));
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    ASSERT_TRUE(eventually([&] { return api->state()["open_watches"] == 1; }));
    api.reset();  // the API server dies
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_FALSE(src->status().healthy);
    EXPECT_EQ(src->status().objects, 1u);
}

TEST_F(KubeSourceTest, ListsInPages) {
    ApiServer api;
    for (int i = 0; i < 7; ++i) {
        api.apply(service_json("svc" + std::to_string(i), "default",
                               {"10.0.1." + std::to_string(i + 1)}));
    }
    KubeOptions o = options(api.url());
    o.page_size = 3;
    auto src = start(o);
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 7; }));
    EXPECT_EQ(api.state()["lists"], 3);
}

// A list of thousands of objects in pages: every continue token stays short (one that carried
// the list's keys outgrew a URL), every page is read, and the watch starts from the list.
TEST_F(KubeSourceTest, ListsThousandsInPages) {
    nlohmann::json items = nlohmann::json::array();
    for (int i = 0; i < 5000; ++i)
        items.push_back(
            service_json("service-number-" + std::to_string(i), "default",
                         {"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)}));
    std::string data = dir / "objects.json";
    replace_file(data, items.dump());
    ApiServer api({"--data", data});
    KubeOptions o = options(api.url());
    o.page_size = 500;
    auto src = start(o);
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 5000; }, 30s));
    EXPECT_EQ(first_address(collector.latest(), "default/service-number-4999"), "10.0.19.250");
    EXPECT_EQ(api.state()["lists"], 10);
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    api.apply(service_json("service-number-0", "default", {"10.9.9.9"}));
    EXPECT_TRUE(collector.wait_for(
        [](const auto &s) {
            return s.size() == 5000 && first_address(s, "default/service-number-0") == "10.9.9.9";
        },
        kEvent + 2s));
}

// Watch events (added, modified, unchanged but re-applied, rejected, deleted) and a re-list,
// fed to an engine as the daemon does, set by set: its answers equal those of an engine built
// from scratch from what the API server holds, and a service no event touched is the same object
// in every set, also after the re-list (so the engine never compares it again).
TEST_F(KubeSourceTest, WatchSequenceEqualsAFromScratchEngine) {
    ApiServer api;
    std::map<std::string, GlobalService> want;  // by namespace/name
    auto put = [&](const std::string &name, const std::string &ns,
                   const std::vector<std::string> &addrs, const std::string &cluster) {
        api.apply(service_json(name, ns, addrs, cluster));
        GlobalService s;
        s.name = name;
        s.ns = ns;
        for (const auto &a : addrs) {
            Endpoint e;
            e.addresses.push_back(*IpAddr::parse(a));
            e.cluster = e.zone = cluster;
            e.region = "north";
            s.endpoints.push_back(std::move(e));
        }
        want[ns + "/" + name] = std::move(s);
    };
    for (int i = 0; i < 40; i++)
        put("s" + std::to_string(i), i % 3 ? "default" : "kube", {"10.1.0." + std::to_string(i)},
            "beijing");

    EngineOptions eo;
    eo.node = {"beijing", "beijing", "north"};
    Engine live(eo);
    std::mutex mu;
    std::condition_variable cv;
    ServiceSet first, last;
    size_t deliveries = 0;
    KubernetesSource src(options(api.url()));
    src.start([&](ServiceSet set) {
        live.set_service_set(set);
        std::lock_guard lock(mu);
        if (!first) first = set;
        last = set;
        deliveries++;
        cv.notify_all();
    });
    auto wait_for_key = [&](const std::string &key) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, 5s,
                           [&] { return last && source_detail::find_held(*last, key) != nullptr; });
    };
    ASSERT_TRUE(wait_for_key("default/s1"));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));

    std::mt19937 rng(7);
    auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
    for (int step = 0; step < 60; step++) {
        const int i = 10 + pick(40);  // s0..s9 are never touched
        const std::string name = "s" + std::to_string(i), ns = i % 3 ? "default" : "kube";
        const std::string key = ns + "/" + name;
        switch (pick(5)) {
            case 0:
                api.act("/delete?namespace=" + ns + "&name=" + name);
                want.erase(key);
                break;
            case 1:  // refused: the last good version stays
                api.apply(service_json(name, ns, {"10.1.0.300"}));
                break;
            case 2:  // the same content again (a new resourceVersion only)
                if (want.count(key)) {
                    api.apply(service_json(name, ns,
                                           {want[key].endpoints[0].addresses[0].to_string()},
                                           want[key].endpoints[0].cluster));
                    break;
                }
                [[fallthrough]];
            default:
                put(name, ns, {"10.2." + std::to_string(pick(4)) + "." + std::to_string(pick(200))},
                    pick(2) ? "beijing" : "shanghai");
        }
        if (step == 30) api.act("/expire?how=event");  // a re-list in the middle
        if (pick(4) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(pick(80)));
    }
    put("marker", "default", {"10.3.0.1"}, "beijing");  // delivered after every event above
    ASSERT_TRUE(wait_for_key("default/marker"));
    EXPECT_GE(api.state()["lists"].get<int>(), 2) << "the sequence had a re-list";

    std::lock_guard lock(mu);
    EXPECT_GT(deliveries, 2u);
    std::vector<std::string> got_keys;
    for (const ServicePtr &s : *last) got_keys.push_back(s->key());
    std::vector<std::string> want_keys;
    for (const auto &[k, s] : want) want_keys.push_back(k);
    std::sort(want_keys.begin(), want_keys.end());
    std::vector<std::string> sorted_got = got_keys;
    std::sort(sorted_got.begin(), sorted_got.end());
    EXPECT_EQ(sorted_got, want_keys);
    for (int i = 0; i < 10; i++) {
        const std::string key = (i % 3 ? "default/s" : "kube/s") + std::to_string(i);
        const ServicePtr *a = source_detail::find_held(*first, key),
                         *b = source_detail::find_held(*last, key);
        ASSERT_TRUE(a && b) << key;
        EXPECT_EQ(*a, *b) << key << " was copied, not shared";
    }

    Engine fresh(eo);
    std::vector<GlobalService> all;
    for (const auto &[k, s] : want) all.push_back(s);
    fresh.set_services(std::move(all));
    EXPECT_EQ(live.serial(), fresh.serial());
    std::map<std::pair<std::string, uint16_t>, Answer> a, b;
    live.for_each_service_answer(
        [&](std::string_view n, std::string_view, uint16_t t, const Answer &x) {
            a[{std::string(n), t}] = x;
        });
    fresh.for_each_service_answer(
        [&](std::string_view n, std::string_view, uint16_t t, const Answer &x) {
            b[{std::string(n), t}] = x;
        });
    EXPECT_EQ(a.size(), b.size());
    EXPECT_TRUE(a == b) << "the live engine answers differently from one built from scratch";
}

TEST_F(KubeSourceTest, BurstIsCoalesced) {
    ApiServer api;
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for_count(1));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    for (int i = 0; i < 30; ++i) {
        api.apply(service_json("svc" + std::to_string(i), "default",
                               {"10.0.1." + std::to_string(i + 1)}));
    }
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 30; }, 5s));
    EXPECT_LT(collector.count(), 31u) << "every event was delivered on its own";
}

TEST_F(KubeSourceTest, StopIsPromptDuringAWatch) {
    ApiServer api;
    auto src = start(options(api.url()));
    ASSERT_TRUE(collector.wait_for_count(1));
    ASSERT_TRUE(eventually([&] { return api.state()["open_watches"] == 1; }));
    auto t0 = std::chrono::steady_clock::now();
    src->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

std::string base64(const std::string &in) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += t[(v >> s) & 63];
    }
    if (i + 1 == in.size()) {
        uint32_t v = uint8_t(in[i]) << 16;
        out += std::string{t[(v >> 18) & 63], t[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
        out += std::string{t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
    }
    return out;
}

TEST_F(KubeSourceTest, KubeconfigWithInlineCertificatesAndToken) {
    Certs certs(dir.path());
    ApiServer api({"--tls-cert", certs.file("server.crt"), "--tls-key", certs.file("server.key"),
                   "--client-ca", certs.file("ca.crt"), "--token", "s3cret"});
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    std::string kubeconfig = dir / "kubeconfig";
    write_file(kubeconfig,
               "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
               "clusters:\n"
               "- name: other\n  cluster:\n    server: https://127.0.0.1:1\n"
               "- name: test\n  cluster:\n    server: " +
                   api.url("https") +
                   "\n"
                   "    certificate-authority-data: " +
                   base64(read_file(certs.file("ca.crt"))) +
                   "\n"
                   "users:\n"
                   "- name: node\n  user:\n    token: s3cret\n"
                   "    client-certificate-data: " +
                   base64(read_file(certs.file("client.crt"))) +
                   "\n"
                   "    client-key-data: " +
                   base64(read_file(certs.file("client.key"))) +
                   "\n"
                   "contexts:\n"
                   "- name: other\n  context: {cluster: other, user: node}\n"
                   "- name: edge\n  context: {cluster: test, user: node}\n");
    KubeOptions o = options("");
    o.kubeconfig = kubeconfig;
    auto src = start(o);
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    EXPECT_EQ(api.state()["last_auth"], "Bearer s3cret");
}

TEST_F(KubeSourceTest, KubeconfigServerFromAnotherCaIsRefused) {
    Certs certs(dir.path());
    ApiServer api({"--tls-cert", certs.file("other-server.crt"), "--tls-key",
                   certs.file("other-server.key")});
    std::string kubeconfig = dir / "kubeconfig";
    write_file(kubeconfig,
               "current-context: c\n"
               "clusters: [{name: k, cluster: {server: '" +
                   api.url("https") +
                   "', certificate-authority: ca.crt}}]\n"
                   "users: [{name: u, user: {}}]\n"
                   "contexts: [{name: c, context: {cluster: k, user: u}}]\n");
    KubeOptions o = options("");
    o.kubeconfig = kubeconfig;
    auto src = start(o);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 0u);
    EXPECT_EQ(api.state()["lists"], 0);
}

TEST_F(KubeSourceTest, InClusterServiceAccountWithTokenRotation) {
    Certs certs(dir.path());
    ApiServer api({"--tls-cert", certs.file("server.crt"), "--tls-key", certs.file("server.key"),
                   "--token", "first"});
    api.apply(service_json("nginx", "default", {"10.0.0.1"}));
    std::string sa = dir / "sa";
    std::filesystem::create_directories(sa);
    write_file(sa + "/ca.crt", read_file(certs.file("ca.crt")));
    write_file(sa + "/token", "first\n");

    KubeOptions o = options("");
    o.service_account_dir = sa;
    int port = api.port;
    o.env = [port](const std::string &name) -> std::optional<std::string> {
        if (name == "KUBERNETES_SERVICE_HOST") return "127.0.0.1";
        if (name == "KUBERNETES_SERVICE_PORT") return std::to_string(port);
        return std::nullopt;
    };
    o.token_refresh = std::chrono::seconds(1);
    auto src = start(o);
    ASSERT_TRUE(collector.wait_for([](const auto &s) { return s.size() == 1; }));
    EXPECT_EQ(api.state()["last_auth"], "Bearer first");

    // The kubelet rotates the token; the server stops accepting the old one.
    write_file(sa + "/token", "second\n");
    api.act("/token?value=second");
    std::this_thread::sleep_for(1100ms);
    api.act("/break?how=clean");
    ASSERT_TRUE(eventually([&] { return api.state()["last_auth"] == "Bearer second"; }));
    api.apply(service_json("web", "prod", {"10.0.0.3"}));
    EXPECT_TRUE(collector.wait_for([](const auto &s) { return has_service(s, "prod/web"); }, 3s));
}

TEST_F(KubeSourceTest, NotInClusterAndNoServerIsAFailureNotACrash) {
    KubeOptions o = options("");
    o.env = [](const std::string &) -> std::optional<std::string> { return std::nullopt; };
    auto src = start(o);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_NE(src->status().last_error.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
    EXPECT_EQ(collector.count(), 0u);
}

TEST_F(KubeSourceTest, FactoryBuildsKubernetesSource) {
    Config::Source cfg;
    cfg.kind = SourceKind::Kubernetes;
    cfg.kubernetes.server = "http://127.0.0.1:1";
    auto src = make_source(cfg);
    EXPECT_EQ(src->status().kind, "kubernetes");
}

}  // namespace
}  // namespace fabdns
