// Tests of the Prometheus text rendering (families, escaping, values) and of collector
// registration in metrics/registry.
#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

namespace fabdns::metrics {
namespace {

size_t count(const std::string &text, const std::string &needle) {
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
        n++;
    return n;
}

TEST(Writer, RendersFamiliesInDeclarationOrder) {
    Writer w;
    w.counter("fabdns_queries_total", "DNS queries answered in user space.")
        .add({{"path", "user"}, {"rcode", "NOERROR"}}, uint64_t{7})
        .add({{"path", "user"}, {"rcode", "NXDOMAIN"}}, 2);
    w.gauge("fabdns_map_entries", "Entries in the in-kernel answer map.").add(42);
    EXPECT_EQ(w.text(),
              "# HELP fabdns_queries_total DNS queries answered in user space.\n"
              "# TYPE fabdns_queries_total counter\n"
              "fabdns_queries_total{path=\"user\",rcode=\"NOERROR\"} 7\n"
              "fabdns_queries_total{path=\"user\",rcode=\"NXDOMAIN\"} 2\n"
              "# HELP fabdns_map_entries Entries in the in-kernel answer map.\n"
              "# TYPE fabdns_map_entries gauge\n"
              "fabdns_map_entries 42\n");
    EXPECT_EQ(w.dropped(), 0u);
}

TEST(Writer, HelpAndTypeOncePerFamilyAcrossCallers) {
    Writer w;
    w.counter("fabdns_kernel_pass_total", "Queries passed to the stack.")
        .add({{"reason", "miss"}}, 1);
    w.gauge("fabdns_map_entries", "Entries.").add(1);
    // A second caller adds to the same family later: its samples join the first group.
    w.counter("fabdns_kernel_pass_total", "Other help text.").add({{"reason", "tcp"}}, 2);
    std::string t = w.text();
    EXPECT_EQ(count(t, "# HELP fabdns_kernel_pass_total"), 1u);
    EXPECT_EQ(count(t, "# TYPE fabdns_kernel_pass_total counter"), 1u);
    EXPECT_NE(t.find("Queries passed to the stack."), std::string::npos);
    EXPECT_EQ(t.find("Other help text."), std::string::npos);
    // Samples of one family are contiguous, as the format requires.
    EXPECT_NE(t.find("fabdns_kernel_pass_total{reason=\"miss\"} 1\n"
                     "fabdns_kernel_pass_total{reason=\"tcp\"} 2\n"),
              std::string::npos)
        << t;
}

TEST(Writer, EscapesLabelValuesAndHelp) {
    Writer w;
    w.gauge("fabdns_test", "Help with \\ backslash\nand newline \"quotes\" kept.")
        .add({{"name", "a\"b\\c\nd"}}, 1);
    EXPECT_EQ(w.text(),
              "# HELP fabdns_test Help with \\\\ backslash\\nand newline \"quotes\" kept.\n"
              "# TYPE fabdns_test gauge\n"
              "fabdns_test{name=\"a\\\"b\\\\c\\nd\"} 1\n");
    EXPECT_EQ(escape_label_value("plain.name_1"), "plain.name_1");
    EXPECT_EQ(escape_label_value("\xc3\xa9"), "\xc3\xa9");  // UTF-8 passes through
    EXPECT_EQ(escape_help("a\\b\nc\"d"), "a\\\\b\\nc\"d");
}

TEST(Writer, EmptyHelpOmitsHelpLine) {
    Writer w;
    w.family("fabdns_x", Type::Untyped, "").add(1);
    EXPECT_EQ(w.text(), "# TYPE fabdns_x untyped\nfabdns_x 1\n");
}

TEST(Writer, FamilyWithoutSamplesStillDeclared) {
    Writer w;
    w.counter("fabdns_errors_total", "Errors.");
    EXPECT_EQ(w.text(), "# HELP fabdns_errors_total Errors.\n# TYPE fabdns_errors_total counter\n");
}

struct ValueCase {
    Value value;
    const char *text;
};

TEST(Writer, Values) {
    const ValueCase cases[] = {
        {0, "0"},
        {-3, "-3"},
        {uint64_t{18446744073709551615u}, "18446744073709551615"},
        {int64_t{-9223372036854775807 - 1}, "-9223372036854775808"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {1e21, "1e+21"},
        {1700000000.25, "1700000000.25"},
        {std::numeric_limits<double>::quiet_NaN(), "NaN"},
        {std::numeric_limits<double>::infinity(), "+Inf"},
        {-std::numeric_limits<double>::infinity(), "-Inf"},
        {2.0f, "2"},
        {uint8_t{255}, "255"},
    };
    for (const auto &c : cases) {
        std::string out;
        c.value.append_to(out);
        EXPECT_EQ(out, c.text);
    }
}

TEST(Writer, DropsWhatPrometheusWouldReject) {
    Writer w;
    auto &f = w.counter("fabdns_q_total", "Q.");
    f.add({{"rcode", "NOERROR"}, {"path", "user"}}, 1);
    f.add({{"path", "user"}, {"rcode", "NOERROR"}}, 2);  // same series, other label order
    f.add({{"0bad", "x"}}, 3);                           // invalid label name
    f.add({{"__name__", "x"}}, 4);                       // reserved label name
    f.add({{"a", "1"}, {"a", "2"}}, 5);                  // label given twice
    w.counter("fabdns bad name", "x").add(6);            // invalid metric name
    w.gauge("fabdns_q_total", "Q as gauge.").add(7);     // same name, other type
    EXPECT_EQ(w.dropped(), 6u);
    EXPECT_EQ(w.text(),
              "# HELP fabdns_q_total Q.\n"
              "# TYPE fabdns_q_total counter\n"
              "fabdns_q_total{rcode=\"NOERROR\",path=\"user\"} 1\n");
}

TEST(Writer, SameValuesInDifferentLabelsAreDistinct) {
    Writer w;
    auto &f = w.gauge("fabdns_g", "G.");
    f.add({{"a", "x"}, {"b", "y"}}, 1);
    f.add({{"a", "x=b"}, {"b", ""}}, 2);
    f.add({}, 3);
    f.add({{"a", ""}}, 4);
    EXPECT_EQ(w.dropped(), 0u) << w.text();
}

TEST(Names, Validity) {
    EXPECT_TRUE(valid_metric_name("fabdns_queries_total"));
    EXPECT_TRUE(valid_metric_name("ns:rule_name"));
    EXPECT_TRUE(valid_metric_name("_x"));
    EXPECT_FALSE(valid_metric_name(""));
    EXPECT_FALSE(valid_metric_name("1x"));
    EXPECT_FALSE(valid_metric_name("a-b"));
    EXPECT_TRUE(valid_label_name("rcode"));
    EXPECT_TRUE(valid_label_name("_r1"));
    EXPECT_FALSE(valid_label_name("a:b"));
    EXPECT_FALSE(valid_label_name("__reserved"));
    EXPECT_FALSE(valid_label_name(""));
}

TEST(Registry, CollectorsRunAtScrapeTime) {
    Registry reg;
    std::atomic<uint64_t> answers{0};
    auto r = reg.add([&](Writer &w) {
        w.counter("fabdns_kernel_answers_total", "Queries answered in the kernel.")
            .add(answers.load(std::memory_order_relaxed));
    });
    EXPECT_NE(reg.scrape().find("fabdns_kernel_answers_total 0\n"), std::string::npos);
    answers += 5;
    EXPECT_NE(reg.scrape().find("fabdns_kernel_answers_total 5\n"), std::string::npos);
}

TEST(Registry, TwoCollectorsShareAFamily) {
    Registry reg;
    auto a = reg.add([](Writer &w) {
        w.counter("fabdns_queries_total", "Queries.").add({{"path", "user"}}, 1);
    });
    auto b = reg.add([](Writer &w) {
        w.gauge("fabdns_map_entries", "Entries.").add(3);
        w.counter("fabdns_queries_total", "Queries.").add({{"path", "kernel"}}, 2);
    });
    EXPECT_EQ(reg.scrape(),
              "# HELP fabdns_queries_total Queries.\n"
              "# TYPE fabdns_queries_total counter\n"
              "fabdns_queries_total{path=\"user\"} 1\n"
              "fabdns_queries_total{path=\"kernel\"} 2\n"
              "# HELP fabdns_map_entries Entries.\n"
              "# TYPE fabdns_map_entries gauge\n"
              "fabdns_map_entries 3\n");
}

TEST(Registry, RegistrationUnregistersOnDestruction) {
    Registry reg;
    int calls = 0;
    {
        auto r = reg.add([&](Writer &) { calls++; });
        EXPECT_TRUE(r);
        reg.scrape();
        EXPECT_EQ(calls, 1);
    }
    reg.scrape();
    EXPECT_EQ(calls, 1);

    auto r = reg.add([&](Writer &) { calls++; });
    Registration moved = std::move(r);
    EXPECT_FALSE(r);  // NOLINT(bugprone-use-after-move): moved-from state is specified
    reg.scrape();
    EXPECT_EQ(calls, 2);
    moved.reset();
    EXPECT_FALSE(moved);
    reg.scrape();
    EXPECT_EQ(calls, 2);

    Registration assigned = reg.add([&](Writer &) { calls += 10; });
    assigned = reg.add([&](Writer &) { calls += 100; });  // the first one goes away
    reg.scrape();
    EXPECT_EQ(calls, 102);
}

TEST(Registry, RegistrationMayOutliveRegistry) {
    Registration r;
    {
        Registry reg;
        r = reg.add([](Writer &) {});
    }
    r.reset();  // must not touch the destroyed registry
    EXPECT_FALSE(r);
}

TEST(Registry, ThrowingCollectorDoesNotHideOthers) {
    Registry reg;
    auto a = reg.add([](Writer &w) {
        w.gauge("fabdns_a", "A.").add(1);
        throw std::runtime_error("map read failed");
    });
    auto b = reg.add([](Writer &w) { w.gauge("fabdns_b", "B.").add(2); });
    std::string t = reg.scrape();
    EXPECT_NE(t.find("fabdns_a 1\n"), std::string::npos);
    EXPECT_NE(t.find("fabdns_b 2\n"), std::string::npos);
}

TEST(Registry, ConcurrentScrapeAndRegistration) {
    Registry reg;
    std::atomic<bool> stop{false};
    std::thread scraper([&] {
        while (!stop.load()) reg.scrape();
    });
    for (int i = 0; i < 500; i++) {
        auto value = std::make_unique<std::atomic<int>>(i);
        auto r =
            reg.add([v = value.get()](Writer &w) { w.gauge("fabdns_v", "V.").add(v->load()); });
        r.reset();
        value.reset();  // safe: after reset() the collector can no longer run
    }
    stop = true;
    scraper.join();
}

}  // namespace
}  // namespace fabdns::metrics
