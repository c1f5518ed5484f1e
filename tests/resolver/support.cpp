// Shared helpers for the resolver tests.
#include "support.hpp"

#include "common/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char **environ;

namespace fabdns::test {

namespace {

int connect_socket(const SocketAddr &to, int type) {
    const int fd = ::socket(to.ip.is_v4() ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const sock::SockAddr sa = sock::to_sockaddr(to);
    if (::connect(fd, sa.get(), sa.len) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

uint16_t bound_port(int fd) {
    sockaddr_in sin{};
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
    return ntohs(sin.sin_port);
}

int bind_loopback(int type, uint16_t port) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const sock::SockAddr sa = sock::to_sockaddr(loopback(port));
    if (::bind(fd, sa.get(), sa.len) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

SocketAddr loopback(uint16_t port) {
    return SocketAddr{IpAddr::v4(127, 0, 0, 1), port};
}

EngineOptions sample_engine_options() {
    EngineOptions o;
    o.zones = {"global"};
    o.ttl = 5;
    o.node = {"beijing", "beijing", "north"};
    return o;
}

std::vector<GlobalService> sample_services() {
    std::vector<GlobalService> out;
    GlobalService nginx;
    nginx.name = "nginx";
    nginx.ns = "default";
    nginx.type = ServiceType::ClusterIP;
    nginx.ports = {{"http", "TCP", 80, ""}};
    Endpoint bj;
    bj.addresses = {*IpAddr::parse("10.0.0.5")};
    bj.cluster = "beijing";
    Endpoint sh;
    sh.addresses = {*IpAddr::parse("10.1.0.5"), *IpAddr::parse("fd00::5")};
    sh.cluster = "shanghai";
    nginx.endpoints = {bj, sh};
    out.push_back(nginx);

    GlobalService db;
    db.name = "db";
    db.ns = "default";
    db.type = ServiceType::Headless;
    db.ports = {{"sql", "TCP", 5432, ""}};
    for (int i = 0; i < 60; ++i) {
        Endpoint e;
        e.addresses = {*IpAddr::parse("10.2.0." + std::to_string(i + 1)),
                       *IpAddr::parse("fd00:2::" + std::to_string(i + 1))};
        e.hostname = "db-" + std::to_string(i);
        e.cluster = "beijing";
        db.endpoints.push_back(e);
    }
    out.push_back(db);
    return out;
}

std::unique_ptr<Engine> sample_engine() {
    auto e = std::make_unique<Engine>(sample_engine_options());
    e->set_services(sample_services());
    return e;
}

std::vector<uint8_t> make_query(const std::string &name, uint16_t qtype, const QueryOptions &o) {
    uint16_t flags = 0;
    if (o.rd) flags |= LDNS_RD;
    if (o.cd) flags |= LDNS_CD;
    if (o.ad) flags |= LDNS_AD;
    ldns_rdf *owner = ldns_dname_new_frm_str(name.c_str());
    if (!owner) throw std::runtime_error("bad test name " + name);
    PktPtr pkt{ldns_pkt_query_new(owner, static_cast<ldns_rr_type>(qtype),
                                  static_cast<ldns_rr_class>(o.qclass), flags)};
    ldns_pkt_set_id(pkt.get(), o.id);
    if (o.edns_payload) {
        ldns_pkt_set_edns_udp_size(pkt.get(), *o.edns_payload);
        ldns_pkt_set_edns_version(pkt.get(), o.edns_version);
        ldns_pkt_set_edns_do(pkt.get(), o.do_bit);
        if (!o.edns_options.empty()) {
            ldns_pkt_set_edns_data(
                pkt.get(), ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, o.edns_options.size(),
                                                 o.edns_options.data()));
        }
    }
    uint8_t *wire = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK)
        throw std::runtime_error("ldns_pkt2wire failed");
    std::vector<uint8_t> out(wire, wire + size);
    std::free(wire);
    return out;
}

std::vector<uint8_t> cookie_option() {
    // OPTION-CODE 10 (COOKIE), length 8, client cookie.
    return {0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8};
}

PktPtr parse(const std::vector<uint8_t> &wire) {
    ldns_pkt *p = nullptr;
    if (ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) return nullptr;
    return PktPtr{p};
}

std::string rdf_text(const ldns_rdf *rdf) {
    char *s = ldns_rdf2str(rdf);
    std::string out = s ? s : "";
    std::free(s);
    return out;
}

std::vector<std::string> answer_addresses(const ldns_pkt *pkt) {
    std::vector<std::string> out;
    const ldns_rr_list *list = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
        const ldns_rr *rr = ldns_rr_list_rr(list, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A || ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA)
            out.push_back(rdf_text(ldns_rr_rdf(rr, 0)));
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<std::vector<uint8_t>> udp_exchange(const SocketAddr &to,
                                                 const std::vector<uint8_t> &query,
                                                 std::chrono::milliseconds timeout) {
    const int fd = connect_socket(to, SOCK_DGRAM);
    if (fd < 0) return std::nullopt;
    std::optional<std::vector<uint8_t>> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (::send(fd, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size()) &&
        wait_readable(fd, deadline)) {
        std::vector<uint8_t> buf(65535);
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n >= 0) {
            buf.resize(static_cast<size_t>(n));
            out = std::move(buf);
        }
    }
    ::close(fd);
    return out;
}

void udp_send(const SocketAddr &to, const std::vector<uint8_t> &datagram) {
    const int fd = connect_socket(to, SOCK_DGRAM);
    if (fd < 0) return;
    [[maybe_unused]] ssize_t n = ::send(fd, datagram.data(), datagram.size(), 0);
    ::close(fd);
}

int tcp_connect(const SocketAddr &to) {
    return connect_socket(to, SOCK_STREAM);
}

std::optional<std::vector<std::vector<uint8_t>>> tcp_exchange(
    int fd, const std::vector<std::vector<uint8_t>> &queries, size_t count,
    std::chrono::milliseconds timeout) {
    std::vector<uint8_t> out;
    for (const auto &q : queries) {
        out.push_back(static_cast<uint8_t>(q.size() >> 8));
        out.push_back(static_cast<uint8_t>(q.size()));
        out.insert(out.end(), q.begin(), q.end());
    }
    if (!out.empty() &&
        ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
        return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<uint8_t> in;
    std::vector<std::vector<uint8_t>> replies;
    while (replies.size() < count) {
        while (in.size() >= 2 && in.size() >= 2 + size_t((in[0] << 8) | in[1])) {
            const size_t len = (in[0] << 8) | in[1];
            replies.emplace_back(in.begin() + 2, in.begin() + 2 + static_cast<ptrdiff_t>(len));
            in.erase(in.begin(), in.begin() + 2 + static_cast<ptrdiff_t>(len));
        }
        if (replies.size() >= count) break;
        if (!wait_readable(fd, deadline)) return std::nullopt;
        uint8_t buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return std::nullopt;
        in.insert(in.end(), buf, buf + n);
    }
    return replies;
}

bool wait_for_close(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!wait_readable(fd, deadline)) return false;
        uint8_t buf[512];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0) return true;
        if (n < 0 && errno != EINTR) return errno == ECONNRESET;
    }
}

uint16_t free_port() {
    for (int i = 0; i < 100; ++i) {
        const int udp = bind_loopback(SOCK_DGRAM, 0);
        if (udp < 0) continue;
        const uint16_t port = bound_port(udp);
        const int tcp = bind_loopback(SOCK_STREAM, port);
        ::close(udp);
        if (tcp >= 0) {
            ::close(tcp);
            return port;
        }
    }
    throw std::runtime_error("no free port on 127.0.0.1");
}

std::string run(const std::string &command, int *status) {
    std::string out;
    FILE *f = ::popen(command.c_str(), "r");
    if (!f) {
        if (status) *status = -1;
        return out;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    const int rc = ::pclose(f);
    if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return out;
}

bool have_program(const std::string &name) {
    int status = 0;
    run("command -v " + name + " >/dev/null 2>&1", &status);
    return status == 0;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fabdns-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

Unbound::Unbound(uint16_t port, bool udp) {
    const auto conf = dir_.path() / "unbound.conf";
    const auto logfile = dir_.path() / "unbound.log";
    {
        std::ofstream f(conf);
        f << "server:\n"
          << "  interface: 127.0.0.1\n"
          << "  port: " << port << "\n"
          << "  do-ip4: yes\n  do-ip6: no\n"
          << "  do-udp: " << (udp ? "yes" : "no") << "\n"
          << "  do-tcp: yes\n"
          << "  chroot: \"\"\n  username: \"\"\n"
          << "  directory: \"" << dir_.path().string() << "\"\n"
          << "  pidfile: \"\"\n  logfile: \"\"\n  use-syslog: no\n"
          << "  verbosity: 1\n  do-daemonize: no\n"
          << "  num-threads: 1\n"
          << "  access-control: 127.0.0.0/8 allow\n"
          << "  module-config: \"iterator\"\n"
          << "  local-zone: \"example.test.\" static\n"
          << "  local-data: \"www.example.test. 300 IN A 192.0.2.10\"\n"
          << "  local-data: \"www.example.test. 300 IN AAAA 2001:db8::10\"\n";
        // An answer of about 1,700 bytes: above the 1232 any UDP client may get.
        for (int i = 1; i <= 100; ++i)
            f << "  local-data: \"big.example.test. 300 IN A 192.0.2." << i << "\"\n";
        f << "remote-control:\n  control-enable: no\n";
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, logfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::string c = conf.string();
    char arg0[] = "unbound", arg1[] = "-d", arg2[] = "-c";
    char *argv[] = {arg0, arg1, arg2, c.data(), nullptr};
    const int rc = ::posix_spawnp(&pid_, "unbound", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        pid_ = -1;
        return;
    }
    // Ready when it answers its own local data.
    const auto probe = make_query("www.example.test.", LDNS_RR_TYPE_A);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline && !ready_) {
        if (udp) {
            ready_ =
                udp_exchange(loopback(port), probe, std::chrono::milliseconds(200)).has_value();
        } else {
            const int fd = tcp_connect(loopback(port));
            if (fd >= 0) {
                ready_ = tcp_exchange(fd, {probe}, 1, std::chrono::milliseconds(500)).has_value();
                ::close(fd);
            }
        }
        if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ifstream in(logfile);
    std::stringstream ss;
    ss << in.rdbuf();
    log_ = ss.str();
}

Unbound::~Unbound() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
}

BlackHole::BlackHole() {
    fd_ = bind_loopback(SOCK_DGRAM, 0);
    if (fd_ < 0) throw std::runtime_error("cannot bind a UDP socket on 127.0.0.1");
    port_ = bound_port(fd_);
}

BlackHole::~BlackHole() {
    ::close(fd_);
}

SocketAddr BlackHole::address() const {
    return loopback(port_);
}

StubResponder::StubResponder(uint16_t port, Kind kind) {
    fd_ = bind_loopback(SOCK_DGRAM, port);
    if (fd_ < 0) throw std::runtime_error("cannot bind UDP 127.0.0.1:" + std::to_string(port));
    thread_ = std::thread([this, kind] {
        while (!stop_.load()) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            uint8_t buf[4096];
            sockaddr_storage from{};
            socklen_t len = sizeof(from);
            const ssize_t n =
                ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &len);
            if (n < 12) continue;
            ++queries_;
            size_t pos = 12;
            if (kind == Kind::Truncated) {
                // Header and question only, QR and TC set.
                while (pos < size_t(n) && buf[pos] != 0) pos += 1 + buf[pos];
                pos += 1 + 4;
                if (pos > size_t(n)) continue;
                buf[2] |= 0x80 | 0x02;
            } else {
                // Header only: QR set, QDCOUNT 0.
                buf[2] |= 0x80;
                buf[4] = buf[5] = 0;
            }
            buf[3] = 0;
            buf[6] = buf[7] = buf[8] = buf[9] = buf[10] = buf[11] = 0;
            ::sendto(fd_, buf, pos, 0, reinterpret_cast<sockaddr *>(&from), len);
        }
    });
}

StubResponder::~StubResponder() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
}

}  // namespace fabdns::test
