// Tests of source/health.hpp: the status counters and the log-once-per-state-change rule.
#include "source/health.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "common/log.hpp"
#include "support.hpp"

namespace fabdns::source_detail {
namespace {

using namespace fabdns::testing;

// Captures what the logger writes to stderr while alive.
class StderrCapture {
  public:
    explicit StderrCapture(const std::string &path) : path_(path) {
        std::fflush(stderr);
        saved_ = dup(STDERR_FILENO);
        FILE *f = std::fopen(path.c_str(), "w");
        dup2(fileno(f), STDERR_FILENO);
        std::fclose(f);
    }
    ~StderrCapture() { restore(); }
    std::string finish() {
        restore();
        return read_file(path_);
    }

  private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        dup2(saved_, STDERR_FILENO);
        close(saved_);
        saved_ = -1;
    }
    std::string path_;
    int saved_ = -1;
};

size_t count(const std::string &text, const std::string &what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
        ++n;
    }
    return n;
}

TEST(HealthTest, CountsFailuresAndSuccesses) {
    Health h("hub", "hub https://x");
    h.pending("waiting");
    SourceStatus st = h.status();
    EXPECT_EQ(st.kind, "hub");
    EXPECT_FALSE(st.healthy);
    EXPECT_EQ(st.last_error, "waiting");
    EXPECT_EQ(st.total_failures, 0u);

    EXPECT_EQ(h.failed("tls", "bad cert"), 1u);
    EXPECT_EQ(h.failed("tls", "bad cert"), 2u);
    st = h.status();
    EXPECT_EQ(st.consecutive_failures, 2u);
    EXPECT_EQ(st.total_failures, 2u);
    EXPECT_EQ(st.last_error, "bad cert");
    EXPECT_EQ(st.last_sync_unix, 0);

    h.succeeded();
    h.delivered(7, 1);
    st = h.status();
    EXPECT_TRUE(st.healthy);
    EXPECT_TRUE(st.has_data);
    EXPECT_EQ(st.consecutive_failures, 0u);
    EXPECT_EQ(st.total_failures, 2u);
    EXPECT_EQ(st.objects, 7u);
    EXPECT_EQ(st.rejected, 1u);
    EXPECT_TRUE(st.last_error.empty());
    EXPECT_GT(st.last_sync_unix, 0);
    h.set_rejected(3);
    EXPECT_EQ(h.status().rejected, 3u);
}

TEST(HealthTest, LogsOncePerStateChange) {
    TempDir dir;
    log::Level saved = log::level();
    log::set_level(log::Level::Info);
    StderrCapture capture(dir / "stderr");
    Health h("hub", "hub https://x");
    for (int i = 0; i < 5; ++i) h.failed("http-500", "answered HTTP 500");
    for (int i = 0; i < 3; ++i) h.failed("timeout", "timed out");
    h.succeeded();
    h.succeeded();
    h.failed("timeout", "timed out");
    std::string out = capture.finish();
    log::set_level(saved);
    EXPECT_EQ(count(out, "answered HTTP 500"), 1u) << out;
    EXPECT_EQ(count(out, "timed out"), 2u) << out;  // once per outage
    EXPECT_EQ(count(out, "recovered after 8 failed attempt(s)"), 1u) << out;
    EXPECT_EQ(count(out, "recovered"), 1u) << out;
}

}  // namespace
}  // namespace fabdns::source_detail
