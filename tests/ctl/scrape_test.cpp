// Unit tests of daemon/ctl/scrape: Prometheus text parsing, URLs, and a real scrape of
// metrics::Server.
#include "ctl/scrape.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics/registry.hpp"
#include "metrics/server.hpp"

namespace fabdns::ctl {
namespace {

TEST(ParseMetrics, SamplesLabelsAndComments) {
    auto s = parse_metrics(
        "# HELP fabdns_queries_total DNS replies sent.\n"
        "# TYPE fabdns_queries_total counter\n"
        "fabdns_queries_total{path=\"user\",proto=\"udp\",rcode=\"NOERROR\"} 12\n"
        "\n"
        "fabdns_map_sync_seconds 0.25 1700000000000\r\n"
        "odd{v=\"a\\\"b\\\\c\\nd\" , w = \"\"} NaN\n"
        "garbage{unterminated=\"x} 1\n"
        "novalue\n"
        "{nolabel=\"x\"} 1\n");
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0].name, "fabdns_queries_total");
    EXPECT_EQ(s[0].labels.at("path"), "user");
    EXPECT_EQ(s[0].labels.at("rcode"), "NOERROR");
    EXPECT_EQ(s[0].value, "12");
    EXPECT_EQ(s[0].number(), 12.0);
    EXPECT_EQ(s[0].series(), "fabdns_queries_total{path=\"user\",proto=\"udp\",rcode=\"NOERROR\"}");
    EXPECT_EQ(s[1].name, "fabdns_map_sync_seconds");
    EXPECT_EQ(s[1].value, "0.25");
    EXPECT_TRUE(s[1].labels.empty());
    EXPECT_EQ(s[2].labels.at("v"), "a\"b\\c\nd");
    EXPECT_EQ(s[2].labels.at("w"), "");
    EXPECT_TRUE(std::isnan(s[2].number()));
    EXPECT_EQ(s[2].series(), "odd{v=\"a\\\"b\\\\c\\nd\",w=\"\"}");
}

TEST(MetricsUrl, UnspecifiedGoesToLoopback) {
    EXPECT_EQ(metrics_url(*SocketAddr::parse("0.0.0.0:9153")), "http://127.0.0.1:9153/metrics");
    EXPECT_EQ(metrics_url(*SocketAddr::parse("[::]:9153")), "http://[::1]:9153/metrics");
    EXPECT_EQ(metrics_url(*SocketAddr::parse("10.0.0.1:1")), "http://10.0.0.1:1/metrics");
}

TEST(Scrape, ReadsARealServer) {
    metrics::Registry reg;
    auto r = reg.add([](metrics::Writer &w) {
        w.counter("fabdns_queries_total", "q").add({{"path", "user"}, {"rcode", "NOERROR"}}, 7);
    });
    metrics::Server server(*SocketAddr::parse("127.0.0.1:0"), reg);
    auto got = scrape(metrics_url(server.address()));
    ASSERT_TRUE(got.ok) << got.error;
    ASSERT_EQ(got.samples.size(), 1u);
    EXPECT_EQ(got.samples[0].series(), "fabdns_queries_total{path=\"user\",rcode=\"NOERROR\"}");
    EXPECT_EQ(got.samples[0].value, "7");

    auto missing = scrape("http://" + server.address().to_string() + "/nothing");
    EXPECT_FALSE(missing.ok);
    EXPECT_EQ(missing.error, "HTTP 404");
}

TEST(Scrape, ClosedPortIsAnError) {
    // A port that was free a moment ago: bind-and-close through a throwaway server.
    SocketAddr addr;
    {
        metrics::Registry reg;
        metrics::Server s(*SocketAddr::parse("127.0.0.1:0"), reg);
        addr = s.address();
    }
    auto got = scrape(metrics_url(addr), std::chrono::milliseconds(500));
    EXPECT_FALSE(got.ok);
    EXPECT_FALSE(got.error.empty());
}

}  // namespace
}  // namespace fabdns::ctl
