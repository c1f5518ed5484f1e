// Regression tests for decode_yaml_documents (daemon/model/document.cpp) on YAML streams that
// yaml-cpp 0.7.0's LoadAll could not advance in (a top-level ',' after or instead of a node): they
// used to allocate until the process ran out of memory. Each case runs in a child process with
// an alarm, so a regression fails the test instead of hanging the run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "model/document.hpp"

namespace fabdns {
namespace {

// How a decode_yaml_documents call ended.
struct Outcome {
    bool finished = false;  // false: the child was killed (alarm) or crashed
    bool threw = false;
    std::string text;  // the exception's message, or "<services>/<rejected>" counts
};

// Runs decode_yaml_documents(input) in a child that the kernel kills after `seconds`.
Outcome parse_in_child(const std::string &input, unsigned seconds = 2) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    pid_t pid = fork();
    if (pid < 0) return {};
    if (pid == 0) {
        close(fds[0]);
        alarm(seconds);
        std::string msg;
        try {
            DocumentResult r = decode_yaml_documents(input);
            msg = r.error.empty() ? "R" + std::to_string(r.services.size()) + "/" +
                                        std::to_string(r.rejected.size())
                                  : "E" + r.error;
        } catch (const std::runtime_error &e) {
            msg = std::string("E") + e.what();
        } catch (...) {
            msg = "X";
        }
        ssize_t ignored = write(fds[1], msg.data(), msg.size());
        (void)ignored;
        _exit(0);
    }
    close(fds[1]);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    Outcome out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got.empty()) {
        out.text = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                       : "no result";
        return out;
    }
    out.finished = got[0] != 'X';
    out.threw = got[0] == 'E';
    out.text = got.substr(1);
    return out;
}

void expect_yaml_error_at(const std::string &input, int line, int column) {
    SCOPED_TRACE("input: " + input);
    Outcome o = parse_in_child(input);
    ASSERT_TRUE(o.finished) << o.text;
    ASSERT_TRUE(o.threw) << "parsed without error: " << o.text;
    std::string where =
        "invalid YAML at line " + std::to_string(line) + ", column " + std::to_string(column) + ":";
    EXPECT_EQ(o.text.rfind(where, 0), 0u) << o.text;
}

TEST(ManifestRegression, TopLevelCommaIsAnErrorNotAHang) {
    expect_yaml_error_at(",", 1, 1);
    expect_yaml_error_at("{},", 1, 3);
    expect_yaml_error_at("[],", 1, 3);
    expect_yaml_error_at("---\n,", 2, 1);
    expect_yaml_error_at("- a\n,", 2, 1);
    expect_yaml_error_at("\xEF\xBB\xBF,", 1, 1);
}

TEST(ManifestRegression, ErrorSaysWhatWasExpected) {
    Outcome o = parse_in_child("[],");
    ASSERT_TRUE(o.threw) << o.text;
    EXPECT_NE(o.text.find("did not find expected <document start>"), std::string::npos) << o.text;
}

constexpr const char *kService = R"(apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata: {name: nginx, namespace: default}
spec:
  endpoints: [{addresses: [10.233.0.10], cluster: beijing}]
)";

TEST(ManifestRegression, StuckDocumentAfterGoodOnesRejectsTheFile) {
    // A file is all or nothing: the good documents before the bad one are not taken alone.
    std::string text = std::string(kService) + "---\n" + kService + "---\n{},\n";
    // kService is 5 lines: the "{}," document starts on line 13.
    expect_yaml_error_at(text, 13, 3);
}

TEST(ManifestRegression, LineNumbersCountFromTheStartOfTheFile) {
    std::string text = std::string(kService) + "---\nkind: GlobalService\nmetadata: ]\n";
    expect_yaml_error_at(text, 8, 11);
}

TEST(ManifestRegression, DocumentMarkersStillWork) {
    std::string text = std::string("%YAML 1.2\n--- # first\n") + kService + "...\n" +
                       "--- {apiVersion: dns.fabedge.io/v1alpha1, kind: GlobalService, " +
                       "metadata: {name: a}, spec: {endpoints: [{addresses: [10.0.0.1], " +
                       "cluster: c1}]}}\n" + "---\n---\n...\n" + "--- " + "\n" + kService;
    Outcome o = parse_in_child(text);
    ASSERT_TRUE(o.finished) << o.text;
    ASSERT_FALSE(o.threw) << o.text;
    EXPECT_EQ(o.text, "3/0");
}

TEST(ManifestRegression, CommaInsideAScalarIsFine) {
    // A ',' that continues a plain scalar, or sits in a flow collection, is not the stuck case.
    // The first is the one plain scalar "x ,": no manifest, but no syntax error either.
    Outcome o = parse_in_child("x\n,\n");
    ASSERT_TRUE(o.finished) << o.text;
    EXPECT_EQ(o.text,
              "document 1: the document is a string, not a GlobalService, a List or an "
              "array of them");
    o = parse_in_child(std::string(kService) +
                       "---\nkind: ConfigMap\ndata: {a: \"1,2\", b: [1, 2,]}\n");
    ASSERT_TRUE(o.finished) << o.text;
    ASSERT_FALSE(o.threw) << o.text;
    EXPECT_EQ(o.text, "1/0");
}

}  // namespace
}  // namespace fabdns
