// Runs the real fabdnsctl binary: against a datapath loaded under a private pin path
// (/sys/fs/bpf/fabdns-ctltest-<pid>, root only) with answers inserted through the typed maps, and
// with bad configs and missing pins (exit statuses and messages).
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "answers.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "datapath.hpp"
#include "metrics/registry.hpp"
#include "metrics/server.hpp"
#include "root.hpp"

namespace fabdns {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Result {
    int status = -1;
    std::string out, err;
};

std::string read_file(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string &path, const std::string &text) {
    std::ofstream out(path);
    out << text;
}

// Runs fabdnsctl with args; stdout and stderr are captured through files.
Result ctl(const std::vector<std::string> &args) {
    char dir_tmpl[] = "/tmp/fabdns-ctlrun-XXXXXX";
    const char *dir = mkdtemp(dir_tmpl);
    if (!dir) return {};
    const std::string out_path = std::string(dir) + "/out", err_path = std::string(dir) + "/err";
    std::vector<std::string> all = {FABDNS_CTL_BIN};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (auto &a : all) argv.push_back(a.data());
    argv.push_back(nullptr);

    Result r;
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv.data());
        _exit(127);
    }
    int ws = 0;
    if (pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws)) r.status = WEXITSTATUS(ws);
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    fs::remove_all(dir);
    return r;
}

std::string describe(const Result &r) {
    return "exit " + std::to_string(r.status) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

size_t lines(const std::string &s) {
    return size_t(std::count(s.begin(), s.end(), '\n'));
}

bool contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

// A port nothing listens on (it was bound a moment ago by a throwaway server).
uint16_t closed_port() {
    metrics::Registry reg;
    metrics::Server s(*SocketAddr::parse("127.0.0.1:0"), reg);
    return s.address().port;
}

std::string node_config(const std::string &pin_path, const std::string &metrics_listen) {
    return "node: {cluster: suzhou, zone: suzhou, region: south}\n"
           "dns: {zones: [global], ttl: 5, listen: [\"127.0.0.1:1053\"]}\n"
           "source: {kind: file, file: {path: globalservices.yaml}}\n"
           "datapath: {pin_path: " +
           pin_path +
           ", capacity: 1024}\n"
           "metrics: {listen: \"" +
           metrics_listen + "\"}\n";
}

// A temporary directory holding examples/globalservices.yaml and configs written by the tests.
class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/fabdns-ctltest-XXXXXX";
        if (const char *d = mkdtemp(tmpl)) path_ = d;
        fs::copy_file(std::string(FABDNS_SOURCE_DIR) + "/examples/globalservices.yaml",
                      path_ + "/globalservices.yaml");
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string &name, const std::string &text) const {
        write_file(path_ + "/" + name, text);
        return path_ + "/" + name;
    }
    const std::string &path() const { return path_; }

  private:
    std::string path_;
};

// The metrics servers these tests start log at info level; keep the output to failures.
class QuietLogs : public ::testing::Environment {
  public:
    void SetUp() override { log::set_level(log::Level::Warn); }
};
const auto *const quiet_logs = ::testing::AddGlobalTestEnvironment(new QuietLogs);

// ---- without a datapath: usage, config and missing pins ------------------------------------

TEST(CtlUsage, BadConfigExitsTwoWithTheKeyLine) {
    TempDir dir;
    std::string cfg = dir.file("bad.yaml",
                               "node: {cluster: suzhou}\n"
                               "source: {kind: file, file: {path: x.yaml}}\n"
                               "dns: {ttl: 99999}\n");
    Result r = ctl({"--config", cfg, "stats"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "dns.ttl")) << describe(r);
    EXPECT_EQ(lines(r.err), 1u) << describe(r);
    EXPECT_EQ(r.out, "");

    Result missing = ctl({"--config", dir.path() + "/nope.yaml", "status"});
    EXPECT_EQ(missing.status, 2) << describe(missing);
    EXPECT_EQ(lines(missing.err), 1u) << describe(missing);
}

TEST(CtlUsage, UsageErrorsExitTwo) {
    EXPECT_EQ(ctl({}).status, 2);
    EXPECT_EQ(ctl({"frobnicate"}).status, 2);
    EXPECT_EQ(ctl({"stats", "--bogus"}).status, 2);
    EXPECT_EQ(ctl({"attach"}).status, 2);
    EXPECT_EQ(ctl({"detach"}).status, 2);
    EXPECT_EQ(ctl({"detach", "x", "--all"}).status, 2);
    Result explain = ctl({"--pin-path", "/sys/fs/bpf/fabdns-ctltest-none", "explain", "a.global"});
    EXPECT_EQ(explain.status, 2) << describe(explain);
    EXPECT_TRUE(contains(explain.err, "needs --config")) << describe(explain);
    EXPECT_EQ(ctl({"--metrics", "not an address", "stats"}).status, 2);
    Result help = ctl({"--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_TRUE(contains(help.out, "explain"));
}

TEST(CtlUsage, ExplainBadTypeExitsTwo) {
    TempDir dir;
    std::string cfg = dir.file("c.yaml", node_config("/sys/fs/bpf/fabdns-ctltest-none", ""));
    Result r = ctl({"--config", cfg, "explain", "nginx.default.global", "NOTATYPE"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_TRUE(contains(r.err, "NOTATYPE")) << describe(r);
}

TEST(CtlMissingPins, EveryReaderExitsOneWithOneLine) {
    const std::string pin = "/sys/fs/bpf/fabdns-ctltest-absent-" + std::to_string(getpid());
    for (const char *cmd : {"stats", "dump", "status"}) {
        Result r = ctl({"--pin-path", pin, "--metrics", "", cmd});
        EXPECT_EQ(r.status, 1) << cmd << ": " << describe(r);
        EXPECT_EQ(lines(r.err), 1u) << cmd << ": " << describe(r);
        if (geteuid() == 0) {
            EXPECT_TRUE(contains(r.err, "no fabdns datapath pinned at " + pin))
                << cmd << ": " << describe(r);
        }
    }
    Result detach = ctl({"--pin-path", pin, "detach", "--all"});
    EXPECT_EQ(detach.status, 1) << describe(detach);
    EXPECT_TRUE(contains(detach.err, "nothing pinned at " + pin)) << describe(detach);
}

TEST(CtlMissingPins, ExplainWorksWithoutADatapath) {
    TempDir dir;
    const std::string pin = "/sys/fs/bpf/fabdns-ctltest-absent-" + std::to_string(getpid());
    std::string cfg = dir.file("c.yaml", node_config(pin, ""));
    Result r = ctl({"--config", cfg, "explain", "nginx.default.svc.global"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "tier:          region")) << describe(r);
    EXPECT_TRUE(contains(r.out, "IN  A  10.234.0.10")) << describe(r);
    EXPECT_TRUE(contains(r.out, "datapath not pinned at " + pin)) << describe(r);
    EXPECT_TRUE(contains(r.out, "it would hold this answer")) << describe(r);
}

TEST(CtlExplainSources, MissingFileAndKubernetesExitOne) {
    TempDir dir;
    std::string missing = dir.file(
        "m.yaml", "node: {cluster: suzhou}\nsource: {kind: file, file: {path: nope.yaml}}\n");
    Result r = ctl({"--config", missing, "explain", "nginx.default.global"});
    EXPECT_EQ(r.status, 1) << describe(r);
    EXPECT_TRUE(contains(r.err, "nope.yaml")) << describe(r);
    EXPECT_EQ(lines(r.err), 1u) << describe(r);

    std::string kube = dir.file("k.yaml", "node: {cluster: suzhou}\nsource: {kind: kubernetes}\n");
    Result k = ctl({"--config", kube, "explain", "nginx.default.global"});
    EXPECT_EQ(k.status, 1) << describe(k);
    EXPECT_TRUE(contains(k.err, "explain needs a file source or a hub snapshot")) << describe(k);
}

TEST(CtlExplainSources, HubSnapshotAndManifestDirectory) {
    TempDir dir;
    const std::string snapshot = R"([{"metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"type": "ClusterIP", "endpoints": [
          {"addresses": ["10.234.0.10"], "cluster": "shanghai", "zone": "shanghai",
           "region": "south"}]}}])";
    dir.file("snap.json", snapshot);
    std::string hub = dir.file("h.yaml",
                               "node: {cluster: suzhou, zone: suzhou, region: south}\n"
                               "source: {kind: hub, hub: {url: \"https://hub.invalid:3000\", "
                               "cluster: suzhou, ca: ca.crt, cert: tls.crt, key: tls.key, "
                               "snapshot: snap.json}}\n"
                               "datapath: {pin_path: /sys/fs/bpf/fabdns-ctltest-none}\n");
    Result r = ctl({"--config", hub, "explain", "nginx.default.global"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "1 from hub snapshot")) << describe(r);
    EXPECT_TRUE(contains(r.out, "10.234.0.10")) << describe(r);

    fs::create_directory(dir.path() + "/manifests");
    fs::copy_file(dir.path() + "/globalservices.yaml", dir.path() + "/manifests/a.yml");
    dir.file("manifests/ignored.txt", "not a manifest");
    std::string d = dir.file("d.yaml",
                             "node: {cluster: beijing, zone: beijing, region: north}\n"
                             "source: {kind: file, file: {path: manifests}}\n"
                             "datapath: {pin_path: /sys/fs/bpf/fabdns-ctltest-none}\n");
    Result dr = ctl({"--config", d, "explain", "nginx.default.svc.global"});
    EXPECT_EQ(dr.status, 0) << describe(dr);
    EXPECT_TRUE(contains(dr.out, "3 from file")) << describe(dr);
    EXPECT_TRUE(contains(dr.out, "tier:          cluster")) << describe(dr);
    EXPECT_TRUE(contains(dr.out, "10.233.0.10")) << describe(dr);
}

// ---- against a real datapath ---------------------------------------------------------------

class CtlDatapath : public ::testing::Test {
  public:
    static std::string pin_path() {
        return "/sys/fs/bpf/fabdns-ctltest-" + std::to_string(getpid());
    }

    static void TearDownTestSuite() {
        dp_.reset();
        if (geteuid() == 0) loader::remove_all(pin_path());
        dir_.reset();
    }

  protected:
    void SetUp() override {
        FABDNS_REQUIRE_ROOT();
        if (!dir_) dir_ = std::make_unique<TempDir>();
        if (!dp_) dp_ = std::make_unique<loader::Datapath>(loader::Options{pin_path(), 1024});
        auto &m = dp_->maps();
        m.answers().clear();
        maps::ListenEntry v4;
        v4.addr = IpAddr::parse("127.0.0.1")->mapped16();
        v4.port = 1053;
        m.set_listen({v4});
        fabdns_config cfg = m.config();
        cfg.stamp_ns = maps::monotonic_ns();
        cfg.stale_after_ns = 3600ull * 1000000000ull;
        m.set_config(cfg);
        config_ = dir_->file("config.yaml",
                             node_config(pin_path(), "127.0.0.1:" + std::to_string(closed_port())));
    }

    void add(const std::string &name, uint16_t qtype, const std::vector<std::string> &addrs,
             uint32_t ttl = 5) {
        test::put_answer(dp_->maps().answers(), name, qtype, addrs, ttl);
    }

    Result with_config(std::vector<std::string> args) {
        args.insert(args.begin(), {"--config", config_});
        return ctl(args);
    }

    static std::unique_ptr<loader::Datapath> dp_;
    static std::unique_ptr<TempDir> dir_;
    std::string config_;
};

std::unique_ptr<loader::Datapath> CtlDatapath::dp_;
std::unique_ptr<TempDir> CtlDatapath::dir_;

TEST_F(CtlDatapath, StatsText) {
    add("nginx.default.svc.global", DNS_TYPE_A, {"10.234.0.10"});
    add("nginx.default.svc.global", DNS_TYPE_AAAA, {"fd00:234::10"});
    Result r = with_config({"stats"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "datapath " + pin_path())) << describe(r);
    EXPECT_TRUE(contains(r.out, "answers   2 entries of 1024")) << describe(r);
    EXPECT_TRUE(contains(r.out, "(stale after 1h0m): fresh, the kernel answers")) << describe(r);
    EXPECT_TRUE(contains(r.out, "  answered  0\n")) << describe(r);
    for (const char *reason : maps::kStatNames) {
        if (std::string(reason) == "answered") continue;
        EXPECT_TRUE(contains(r.out, "    " + std::string(reason) + " ")) << reason;
    }
    EXPECT_TRUE(contains(r.out, "daemon: down or unreachable at http://127.0.0.1:")) << describe(r);
    EXPECT_EQ(r.err, "");
}

TEST_F(CtlDatapath, StatsJson) {
    add("mysql.default.global", DNS_TYPE_A, {"10.234.0.20"});
    Result r = with_config({"stats", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    json j = json::parse(r.out);
    EXPECT_EQ(j["pin_path"], pin_path());
    EXPECT_EQ(j["kernel"]["answered"], 0);
    EXPECT_EQ(j["kernel"]["passed"], 0);
    ASSERT_EQ(j["kernel"]["counters"].size(), size_t(FABDNS_STAT_MAX));
    for (const char *reason : maps::kStatNames) EXPECT_EQ(j["kernel"]["counters"][reason], 0);
    EXPECT_EQ(j["answers"]["entries"], 1);
    EXPECT_EQ(j["answers"]["capacity"], 1024);
    EXPECT_EQ(j["liveness"]["stamped"], true);
    EXPECT_EQ(j["liveness"]["stale"], false);
    EXPECT_EQ(j["liveness"]["stale_after_seconds"], 3600.0);
    EXPECT_LT(j["liveness"]["age_seconds"].get<double>(), 60.0);
    EXPECT_EQ(j["daemon"]["up"], false);
    EXPECT_TRUE(j["daemon"]["url"].is_string());
    EXPECT_TRUE(j["daemon"]["error"].is_string());
    EXPECT_TRUE(j["daemon"]["metrics"].empty());
}

TEST_F(CtlDatapath, StatsScrapesTheDaemon) {
    metrics::Registry reg;
    auto collector = reg.add([](metrics::Writer &w) {
        auto &q = w.counter("fabdns_queries_total", "DNS replies sent, by path and rcode.");
        q.add({{"path", "user"}, {"proto", "udp"}, {"rcode", "NOERROR"}}, 7);
        q.add({{"path", "kernel"}, {"proto", "udp"}, {"rcode", "NOERROR"}}, 3);
        w.counter("fabdns_kernel_answers_total", "Queries answered in the kernel.").add(3);
        w.gauge("fabdns_sync_healthy", "1 when healthy.").add({{"source", "file"}}, 1);
        w.gauge("fabdns_map_sync_seconds", "Sync time.").add(0.00011565200000000001);
    });
    metrics::Server server(*SocketAddr::parse("127.0.0.1:0"), reg);
    std::string cfg = dir_->file(
        "up.yaml", node_config(pin_path(), "127.0.0.1:" + std::to_string(server.address().port)));

    Result r = ctl({"--config", cfg, "stats"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "daemon http://" + server.address().to_string() + "/metrics"))
        << describe(r);
    EXPECT_TRUE(
        contains(r.out, "fabdns_queries_total{path=\"user\",proto=\"udp\",rcode=\"NOERROR\"}"))
        << describe(r);
    EXPECT_FALSE(contains(r.out, "fabdns_kernel_answers_total")) << describe(r);
    EXPECT_TRUE(contains(r.out, " 0.000115652\n")) << describe(r);

    Result j = ctl({"--config", cfg, "stats", "--json"});
    ASSERT_EQ(j.status, 0) << describe(j);
    json d = json::parse(j.out)["daemon"];
    EXPECT_EQ(d["up"], true);
    EXPECT_TRUE(d["error"].is_null());
    bool found = false;
    for (const auto &s : d["metrics"])
        if (s["name"] == "fabdns_queries_total" && s["labels"]["path"] == "user") {
            EXPECT_EQ(s["value"], 7);
            found = true;
        }
    EXPECT_TRUE(found) << j.out;

    // --metrics overrides the config; "" skips the daemon.
    Result off = ctl({"--config", cfg, "--metrics", "", "stats", "--json"});
    ASSERT_EQ(off.status, 0) << describe(off);
    EXPECT_EQ(json::parse(off.out)["daemon"]["url"], nullptr);
}

TEST_F(CtlDatapath, StaleLiveness) {
    fabdns_config cfg = dp_->maps().config();
    cfg.stale_after_ns = 1000000;  // 1 ms
    cfg.stamp_ns = maps::monotonic_ns() - 5000000000ull;
    dp_->maps().set_config(cfg);
    Result r = with_config({"stats", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(json::parse(r.out)["liveness"]["stale"], true);
    Result t = with_config({"status"});
    EXPECT_TRUE(contains(t.out, "STALE")) << describe(t);

    cfg.stamp_ns = 0;
    dp_->maps().set_config(cfg);
    Result never = with_config({"status"});
    EXPECT_TRUE(contains(never.out, "never stamped")) << describe(never);
}

TEST_F(CtlDatapath, DumpListsEntriesSorted) {
    add("nginx.default.svc.global", DNS_TYPE_AAAA, {"fd00:234::10"});
    add("mysql.default.global", DNS_TYPE_A, {"10.234.0.20"}, 30);
    add("nginx.default.svc.global", DNS_TYPE_A, {"10.234.0.10", "10.234.0.11"});
    Result r = with_config({"dump"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out,
              "NAME                      TYPE  TTL  ADDRESSES                HITS\n"
              "mysql.default.global      A      30  10.234.0.20                 0\n"
              "nginx.default.svc.global  A       5  10.234.0.10 10.234.0.11     0\n"
              "nginx.default.svc.global  AAAA    5  fd00:234::10                0\n"
              "3 entries of 1024\n");

    Result j = ctl({"dump", "--json", "--pin-path", pin_path()});
    ASSERT_EQ(j.status, 0) << describe(j);
    json d = json::parse(j.out);
    EXPECT_EQ(d["capacity"], 1024);
    ASSERT_EQ(d["entries"].size(), 3u);
    EXPECT_EQ(d["entries"][1]["name"], "nginx.default.svc.global");
    EXPECT_EQ(d["entries"][1]["type"], "A");
    EXPECT_EQ(d["entries"][1]["ttl"], 5);
    EXPECT_EQ(d["entries"][1]["addresses"], json({"10.234.0.10", "10.234.0.11"}));
    EXPECT_EQ(d["entries"][1]["hits"], 0);
    EXPECT_EQ(d["entries"][2]["type"], "AAAA");
}

TEST_F(CtlDatapath, DumpEmptyMap) {
    Result r = with_config({"dump"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "no answers in the kernel map")) << describe(r);
}

TEST_F(CtlDatapath, ExplainComparesWithTheKernel) {
    Result before = with_config({"explain", "nginx.default.svc.global"});
    ASSERT_EQ(before.status, 0) << describe(before);
    EXPECT_TRUE(contains(before.out, "rcode:         NOERROR, authoritative")) << describe(before);
    EXPECT_TRUE(contains(before.out, "form:          service (default/nginx)")) << describe(before);
    EXPECT_TRUE(contains(before.out, "tier:          region (this node's region south)"))
        << describe(before);
    EXPECT_TRUE(contains(before.out, "nginx.default.svc.global.  5  IN  A  10.234.0.10"))
        << describe(before);
    EXPECT_TRUE(contains(before.out, "shanghai/10.234.0.10: used")) << describe(before);
    EXPECT_TRUE(contains(before.out, "beijing/10.233.0.10: skipped")) << describe(before);
    EXPECT_TRUE(contains(before.out, "in kernel:     no, but it should be")) << describe(before);

    add("nginx.default.svc.global", DNS_TYPE_A, {"10.234.0.10"});
    Result same = with_config({"explain", "NGINX.default.svc.global.", "A"});
    ASSERT_EQ(same.status, 0) << describe(same);
    EXPECT_TRUE(contains(same.out, "in kernel:     yes (same answer, 0 hits)")) << describe(same);

    add("nginx.default.svc.global", DNS_TYPE_A, {"10.233.0.10"});
    Result differ = with_config({"explain", "nginx.default.svc.global"});
    EXPECT_TRUE(contains(differ.out, "in kernel:     yes, but DIFFERENT")) << describe(differ);
    EXPECT_TRUE(contains(differ.out, "kernel has TTL 5, 10.233.0.10")) << describe(differ);

    Result aaaa = with_config({"explain", "nginx.default.global", "AAAA"});
    EXPECT_TRUE(contains(aaaa.out, "IN  AAAA  fd00:234::10")) << describe(aaaa);
    EXPECT_TRUE(contains(aaaa.out, "tier:          region")) << describe(aaaa);
}

TEST_F(CtlDatapath, ExplainUserSpaceOnlyNames) {
    Result pod = with_config({"explain", "web-0.beijing.web.default.svc.global"});
    ASSERT_EQ(pod.status, 0) << describe(pod);
    EXPECT_TRUE(contains(pod.out, "form:          pod (default/web)")) << describe(pod);
    EXPECT_TRUE(contains(pod.out, "in kernel:     no (headless pod names stay in user space)"))
        << describe(pod);

    add("web-0.beijing.web.default.svc.global", DNS_TYPE_A, {"10.243.1.5"});
    Result stale = with_config({"explain", "web-0.beijing.web.default.svc.global"});
    EXPECT_TRUE(contains(stale.out, "in kernel:     yes, but should not be: headless pod names"))
        << describe(stale);

    Result nx = with_config({"explain", "nope.default.svc.global"});
    ASSERT_EQ(nx.status, 0) << describe(nx);
    EXPECT_TRUE(contains(nx.out, "rcode:         NXDOMAIN")) << describe(nx);
    EXPECT_TRUE(contains(nx.out, "IN  SOA  ")) << describe(nx);
    EXPECT_TRUE(
        contains(nx.out, "in kernel:     no (only NOERROR answers are served in the kernel"))
        << describe(nx);

    Result txt = with_config({"explain", "nginx.default.global", "TXT"});
    EXPECT_TRUE(contains(txt.out, "only A and AAAA")) << describe(txt);

    Result outside = with_config({"explain", "example.com"});
    EXPECT_TRUE(contains(outside.out, "outside every zone")) << describe(outside);

    // The engine's decision, as the resolver answers it.
    Result axfr = with_config({"explain", "global", "AXFR"});
    ASSERT_EQ(axfr.status, 0) << describe(axfr);
    EXPECT_TRUE(contains(axfr.out, "rcode:         REFUSED\n")) << describe(axfr);
    EXPECT_TRUE(contains(axfr.out, "REFUSED: zone transfers are not offered")) << describe(axfr);
}

TEST_F(CtlDatapath, AttachStatusDetach) {
    const std::string iface = "fdctl" + std::to_string(getpid());
    const std::string peer = "fdctp" + std::to_string(getpid());
    // A dummy interface where the kernel has the module, else a veth pair.
    std::string add_dummy = "ip link add " + iface + " type dummy 2>/dev/null";
    std::string add_veth = "ip link add " + iface + " type veth peer name " + peer;
    ASSERT_TRUE(std::system(add_dummy.c_str()) == 0 || std::system(add_veth.c_str()) == 0);
    struct Cleanup {
        std::string cmd;
        ~Cleanup() { [[maybe_unused]] int rc = std::system(cmd.c_str()); }
    } cleanup{"ip link del " + iface + " 2>/dev/null"};
    ASSERT_NE(if_nametoindex(iface.c_str()), 0u);

    Result before = with_config({"status"});
    ASSERT_EQ(before.status, 0) << describe(before);
    EXPECT_TRUE(contains(before.out, "pin path:     " + pin_path())) << describe(before);
    EXPECT_TRUE(contains(before.out, "maps:         pinned")) << describe(before);
    EXPECT_TRUE(contains(before.out, "listen:       127.0.0.1:1053")) << describe(before);
    EXPECT_TRUE(contains(before.out, "attachments:  none")) << describe(before);

    // The mode comes from the config's datapath.attach; its other capacity does not replace the
    // pinned maps (the answer inserted before attaching is still there afterwards).
    add("mysql.default.global", DNS_TYPE_A, {"10.234.0.20"});
    std::string cfg = node_config(pin_path(), "");
    cfg.replace(cfg.find("capacity: 1024}"), 15,
                "capacity: 4096, attach: [{iface: " + iface + ", mode: xdp-generic}]}");
    std::string attach_cfg = dir_->file("attach.yaml", cfg);
    Result attach = ctl({"--config", attach_cfg, "attach", iface});
    ASSERT_EQ(attach.status, 0) << describe(attach);
    EXPECT_TRUE(contains(attach.out, "attached to " + iface + " (xdp-generic, prog id"))
        << describe(attach);
    EXPECT_TRUE(contains(attach.err, "keeping the pinned maps")) << describe(attach);
    EXPECT_TRUE(fs::exists(pin_path() + "/link_" + iface));

    Result status = with_config({"status"});
    ASSERT_EQ(status.status, 0) << describe(status);
    EXPECT_TRUE(contains(status.out, "IFACE")) << describe(status);
    EXPECT_TRUE(contains(status.out, "  " + iface + "  xdp-generic")) << describe(status);

    Result sj = with_config({"status", "--json"});
    ASSERT_EQ(sj.status, 0) << describe(sj);
    json j = json::parse(sj.out);
    EXPECT_EQ(j["pinned"], true);
    ASSERT_EQ(j["attachments"].size(), 1u);
    EXPECT_EQ(j["attachments"][0]["iface"], iface);
    EXPECT_EQ(j["attachments"][0]["mode"], "xdp-generic");
    EXPECT_EQ(j["attachments"][0]["hook"], "xdp link");
    EXPECT_GT(j["attachments"][0]["prog_id"].get<uint32_t>(), 0u);
    ASSERT_EQ(j["listen"].size(), 1u);
    EXPECT_EQ(j["listen"][0]["address"], "127.0.0.1:1053");

    Result dump = with_config({"dump"});
    EXPECT_TRUE(contains(dump.out, "mysql.default.global")) << describe(dump);
    EXPECT_TRUE(contains(dump.out, "1 entries of 1024")) << describe(dump);

    Result detach = with_config({"detach", iface});
    ASSERT_EQ(detach.status, 0) << describe(detach);
    EXPECT_FALSE(fs::exists(pin_path() + "/link_" + iface));
    Result after = with_config({"status"});
    EXPECT_TRUE(contains(after.out, "attachments:  none")) << describe(after);

    Result tc = with_config({"attach", iface, "--mode", "tc"});
    ASSERT_EQ(tc.status, 0) << describe(tc);
    Result tc_status = with_config({"status"});
    EXPECT_TRUE(contains(tc_status.out, "  " + iface + "  tc")) << describe(tc_status);
    ASSERT_EQ(with_config({"detach", iface}).status, 0);

    Result again = with_config({"detach", iface});
    EXPECT_EQ(again.status, 1) << describe(again);
    EXPECT_TRUE(contains(again.err, "not attached to " + iface)) << describe(again);

    Result no_iface = with_config({"attach", "fdctl-none0", "--mode", "xdp-generic"});
    EXPECT_EQ(no_iface.status, 1) << describe(no_iface);
    EXPECT_TRUE(contains(no_iface.err, "fdctl-none0 not found")) << describe(no_iface);
    Result bad_mode = with_config({"attach", iface, "--mode", "warp"});
    EXPECT_EQ(bad_mode.status, 2) << describe(bad_mode);
}

// tc through clsact (what kernels before 6.6 get): status names the hook and detach removes it.
TEST_F(CtlDatapath, StatusAndDetachKnowClsactAttachments) {
    const std::string iface = "fdcls" + std::to_string(getpid());
    ASSERT_EQ(std::system(
                  ("ip link add " + iface + " type veth peer name fdclp" + std::to_string(getpid()))
                      .c_str()),
              0);
    struct Cleanup {
        std::string cmd;
        ~Cleanup() { [[maybe_unused]] int rc = std::system(cmd.c_str()); }
    } cleanup{"ip link del " + iface + " 2>/dev/null"};
    const std::string other = pin_path() + "-clsact";
    loader::Datapath dp(loader::Options{other, 256, loader::TcHook::Clsact});
    dp.attach(iface, loader::Mode::Tc);

    Result sj = ctl({"--pin-path", other, "status", "--json"});
    ASSERT_EQ(sj.status, 0) << describe(sj);
    json j = json::parse(sj.out);
    ASSERT_EQ(j["attachments"].size(), 1u) << sj.out;
    EXPECT_EQ(j["attachments"][0]["iface"], iface);
    EXPECT_EQ(j["attachments"][0]["mode"], "tc");
    EXPECT_EQ(j["attachments"][0]["hook"], "clsact");
    EXPECT_EQ(j["attachments"][0]["prog_id"].get<uint32_t>(), dp.prog_id(loader::Mode::Tc));
    Result st = ctl({"--pin-path", other, "status"});
    EXPECT_TRUE(contains(st.out, "  " + iface + "  tc    clsact")) << describe(st);

    Result d = ctl({"--pin-path", other, "detach", iface});
    ASSERT_EQ(d.status, 0) << describe(d);
    EXPECT_FALSE(fs::exists(other + "/tc_" + iface));
    std::string filters;
    if (FILE *p = popen(("tc filter show dev " + iface + " ingress 2>&1").c_str(), "r")) {
        char buf[256];
        while (fgets(buf, sizeof(buf), p)) filters += buf;
        pclose(p);
    }
    EXPECT_EQ(filters, "") << "the clsact filter is gone";
    loader::remove_all(other);
}

TEST_F(CtlDatapath, DetachAllRemovesEveryPin) {
    const std::string other = pin_path() + "-all";
    { loader::Datapath dp(loader::Options{other, 256}); }
    ASSERT_TRUE(fs::exists(other + "/answers"));
    Result r = ctl({"--pin-path", other, "detach", "--all"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_FALSE(fs::exists(other)) << describe(r);
    if (fs::exists(other)) loader::remove_all(other);
}

}  // namespace
}  // namespace fabdns
