// Tests of HubSource against tests/standins/hub.py over mutual TLS: delivery, changes, every
// fault mode keeping the last good set, the snapshot across restarts, and certificate refusals.
#include "source/hub_source.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "support.hpp"

namespace fabdns {
namespace {

using namespace fabdns::testing;
using source_detail::decide_hub_answer;
using source_detail::HubDecision;
using source_detail::SortMemo;
namespace fs = std::filesystem;

constexpr auto kInterval = 300ms;
// SPEC: a change on the hub shows within one poll interval; 1 s of slack for the poll itself.
constexpr auto kChange = kInterval + 1s;
// A 1,000-service answer (~200 KiB) takes seconds to serve and decode under the sanitizers on a
// busy machine; the test is about which changes are delivered, not how fast.
constexpr auto kLargeChange = kInterval + 15s;

// A running hub.py with its ports.
struct Hub {
    Hub(const Certs &certs, const std::string &data, const std::string &server_cert = "server",
        const std::string &client_ca = "ca.crt")
        : child({python(), standin("hub.py"), "--data", data, "--cert",
                 certs.file(server_cert + ".crt"), "--key", certs.file(server_cert + ".key"),
                 "--client-ca", certs.file(client_ca), "--cluster", "beijing"}) {
        std::istringstream line(child.wait_for_line("READY", 10s).substr(5));
        line >> port >> control_port;
    }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
    void mode(const std::string &name, double seconds = 10) {
        control(control_port, "/mode?name=" + name + "&seconds=" + std::to_string(seconds));
    }
    nlohmann::json stats() { return control(control_port, "/stats"); }
    int service_requests() { return stats()["requests"].value("/api/global-services", 0); }

    Child child;
    int port = 0, control_port = 0;
};

class HubSourceTest : public ::testing::Test {
  protected:
    HubSourceTest() : certs(dir.path()) {
        set_data({service_json("nginx", "default", {"10.0.0.1"}),
                  service_json("mysql", "default", {"10.0.0.2"})});
    }

    void set_data(std::initializer_list<nlohmann::json> items) {
        replace_file(data_file(), nlohmann::json(nlohmann::json::array_t(items)).dump());
    }
    std::string data_file() const { return dir / "data.json"; }
    std::string snapshot_file() const { return dir / "state/last-known.json"; }

    HubOptions options(const std::string &url) const {
        HubOptions o = certs.hub_options(url, "beijing", snapshot_file(), kInterval);
        o.connect_timeout = 1s;
        o.request_timeout = 1500ms;
        o.max_backoff = 600ms;
        return o;
    }

    // For a large answer (many() below): polled every 2 s, so that no other poll comes
    // between a change and its delivery.
    HubOptions large_answer_options(const std::string &url) const {
        HubOptions o = options(url);
        o.interval = 2s;
        o.request_timeout = 15s;
        return o;
    }

    std::unique_ptr<HubSource> start(const HubOptions &o, Collector &c) {
        auto s = std::make_unique<HubSource>(o);
        s->start(c.callback());
        return s;
    }

    TempDir dir;
    Certs certs;
    Collector collector;
};

TEST_F(HubSourceTest, FirstPollDeliversAndWritesSnapshot) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    auto set = collector.latest();
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(first_address(set, "default/nginx"), "10.0.0.1");
    SourceStatus st = src->status();
    EXPECT_EQ(st.kind, "hub");
    EXPECT_TRUE(st.healthy);
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.objects, 2u);
    EXPECT_GT(st.last_sync_unix, 0);
    // The snapshot is the raw accepted answer.
    ASSERT_TRUE(eventually([&] { return fs::exists(snapshot_file()); }));
    EXPECT_EQ(read_file(snapshot_file()), read_file(data_file()));
}

TEST_F(HubSourceTest, SendsClusterHeader) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(hub.stats()["last_cluster"], "beijing");
}

TEST_F(HubSourceTest, WrongClusterHeaderIsRefusedByHub) {
    Hub hub(certs, data_file());
    HubOptions o = options(hub.url());
    o.cluster = "shanghai";
    auto src = start(o, collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_NE(src->status().last_error.find("403"), std::string::npos);
    EXPECT_EQ(collector.count(), 0u);
}

TEST_F(HubSourceTest, ChangeAppearsWithinIntervalPlusOneSecond) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    set_data({service_json("nginx", "default", {"10.0.0.9"})});
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) {
            return set.size() == 1 && first_address(set, "default/nginx") == "10.0.0.9";
        },
        kChange));
    ASSERT_TRUE(eventually([&] { return read_file(snapshot_file()) == read_file(data_file()); }));
}

TEST_F(HubSourceTest, UnchangedAnswerIsNotDeliveredAgain) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    int before = hub.service_requests();
    ASSERT_TRUE(eventually([&] { return hub.service_requests() >= before + 3; }, 3 * kLargeChange));
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_TRUE(src->status().healthy);
}

// n services svc0..svc{n-1}: the first at `first`, the last at `last`, the others at 10.0.1.1.
std::string many(size_t n, const std::string &first, const std::string &last) {
    nlohmann::json items = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i)
        items.push_back(service_json("svc" + std::to_string(i), "default",
                                     {i == 0       ? first
                                      : i + 1 == n ? last
                                                   : "10.0.1.1"}));
    return items.dump();
}

// Polls of an unchanged answer (a large one, sent chunked as the hub sends it) run on the one
// connection of the first poll: no TLS handshake per poll.
TEST_F(HubSourceTest, PollsOfAnUnchangedAnswerReuseOneConnection) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    int before = hub.service_requests();
    ASSERT_TRUE(eventually([&] { return hub.service_requests() >= before + 3; }, 3 * kLargeChange));
    EXPECT_EQ(hub.stats()["connections"], 1);
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_TRUE(src->status().healthy);
}

// An answer is compared with the held one block by block (4 KiB) while it arrives: a change of
// the same size in the first or the last block, and a shorter answer, are each delivered.
TEST_F(HubSourceTest, ChangesAnywhereInALargeAnswerAreDelivered) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    ASSERT_GT(fs::file_size(data_file()), size_t{3} << 16);
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    replace_file(data_file(), many(1000, "10.0.0.9", "10.0.0.2"));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &set) { return first_address(set, "default/svc0") == "10.0.0.9"; },
        kLargeChange));
    replace_file(data_file(), many(1000, "10.0.0.9", "10.0.0.8"));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &set) { return first_address(set, "default/svc999") == "10.0.0.8"; },
        kLargeChange));
    replace_file(data_file(), many(999, "10.0.0.9", "10.0.0.7"));
    ASSERT_TRUE(collector.wait_for(
        [](const auto &set) {
            return set.size() == 999 && first_address(set, "default/svc998") == "10.0.0.7";
        },
        kLargeChange));
    size_t delivered = collector.count();
    int before = hub.service_requests();
    ASSERT_TRUE(eventually([&] { return hub.service_requests() >= before + 3; }, 3 * kLargeChange));
    EXPECT_EQ(collector.count(), delivered) << "an unchanged answer was delivered again";
    EXPECT_TRUE(src->status().healthy);
}

// A changed answer crosses the network once: the blocks before the difference come from the
// snapshot (checked against the held answer's digests), the rest from the one transfer. Without
// a snapshot, or with one that holds something else, the start of the answer is fetched again;
// a change in the first block never needs it.
TEST_F(HubSourceTest, ChangedAnswerIsTransferredOnceWithASnapshot) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    ASSERT_GT(fs::file_size(data_file()), size_t{3} << 16);
    Hub hub(certs, data_file());
    auto src = start(large_answer_options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1, kLargeChange));
    ASSERT_TRUE(eventually([&] { return read_file(snapshot_file()) == read_file(data_file()); }));
    // Each change is made right after a delivery, so one poll sees it: the requests the hub
    // saw from then until the change is delivered.
    auto change = [&](const std::string &data, const std::string &key, const std::string &addr) {
        int before = hub.service_requests();
        size_t delivered = collector.count();
        replace_file(data_file(), data);
        EXPECT_TRUE(collector.wait_for_count(delivered + 1, 2 * kLargeChange));
        EXPECT_EQ(first_address(collector.latest(), key), addr);
        // Written after the delivery (a change reaches the kernel first).
        EXPECT_TRUE(eventually([&] { return read_file(snapshot_file()) == data; }));
        return hub.service_requests() - before;
    };
    EXPECT_EQ(change(many(1000, "10.0.0.1", "10.0.0.8"), "default/svc999", "10.0.0.8"), 1);
    EXPECT_EQ(change(many(1200, "10.0.0.1", "10.0.0.7"), "default/svc1199", "10.0.0.7"), 1);
    EXPECT_EQ(change(many(999, "10.0.0.1", "10.0.0.6"), "default/svc998", "10.0.0.6"), 1);
    EXPECT_EQ(collector.latest().size(), 999u);
    // A snapshot that is not the held answer: fetched again, and delivered all the same.
    std::string held = read_file(snapshot_file());
    replace_file(snapshot_file(), std::string(held.size(), ' '));
    EXPECT_EQ(change(many(999, "10.0.0.1", "10.0.0.5"), "default/svc998", "10.0.0.5"), 2);
    EXPECT_EQ(change(many(999, "10.0.0.4", "10.0.0.5"), "default/svc0", "10.0.0.4"), 1);
    EXPECT_TRUE(src->status().healthy);
}

TEST_F(HubSourceTest, ChangedAnswerIsFetchedAgainWithoutASnapshot) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    Hub hub(certs, data_file());
    HubOptions o = large_answer_options(hub.url());
    o.snapshot.clear();
    auto src = start(o, collector);
    ASSERT_TRUE(collector.wait_for_count(1, kLargeChange));
    int before = hub.service_requests();
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.8"));
    ASSERT_TRUE(collector.wait_for_count(2, 2 * kLargeChange));
    EXPECT_EQ(first_address(collector.latest(), "default/svc999"), "10.0.0.8");
    EXPECT_EQ(hub.service_requests() - before, 2);
}

// An answer is decoded as it arrives; one that is not plainly an array of objects (here a
// syntax error near its end) is fetched again whole, so that it is refused with the decoder's
// error and its position, and the set and the snapshot stay.
TEST_F(HubSourceTest, AnswerBrokenNearItsEndIsRefusedWithTheErrorsPosition) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    Hub hub(certs, data_file());
    auto src = start(large_answer_options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1, kLargeChange));
    ASSERT_TRUE(eventually([&] { return read_file(snapshot_file()) == read_file(data_file()); }));
    const std::string snapshot_before = read_file(snapshot_file());
    std::string broken = many(1000, "10.0.0.1", "10.0.0.8");
    broken.insert(broken.size() - 2, "x");
    int before = hub.service_requests();
    replace_file(data_file(), broken);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }, 2 * kLargeChange));
    const std::string error = src->status().last_error;
    const std::string expected = decode_json_document(broken, Container::Array).error;
    ASSERT_NE(expected.find("not valid JSON"), std::string::npos) << expected;
    EXPECT_NE(error.find(expected), std::string::npos) << error;
    EXPECT_EQ(hub.service_requests() - before, 2);  // decoded as it came, then whole
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(first_address(collector.latest(), "default/svc999"), "10.0.0.2");
    EXPECT_EQ(read_file(snapshot_file()), snapshot_before);
}

TEST_F(HubSourceTest, RejectedObjectsAreLeftOut) {
    set_data({service_json("nginx", "default", {"10.0.0.1"}),
              service_json("broken", "default", {"10.0.0.300"})});
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(keys(collector.latest()), std::vector<std::string>{"default/nginx"});
    EXPECT_EQ(src->status().rejected, 1u);
    EXPECT_TRUE(src->status().healthy);
}

// SPEC §5: a rejected new version of an object keeps its last good version, whatever the
// type confusion; an object that is gone from the answer is gone.
TEST_F(HubSourceTest, TypeConfusedObjectKeepsItsLastGoodVersion) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    nlohmann::json bad = service_json("nginx", "default", {"10.0.0.9"});
    bad["metadata"]["resourceVersion"] = 12;
    bad["spec"]["endpoints"][0]["addresses"] = "10.0.0.9";  // a string where a list belongs
    set_data({bad, service_json("mysql", "default", {"10.0.0.7"}),
              service_json("web", "default", {"10.0.0.8"})});
    ASSERT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "default/web"); }, kChange));
    auto set = collector.latest();
    EXPECT_EQ(keys(set),
              (std::vector<std::string>{"default/mysql", "default/nginx", "default/web"}));
    EXPECT_EQ(first_address(set, "default/nginx"), "10.0.0.1");
    EXPECT_EQ(first_address(set, "default/mysql"), "10.0.0.7");
    EXPECT_EQ(src->status().rejected, 1u);
    EXPECT_TRUE(src->status().healthy);

    // The snapshot holds the set as served: a restart with the hub down serves nginx too.
    ASSERT_TRUE(eventually(
        [&] { return read_file(snapshot_file()).find("10.0.0.8") != std::string::npos; }));
    {
        Collector restarted;
        auto again = start(options("https://127.0.0.1:1"), restarted);
        ASSERT_TRUE(restarted.wait_for_count(1));
        EXPECT_EQ(restarted.latest(), set);
    }

    set_data({service_json("mysql", "default", {"10.0.0.7"})});
    EXPECT_TRUE(collector.wait_for([](const auto &s) { return !has_service(s, "default/nginx"); },
                                   kChange));
}

TEST_F(HubSourceTest, AnswerWithNoUsableServiceIsRefusedWhileHolding) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    set_data({service_json("broken", "default", {"10.0.0.300"})});
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_NE(src->status().last_error.find("no usable services"), std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 1u);
    EXPECT_EQ(src->status().objects, 2u);
}

TEST_F(HubSourceTest, EmptyFirstAnswerIsAnEmptySet) {
    set_data({});
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_TRUE(collector.latest().empty());
    EXPECT_TRUE(src->status().healthy);
    EXPECT_TRUE(src->status().has_data);
}

// Every fault keeps the last good set, counts failures, and the source recovers afterwards.
class HubFaultTest : public HubSourceTest, public ::testing::WithParamInterface<const char *> {};

TEST_P(HubFaultTest, KeepsLastGoodSetAndCountsFailures) {
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    ASSERT_TRUE(eventually([&] { return fs::exists(snapshot_file()); }));
    const std::string snapshot_before = read_file(snapshot_file());

    hub.mode(GetParam(), 3);
    set_data({service_json("other", "default", {"10.0.0.5"})});  // must not show while faulty
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }, 10s))
        << "failures: " << src->status().total_failures;
    SourceStatus st = src->status();
    EXPECT_FALSE(st.healthy);
    EXPECT_GE(st.consecutive_failures, 2u);
    EXPECT_FALSE(st.last_error.empty());
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.objects, 2u);
    EXPECT_EQ(collector.count(), 1u) << "a faulty answer replaced the set";
    EXPECT_EQ(collector.latest().size(), 2u);
    EXPECT_EQ(read_file(snapshot_file()), snapshot_before);

    hub.mode("ok");
    EXPECT_TRUE(
        collector.wait_for([](const auto &s) { return has_service(s, "default/other"); }, 5s));
    EXPECT_TRUE(eventually([&] { return src->status().healthy; }));
    EXPECT_EQ(src->status().consecutive_failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, HubFaultTest,
                         ::testing::Values("500", "slow", "truncated", "garbage", "reset", "empty",
                                           "suspicious", "notarray"));

// The hub sends a large answer chunked: one cut short (the connection closed inside the chunk)
// is a failure that keeps the set, as a short Content-Length body is.
TEST_F(HubSourceTest, TruncatedChunkedAnswerKeepsTheLastGoodSet) {
    replace_file(data_file(), many(1000, "10.0.0.1", "10.0.0.2"));
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    hub.mode("truncated");
    replace_file(data_file(), many(1000, "10.0.0.9", "10.0.0.2"));
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }, 10s));
    EXPECT_FALSE(src->status().healthy);
    EXPECT_NE(src->status().last_error.find("failed"), std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 1u) << "a truncated answer replaced the set";
    hub.mode("ok");
    EXPECT_TRUE(collector.wait_for(
        [](const auto &set) { return first_address(set, "default/svc0") == "10.0.0.9"; },
        kLargeChange));
}

TEST_F(HubSourceTest, ResponseSizeLimitRefusesLargeAnswers) {
    Hub hub(certs, data_file());
    HubOptions o = options(hub.url());
    o.max_response_bytes = 100;
    auto src = start(o, collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_NE(src->status().last_error.find("larger than"), std::string::npos)
        << src->status().last_error;
    EXPECT_EQ(collector.count(), 0u);
}

TEST_F(HubSourceTest, RestartWithHubDownServesSnapshot) {
    {
        Hub hub(certs, data_file());
        auto src = start(options(hub.url()), collector);
        ASSERT_TRUE(collector.wait_for_count(1));
        ASSERT_TRUE(eventually([&] { return fs::exists(snapshot_file()); }));
    }  // the source stops, then the hub goes away

    Collector after;
    auto src = start(options("https://127.0.0.1:1"), after);  // nothing listens there
    ASSERT_TRUE(after.wait_for_count(1, 2s));
    auto set = after.latest();
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(first_address(set, "default/nginx"), "10.0.0.1");
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    SourceStatus st = src->status();
    EXPECT_TRUE(st.has_data);
    EXPECT_FALSE(st.healthy);
    EXPECT_EQ(st.last_sync_unix, 0);  // never synced with the hub itself
    EXPECT_EQ(after.count(), 1u);
}

TEST_F(HubSourceTest, CorruptSnapshotIsIgnored) {
    fs::create_directories(dir / "state");
    for (const std::string corrupt : {"[{\"metadata\": {\"name\": \"x\"", "not json at all",
                                      "{\"items\": []}", "[{\"metadata\":{}}]", ""}) {
        write_file(snapshot_file(), corrupt);
        Collector c;
        auto src = start(options("https://127.0.0.1:1"), c);
        ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
        EXPECT_EQ(c.count(), 0u) << "snapshot: " << corrupt;
        EXPECT_FALSE(src->status().has_data);
    }
    // With the hub up, the hub's data wins and replaces the corrupt snapshot.
    Hub hub(certs, data_file());
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    EXPECT_EQ(collector.latest().size(), 2u);
    ASSERT_TRUE(eventually([&] { return read_file(snapshot_file()) == read_file(data_file()); }));
}

TEST_F(HubSourceTest, ServerCertFromAnotherCaIsRefused) {
    Hub hub(certs, data_file(), "other-server");
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 0u);
    EXPECT_EQ(hub.service_requests(), 0) << "no request may pass an unverified handshake";
    EXPECT_FALSE(src->status().has_data);
}

TEST_F(HubSourceTest, ServerCertForAnotherNameIsRefused) {
    // Signed by our CA but not for 127.0.0.1: the host name check is on.
    Hub hub(certs, data_file(), "wrong-name-server");
    auto src = start(options(hub.url()), collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 0u);
    EXPECT_EQ(hub.service_requests(), 0);
}

TEST_F(HubSourceTest, MissingClientCertIsRefused) {
    Hub hub(certs, data_file());
    HubOptions o = options(hub.url());
    o.cert.clear();
    o.key.clear();
    auto src = start(o, collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 0u);
    EXPECT_EQ(hub.service_requests(), 0);
}

TEST_F(HubSourceTest, ClientCertFromAnotherCaIsRefused) {
    Hub hub(certs, data_file());
    HubOptions o = options(hub.url());
    o.cert = certs.file("other-client.crt");
    o.key = certs.file("other-client.key");
    auto src = start(o, collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 2; }));
    EXPECT_EQ(collector.count(), 0u);
    EXPECT_EQ(hub.service_requests(), 0);
}

TEST_F(HubSourceTest, PlainHttpUrlIsRefused) {
    Hub hub(certs, data_file());
    auto src = start(options("http://127.0.0.1:" + std::to_string(hub.port)), collector);
    ASSERT_TRUE(eventually([&] { return src->status().total_failures >= 1; }));
    EXPECT_EQ(collector.count(), 0u);
}

TEST_F(HubSourceTest, StopIsPromptDuringASlowRequest) {
    Hub hub(certs, data_file());
    hub.mode("slow", 30);
    HubOptions o = options(hub.url());
    o.request_timeout = 60s;
    auto src = start(o, collector);
    ASSERT_TRUE(eventually([&] { return hub.service_requests() >= 1; }));
    auto t0 = std::chrono::steady_clock::now();
    src->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

// Polls are timed from one start to the next: a slow answer does not stretch the interval, so a
// change waits at most one interval. Answers taking 400 ms at a 500 ms interval: 8 polls in
// 4 s (timed from each poll's end it would be 4.4).
TEST_F(HubSourceTest, PollsAreTimedFromTheirStart) {
    Hub hub(certs, data_file());
    HubOptions o = options(hub.url());
    o.interval = 500ms;
    o.jitter = 0;
    auto src = start(o, collector);
    ASSERT_TRUE(collector.wait_for_count(1));
    hub.mode("slow", 0.4);
    ASSERT_TRUE(eventually([&] { return hub.stats()["mode"] == "slow"; }));
    int before = hub.service_requests();
    std::this_thread::sleep_for(4s);
    EXPECT_GE(hub.service_requests() - before, 6);
    EXPECT_EQ(src->status().consecutive_failures, 0u);
}

// The decisions HubSource makes poll after poll (decide_hub_answer with its SpanCache and
// SortMemo): one changed object in the answer is the only one decoded, the others stay the held
// pointers, and the last answer's sort is reused.
TEST(HubDecision, OneChangedObjectIsTheOnlyOneDecoded) {
    auto answer = [](int changed) {
        nlohmann::json items = nlohmann::json::array();
        for (int i = 0; i < 100; ++i)
            items.push_back(
                service_json("s" + std::to_string(i), "default",
                             {i == changed ? "10.9.9.9" : "10.0.0." + std::to_string(i + 1)}));
        return items.dump();
    };
    SpanCache cache;
    SortMemo memo;
    ServiceList held;
    HubDecision first =
        decide_hub_answer(answer(-1), held, false, DecodeLimits{}, "hub", &cache, &memo);
    ASSERT_TRUE(first.refusal.empty());
    held = first.next.services;
    EXPECT_EQ(cache.objects_decoded(), 100u);
    EXPECT_EQ(memo.reuses, 0u);

    HubDecision second =
        decide_hub_answer(answer(40), held, true, DecodeLimits{}, "hub", &cache, &memo);
    ASSERT_TRUE(second.refusal.empty());
    EXPECT_EQ(cache.objects_decoded(), 101u);
    EXPECT_EQ(memo.reuses, 1u);
    ASSERT_EQ(second.next.services.size(), 100u);
    size_t same = 0;
    for (size_t i = 0; i < held.size(); ++i) same += second.next.services[i] == held[i];
    EXPECT_EQ(same, 99u);
    // The same decision as without the cache.
    HubDecision plain = decide_hub_answer(answer(40), held, true, DecodeLimits{}, "hub");
    ASSERT_EQ(plain.next.services.size(), 100u);
    for (size_t i = 0; i < 100; ++i) EXPECT_EQ(*plain.next.services[i], *second.next.services[i]);

    // An unnamed element refuses the answer whole, through the cache as without it.
    std::string bad = answer(40);
    bad.insert(1, R"({"spec":{}},)");
    HubDecision refused = decide_hub_answer(bad, held, true, DecodeLimits{}, "hub", &cache);
    EXPECT_EQ(refused.category, "suspicious");
    EXPECT_EQ(refused.refusal, decide_hub_answer(bad, held, true, DecodeLimits{}, "hub").refusal);
    EXPECT_EQ(cache.objects_decoded(), 102u);
}

TEST_F(HubSourceTest, FactoryBuildsHubSource) {
    Config::Source cfg;
    cfg.kind = SourceKind::Hub;
    cfg.hub.url = "https://127.0.0.1:1/";
    cfg.hub.snapshot = "";
    auto src = make_source(cfg);
    EXPECT_EQ(src->status().kind, "hub");
    cfg.hub.url.clear();
    EXPECT_THROW(make_source(cfg), std::invalid_argument);
}

}  // namespace
}  // namespace fabdns
