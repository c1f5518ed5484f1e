// Tests of kubeconfig and in-cluster credential resolution (source/kube_auth.hpp).
#include "source/kube_auth.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "support.hpp"

namespace fabdns::source_detail {
namespace {

using namespace fabdns::testing;

TEST(Base64Test, DecodesStandardAndUrlAlphabets) {
    EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
    EXPECT_EQ(base64_decode("aGVs\nbG8h"), "hello!");
    EXPECT_EQ(base64_decode("-_8="), "\xfb\xff");
    EXPECT_EQ(base64_decode(""), "");
    EXPECT_THROW(base64_decode("a*bc"), std::runtime_error);
    EXPECT_THROW(base64_decode("a"), std::runtime_error);
}

TEST(KubeconfigTest, ReadsTheCurrentContext) {
    TempDir dir;
    write_file(dir / "config",
               "current-context: b\n"
               "clusters:\n"
               "- name: one\n  cluster: {server: 'https://a:6443'}\n"
               "- name: two\n  cluster:\n    server: https://b:6443/\n"
               "    certificate-authority: certs/ca.crt\n"
               "users:\n"
               "- name: u\n  user:\n    tokenFile: /var/run/token\n"
               "    client-certificate: tls.crt\n    client-key: /abs/tls.key\n"
               "contexts:\n"
               "- name: a\n  context: {cluster: one, user: u}\n"
               "- name: b\n  context: {cluster: two, user: u}\n");
    KubeAccess a = load_kubeconfig(dir / "config");
    EXPECT_EQ(a.server, "https://b:6443");
    EXPECT_EQ(a.tls.ca_file, dir / "certs/ca.crt");
    EXPECT_EQ(a.tls.cert_file, dir / "tls.crt");
    EXPECT_EQ(a.tls.key_file, "/abs/tls.key");
    EXPECT_EQ(a.token_file, "/var/run/token");
    EXPECT_TRUE(a.token.empty());
    EXPECT_FALSE(a.tls.insecure_skip_verify);
}

TEST(KubeconfigTest, InlineDataAndInsecureFlag) {
    TempDir dir;
    write_file(dir / "config",
               "current-context: c\n"
               "clusters: [{name: k, cluster: {server: 'https://k', certificate-authority-data: "
               "Q0E=, insecure-skip-tls-verify: true}}]\n"
               "users: [{name: u, user: {token: abc, client-certificate-data: Q0VSVA==, "
               "client-key-data: S0VZ}}]\n"
               "contexts: [{name: c, context: {cluster: k, user: u}}]\n");
    KubeAccess a = load_kubeconfig(dir / "config");
    EXPECT_EQ(a.tls.ca_pem, "CA");
    EXPECT_EQ(a.tls.cert_pem, "CERT");
    EXPECT_EQ(a.tls.key_pem, "KEY");
    EXPECT_EQ(a.token, "abc");
    EXPECT_TRUE(a.tls.insecure_skip_verify);
}

TEST(KubeconfigTest, ProblemsAreExplained) {
    TempDir dir;
    auto error_of = [&](const std::string &text) {
        write_file(dir / "config", text);
        try {
            load_kubeconfig(dir / "config");
        } catch (const std::runtime_error &e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(error_of("clusters: []\n").find("current-context"), std::string::npos);
    EXPECT_NE(error_of("current-context: x\ncontexts: []\n").find("no entry named 'x'"),
              std::string::npos);
    EXPECT_NE(error_of("current-context: c\n"
                       "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                       "users: [{name: u, user: {exec: {command: aws}}}]\n"
                       "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
                  .find("not supported"),
              std::string::npos);
    EXPECT_NE(error_of("current-context: c\n"
                       "clusters: [{name: k, cluster: {certificate-authority-data: '***'}}]\n"
                       "contexts: [{name: c, context: {cluster: k}}]\n")
                  .find("no server"),
              std::string::npos);
    EXPECT_NE(error_of("current-context: [").find("config"), std::string::npos);
    EXPECT_NE(error_of("- a list\n").find("not a kubeconfig"), std::string::npos);
    EXPECT_THROW(load_kubeconfig(dir / "missing"), std::runtime_error);
}

TEST(KubeAccessTest, ServerOverridesKubeconfigCluster) {
    TempDir dir;
    write_file(dir / "config",
               "current-context: c\n"
               "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
               "users: [{name: u, user: {token: t}}]\n"
               "contexts: [{name: c, context: {cluster: k, user: u}}]\n");
    KubeAccess a = resolve_kube_access("https://override:1/", dir / "config", dir / "sa", nullptr);
    EXPECT_EQ(a.server, "https://override:1");
    EXPECT_EQ(a.token, "t");
}

TEST(KubeAccessTest, KubeconfigTokenGoesOverPlainHttpOnlyWhenAllowed) {
    TempDir dir;
    std::filesystem::create_directories(dir / "sa");
    write_file(dir / "config",
               "current-context: c\n"
               "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
               "users: [{name: u, user: {token: t}}]\n"
               "contexts: [{name: c, context: {cluster: k, user: u}}]\n");
    write_file(dir / "file-token",
               "current-context: c\n"
               "clusters: [{name: k, cluster: {server: 'HTTP://k:8080'}}]\n"
               "users: [{name: u, user: {tokenFile: /run/token}}]\n"
               "contexts: [{name: c, context: {cluster: k, user: u}}]\n");
    struct Case {
        const char *server, *kubeconfig;
        bool allow;
        bool sends;  // a token (fixed or from a file) is kept
    } cases[] = {
        {"http://127.0.0.1:10261", "config", false, false},
        {"http://127.0.0.1:10261/", "config", true, true},
        {"https://override:1", "config", false, true},
        {"", "config", false, true},       // the kubeconfig's https server
        {"", "file-token", false, false},  // the kubeconfig's own server is http
        {"", "file-token", true, true},
        {"https://10.0.0.1", "file-token", false, true},
    };
    for (const auto &c : cases) {
        SCOPED_TRACE(std::string(c.server) + " " + c.kubeconfig + (c.allow ? " allow" : ""));
        KubeAccess a =
            resolve_kube_access(c.server, dir / c.kubeconfig, dir / "sa", nullptr, c.allow);
        EXPECT_EQ(!a.token.empty() || !a.token_file.empty(), c.sends);
        // The log line at start says which applies.
        bool plain_http = a.server.rfind("http://", 0) == 0 || a.server.rfind("HTTP://", 0) == 0;
        if (plain_http && !c.sends) {
            EXPECT_NE(a.origin.find("without its bearer token"), std::string::npos) << a.origin;
        }
        if (plain_http && c.sends) {
            EXPECT_NE(a.origin.find("over plain http"), std::string::npos) << a.origin;
        }
    }
}

TEST(KubeAccessTest, PlainHttpServerGetsNoCredentials) {
    TempDir dir;
    std::filesystem::create_directories(dir / "sa");
    write_file(dir / "sa/token", "secret");
    write_file(dir / "sa/ca.crt", "ca");
    KubeAccess a = resolve_kube_access("http://127.0.0.1:10261", "", dir / "sa", nullptr);
    EXPECT_EQ(a.server, "http://127.0.0.1:10261");
    EXPECT_TRUE(a.token_file.empty());
    EXPECT_TRUE(a.tls.ca_file.empty());

    KubeAccess b = resolve_kube_access("https://10.0.0.1:443", "", dir / "sa", nullptr);
    EXPECT_EQ(b.token_file, dir / "sa/token");
    EXPECT_EQ(b.tls.ca_file, dir / "sa/ca.crt");
}

TEST(KubeAccessTest, InCluster) {
    TempDir dir;
    std::filesystem::create_directories(dir / "sa");
    write_file(dir / "sa/token", "secret");
    write_file(dir / "sa/ca.crt", "ca");
    auto env = [](const std::string &name) -> std::optional<std::string> {
        if (name == "KUBERNETES_SERVICE_HOST") return "fd00::1";
        if (name == "KUBERNETES_SERVICE_PORT") return "443";
        return std::nullopt;
    };
    KubeAccess a = resolve_kube_access("", "", dir / "sa", env);
    EXPECT_EQ(a.server, "https://[fd00::1]:443");
    EXPECT_EQ(a.token_file, dir / "sa/token");

    auto no_env = [](const std::string &) -> std::optional<std::string> { return std::nullopt; };
    EXPECT_THROW(resolve_kube_access("", "", dir / "sa", no_env), std::runtime_error);
    EXPECT_THROW(resolve_kube_access("", "", dir / "missing", env), std::runtime_error);
}

}  // namespace
}  // namespace fabdns::source_detail
