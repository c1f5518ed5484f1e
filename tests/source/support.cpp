// Implementation of the source tests' support: processes, files, certificates, collectors.
#include "support.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fabdns::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

TempDir::TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/fabdns-source-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

void write_file(const std::string &path, const std::string &content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

void replace_file(const std::string &path, const std::string &content) {
    std::string tmp = path + ".tmp~";
    write_file(tmp, content);
    fs::rename(tmp, path);
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Child::Child(const std::vector<std::string> &argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        std::vector<char *> args;
        for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
}

Child::~Child() {
    kill();
    if (out_fd_ >= 0) close(out_fd_);
}

void Child::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

std::string Child::wait_for_line(const std::string &prefix, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        size_t nl;
        while ((nl = buffer_.find('\n')) != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            if (line.rfind(prefix, 0) == 0) return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) throw std::runtime_error("child did not print '" + prefix + "'");
        pollfd p{out_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        ssize_t n = read(out_fd_, buf, sizeof(buf));
        if (n <= 0) throw std::runtime_error("child exited before printing '" + prefix + "'");
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

void run_command(const std::vector<std::string> &argv) {
    std::string cmd;
    for (const auto &a : argv) cmd += "'" + a + "' ";
    cmd += "2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    if (p == nullptr) throw std::runtime_error("popen failed");
    std::string out;
    char buf[1024];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    int rc = pclose(p);
    if (rc != 0) throw std::runtime_error("command failed: " + cmd + "\n" + out);
}

namespace {

void make_key_and_csr(const std::string &dir, const std::string &name, const std::string &cn) {
    run_command({FABDNS_OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir + "/" + name + ".key",
                 "-out", dir + "/" + name + ".csr", "-subj", "/CN=" + cn});
}

void make_ca(const std::string &dir, const std::string &name, const std::string &cn) {
    run_command({FABDNS_OPENSSL,
                 "req",
                 "-x509",
                 "-newkey",
                 "ec",
                 "-pkeyopt",
                 "ec_paramgen_curve:prime256v1",
                 "-nodes",
                 "-keyout",
                 dir + "/" + name + ".key",
                 "-out",
                 dir + "/" + name + ".crt",
                 "-days",
                 "2",
                 "-subj",
                 "/CN=" + cn,
                 "-addext",
                 "basicConstraints=critical,CA:TRUE",
                 "-addext",
                 "keyUsage=critical,keyCertSign,cRLSign"});
}

void sign(const std::string &dir, const std::string &ca, const std::string &name,
          const std::string &ext) {
    std::string ext_file = dir + "/" + name + ".ext";
    write_file(ext_file, ext);
    run_command({FABDNS_OPENSSL, "x509", "-req", "-in", dir + "/" + name + ".csr", "-CA",
                 dir + "/" + ca + ".crt", "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial",
                 "-out", dir + "/" + name + ".crt", "-days", "2", "-extfile", ext_file});
}

const char *kServerExt =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
const char *kWrongNameExt =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:elsewhere.invalid\n";
const char *kClientExt =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n";

}  // namespace

Certs::Certs(const std::string &d) : dir(d) {
    make_ca(dir, "ca", "fabdns test CA");
    make_ca(dir, "other-ca", "unrelated CA");
    for (const auto &[ca, prefix] :
         std::vector<std::pair<std::string, std::string>>{{"ca", ""}, {"other-ca", "other-"}}) {
        make_key_and_csr(dir, prefix + "server", "localhost");
        sign(dir, ca, prefix + "server", kServerExt);
        make_key_and_csr(dir, prefix + "client", "fabdns-node");
        sign(dir, ca, prefix + "client", kClientExt);
    }
    make_key_and_csr(dir, "wrong-name-server", "elsewhere.invalid");
    sign(dir, "ca", "wrong-name-server", kWrongNameExt);
}

HubOptions Certs::hub_options(const std::string &url, const std::string &cluster,
                              const std::string &snapshot,
                              std::chrono::milliseconds interval) const {
    HubOptions o;
    o.url = url;
    o.cluster = cluster;
    o.ca = file("ca.crt");
    o.cert = file("client.crt");
    o.key = file("client.key");
    o.snapshot = snapshot;
    o.interval = interval;
    return o;
}

nlohmann::json service_json(const std::string &name, const std::string &ns,
                            const std::vector<std::string> &addresses, const std::string &cluster) {
    nlohmann::json endpoints = nlohmann::json::array();
    for (const auto &a : addresses) {
        endpoints.push_back(
            {{"addresses", {a}}, {"cluster", cluster}, {"zone", cluster}, {"region", "north"}});
    }
    return {{"apiVersion", "dns.fabedge.io/v1alpha1"},
            {"kind", "GlobalService"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", "1"}}},
            {"spec",
             {{"type", "ClusterIP"},
              {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}}}},
              {"endpoints", endpoints}}}};
}

std::string service_yaml(const std::string &name, const std::string &ns,
                         const std::vector<std::string> &addresses, const std::string &cluster) {
    std::string y =
        "apiVersion: dns.fabedge.io/v1alpha1\n"
        "kind: GlobalService\n"
        "metadata:\n"
        "  name: " +
        name +
        "\n"
        "  namespace: " +
        ns +
        "\n"
        "spec:\n"
        "  type: ClusterIP\n"
        "  ports:\n"
        "    - name: http\n"
        "      protocol: TCP\n"
        "      port: 80\n"
        "  endpoints:\n";
    for (const auto &a : addresses) {
        y += "    - addresses: [\"" + a +
             "\"]\n"
             "      cluster: " +
             cluster +
             "\n"
             "      zone: " +
             cluster +
             "\n"
             "      region: north\n";
    }
    return y;
}

Source::Update Collector::callback() {
    return [this](ServiceSet set) {
        {
            std::lock_guard lock(mutex_);
            sets_.push_back(copy_services(*set));
            latest_set_ = set;
        }
        cv_.notify_all();
    };
}

bool Collector::wait_for(const std::function<bool(const std::vector<GlobalService> &)> &pred,
                         std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return !sets_.empty() && pred(sets_.back()); });
}

bool Collector::wait_for_count(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return sets_.size() >= n; });
}

size_t Collector::count() const {
    std::lock_guard lock(mutex_);
    return sets_.size();
}

bool Collector::saw_empty() const {
    std::lock_guard lock(mutex_);
    for (const auto &s : sets_) {
        if (s.empty()) return true;
    }
    return false;
}

std::vector<GlobalService> Collector::latest() const {
    std::lock_guard lock(mutex_);
    return sets_.empty() ? std::vector<GlobalService>{} : sets_.back();
}

ServiceSet Collector::latest_set() const {
    std::lock_guard lock(mutex_);
    return latest_set_;
}

const GlobalService *find_service(const std::vector<GlobalService> &set, const std::string &key) {
    for (const auto &s : set) {
        if (s.key() == key) return &s;
    }
    return nullptr;
}

bool has_service(const std::vector<GlobalService> &set, const std::string &key) {
    return find_service(set, key) != nullptr;
}

std::string first_address(const std::vector<GlobalService> &set, const std::string &key) {
    const GlobalService *s = find_service(set, key);
    if (s == nullptr || s->endpoints.empty() || s->endpoints[0].addresses.empty()) return "";
    return s->endpoints[0].addresses[0].to_string();
}

std::vector<std::string> keys(const std::vector<GlobalService> &set) {
    std::vector<std::string> out;
    for (const auto &s : set) out.push_back(s.key());
    return out;
}

bool eventually(const std::function<bool()> &cond, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (cond()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

namespace {
size_t append_body(char *data, size_t size, size_t count, void *user) {
    static_cast<std::string *>(user)->append(data, size * count);
    return size * count;
}
}  // namespace

nlohmann::json control(int port, const std::string &path_and_query, const std::string &body) {
    CURL *c = curl_easy_init();
    std::string url = "http://127.0.0.1:" + std::to_string(port) + path_and_query;
    std::string answer;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        throw std::runtime_error("control " + url + ": " + curl_easy_strerror(rc));
    }
    return nlohmann::json::parse(answer);
}

std::string python() {
    return FABDNS_PYTHON;
}
std::string standin(const std::string &name) {
    return std::string(FABDNS_STANDINS_DIR) + "/" + name;
}

}  // namespace fabdns::testing
