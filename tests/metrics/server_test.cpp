// Real HTTP round trips against metrics/server with libcurl: /metrics, /healthz, /readyz,
// unknown paths and methods, IPv6, a taken port, and a clean stop.
#include "metrics/server.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

namespace fabdns::metrics {
namespace {

struct Reply {
    CURLcode result = CURLE_OK;
    long status = 0;
    std::string body;
    std::string content_type;
    std::string headers;
};

size_t append(char *data, size_t size, size_t n, void *out) {
    static_cast<std::string *>(out)->append(data, size * n);
    return size * n;
}

// One request; method "HEAD" uses CURLOPT_NOBODY, anything else CURLOPT_CUSTOMREQUEST.
Reply request(const std::string &url, const std::string &method = "GET",
              const std::string &body = "") {
    Reply r;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (method == "HEAD") {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method == "POST") {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    } else if (method != "GET") {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    r.result = curl_easy_perform(c);
    if (r.result == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        char *ct = nullptr;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ct) r.content_type = ct;
    }
    curl_easy_cleanup(c);
    return r;
}

std::string base(const Server &s) {
    return "http://" + s.address().to_string();
}

SocketAddr loopback(uint16_t port = 0) {
    return SocketAddr{IpAddr::v4(127, 0, 0, 1), port};
}

class ServerTest : public testing::Test {
  protected:
    static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    static void TearDownTestSuite() { curl_global_cleanup(); }

    Registry registry;
};

TEST_F(ServerTest, ServesMetrics) {
    std::atomic<uint64_t> answers{3};
    auto reg = registry.add([&](Writer &w) {
        w.counter("fabdns_kernel_answers_total", "Queries answered in the kernel.")
            .add(answers.load());
        w.counter("fabdns_queries_total", "Queries answered in user space.")
            .add({{"path", "user"}, {"rcode", "NOERROR"}}, 1);
    });
    Server server(loopback(), registry);
    ASSERT_NE(server.address().port, 0);

    Reply r = request(base(server) + "/metrics");
    ASSERT_EQ(r.result, CURLE_OK) << curl_easy_strerror(r.result);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r.body.find("# TYPE fabdns_kernel_answers_total counter\n"
                          "fabdns_kernel_answers_total 3\n"),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("fabdns_queries_total{path=\"user\",rcode=\"NOERROR\"} 1\n"),
              std::string::npos);

    answers = 10;  // collectors run per scrape, so the next one sees the new value
    EXPECT_NE(request(base(server) + "/metrics").body.find("fabdns_kernel_answers_total 10\n"),
              std::string::npos);
}

TEST_F(ServerTest, PagesGetTheirQueryArguments) {
    Server server(
        loopback(), registry, nullptr,
        {{"/explain", [](const std::map<std::string, std::string> &args) {
              auto it = args.find("name");
              if (it == args.end()) return PageReply{400, "no name\n", "text/plain"};
              return PageReply{200, "{\"name\":\"" + it->second + "\"}", "application/json"};
          }}});
    Reply r = request(base(server) + "/explain?name=a%2Eb.global&type=A");
    ASSERT_EQ(r.result, CURLE_OK) << curl_easy_strerror(r.result);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, "{\"name\":\"a.b.global\"}") << "arguments arrive decoded";
    EXPECT_EQ(request(base(server) + "/explain").status, 400);
    EXPECT_EQ(request(base(server) + "/explainx").status, 404);
}

TEST_F(ServerTest, Healthz) {
    Server server(loopback(), registry);
    Reply r = request(base(server) + "/healthz");
    ASSERT_EQ(r.result, CURLE_OK);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "OK");
}

TEST_F(ServerTest, ReadyzFollowsTheCheck) {
    std::mutex mu;
    Readiness state{false, "source: first sync not done"};
    Server server(loopback(), registry, [&] {
        std::lock_guard lock(mu);
        return state;
    });
    Reply r = request(base(server) + "/readyz");
    ASSERT_EQ(r.result, CURLE_OK);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "source: first sync not done\n");
    {
        std::lock_guard lock(mu);
        state = Readiness{true, ""};
    }
    r = request(base(server) + "/readyz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "OK");
    {
        std::lock_guard lock(mu);
        state = Readiness{false, ""};
    }
    r = request(base(server) + "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "not ready\n");
}

TEST_F(ServerTest, NoReadyCheckMeansReady) {
    Server server(loopback(), registry);
    EXPECT_EQ(request(base(server) + "/readyz").status, 200);
}

TEST_F(ServerTest, UnknownPathIs404) {
    Server server(loopback(), registry);
    for (const char *path : {"/", "/metricsx", "/metrics/", "/health", "/debug/pprof"}) {
        Reply r = request(base(server) + path);
        ASSERT_EQ(r.result, CURLE_OK) << path;
        EXPECT_EQ(r.status, 404) << path;
    }
    // A query string does not change the path.
    EXPECT_EQ(request(base(server) + "/healthz?verbose=1").status, 200);
}

TEST_F(ServerTest, OtherMethodsAre405) {
    Server server(loopback(), registry);
    Reply post = request(base(server) + "/metrics", "POST", std::string(10000, 'x'));
    ASSERT_EQ(post.result, CURLE_OK) << curl_easy_strerror(post.result);
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
    for (const char *m : {"PUT", "DELETE", "OPTIONS"})
        EXPECT_EQ(request(base(server) + "/healthz", m).status, 405) << m;
}

TEST_F(ServerTest, HeadHasNoBody) {
    auto reg = registry.add([](Writer &w) { w.gauge("fabdns_x", "X.").add(1); });
    Server server(loopback(), registry);
    Reply r = request(base(server) + "/metrics", "HEAD");
    ASSERT_EQ(r.result, CURLE_OK) << curl_easy_strerror(r.result);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "");
}

TEST_F(ServerTest, IPv6Loopback) {
    SocketAddr v6{*IpAddr::parse("::1"), 0};
    std::unique_ptr<Server> server;
    try {
        server = std::make_unique<Server>(v6, registry);
    } catch (const ServerError &e) {
        GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    EXPECT_TRUE(server->address().ip.is_v6());
    Reply r = request("http://" + server->address().to_string() + "/healthz");
    ASSERT_EQ(r.result, CURLE_OK) << curl_easy_strerror(r.result);
    EXPECT_EQ(r.status, 200);
}

TEST_F(ServerTest, TakenPortIsAClearError) {
    Server first(loopback(), registry);
    try {
        Server second(first.address(), registry);
        FAIL() << "second server started on a taken port";
    } catch (const ServerError &e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(first.address().to_string()), std::string::npos) << msg;
        EXPECT_NE(msg.find("Address already in use"), std::string::npos) << msg;
    }
    // The first server is unaffected.
    EXPECT_EQ(request(base(first) + "/healthz").status, 200);
}

TEST_F(ServerTest, UnassignedAddressIsAClearError) {
    // 192.0.2.0/24 is TEST-NET-1: never configured on a host.
    try {
        Server s(SocketAddr{IpAddr::v4(192, 0, 2, 1), 0}, registry);
        FAIL();
    } catch (const ServerError &e) {
        EXPECT_NE(std::string(e.what()).find("192.0.2.1:0"), std::string::npos) << e.what();
    }
}

TEST_F(ServerTest, StopsCleanlyAndFreesThePort) {
    SocketAddr addr;
    {
        Server server(loopback(), registry);
        addr = server.address();
        EXPECT_EQ(request(base(server) + "/healthz").status, 200);
    }
    Reply r = request("http://" + addr.to_string() + "/healthz");
    EXPECT_EQ(r.result, CURLE_COULDNT_CONNECT);
    // The same port can be bound again right away (a reload that keeps metrics.listen).
    Server again(addr, registry);
    EXPECT_EQ(request(base(again) + "/healthz").status, 200);
}

TEST_F(ServerTest, CollectorExceptionStillServes) {
    auto reg = registry.add([](Writer &w) {
        w.gauge("fabdns_ok", "Ok.").add(1);
        throw std::runtime_error("boom");
    });
    Server server(loopback(), registry);
    Reply r = request(base(server) + "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("fabdns_ok 1\n"), std::string::npos);
}

TEST_F(ServerTest, ReadyCheckExceptionIs500) {
    Server server(loopback(), registry, []() -> Readiness { throw std::runtime_error("broken"); });
    EXPECT_EQ(request(base(server) + "/readyz").status, 500);
    EXPECT_EQ(request(base(server) + "/healthz").status, 200);
}

}  // namespace
}  // namespace fabdns::metrics
