// Shared helpers for the resolver tests: sample services, ldns-built queries and parsed
// replies, loopback sockets, and real upstream servers (unbound) started for a test.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/net.hpp"
#include "engine/engine.hpp"
#include "model/globalservice.hpp"
#include "resolver/ldns.hpp"

namespace fabdns::test {

// The node is in cluster "beijing", zone "beijing", region "north"; zone "global", TTL 5.
EngineOptions sample_engine_options();

// default/nginx (ClusterIP): beijing 10.0.0.5; shanghai 10.1.0.5 and fd00::5.
// default/db (Headless): 60 pods db-0..db-59 in beijing, 10.2.0.N and fd00:2::N.
std::vector<GlobalService> sample_services();

std::unique_ptr<Engine> sample_engine();

struct QueryOptions {
    uint16_t id = 0x1234;
    bool rd = true;
    bool cd = false;
    bool ad = false;
    std::optional<uint16_t> edns_payload;  // set: add an OPT record
    bool do_bit = false;
    uint8_t edns_version = 0;
    std::vector<uint8_t> edns_options;  // raw option bytes (code, length, data)
    uint16_t qclass = LDNS_RR_CLASS_IN;
};

// A query built by ldns.
std::vector<uint8_t> make_query(const std::string &name, uint16_t qtype,
                                const QueryOptions &options = {});

// An EDNS cookie option (RFC 7873) with an 8-byte client cookie.
std::vector<uint8_t> cookie_option();

struct PktDeleter {
    void operator()(ldns_pkt *p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktDeleter>;

// Parses a message with ldns; null when it does not parse.
PktPtr parse(const std::vector<uint8_t> &wire);

// Text of an rdf ("10.0.0.5", "global.").
std::string rdf_text(const ldns_rdf *rdf);

// The addresses in the answer section, as text, sorted.
std::vector<std::string> answer_addresses(const ldns_pkt *pkt);

// Loopback sockets.
std::optional<std::vector<uint8_t>> udp_exchange(const SocketAddr &to,
                                                 const std::vector<uint8_t> &query,
                                                 std::chrono::milliseconds timeout);
void udp_send(const SocketAddr &to, const std::vector<uint8_t> &datagram);
// Opens a TCP connection; -1 on failure.
int tcp_connect(const SocketAddr &to);
// Sends length-prefixed messages and reads `count` replies (nullopt on error or timeout).
std::optional<std::vector<std::vector<uint8_t>>> tcp_exchange(
    int fd, const std::vector<std::vector<uint8_t>> &queries, size_t count,
    std::chrono::milliseconds timeout);
// True when the peer closes the connection within `timeout`.
bool wait_for_close(int fd, std::chrono::milliseconds timeout);

// A port on 127.0.0.1 that was free for both UDP and TCP a moment ago.
uint16_t free_port();

// Runs a command, returns its standard output; exit status in *status when given.
std::string run(const std::string &command, int *status = nullptr);
bool have_program(const std::string &name);

// A fresh temporary directory, removed on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::filesystem::path &path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// A real unbound on 127.0.0.1:port serving `example.test.` from local-data. With udp=false
// it takes only TCP (so a fake UDP server can share its port).
class Unbound {
  public:
    Unbound(uint16_t port, bool udp = true);
    ~Unbound();
    bool ready() const { return ready_; }
    const std::string &log() const { return log_; }

  private:
    TempDir dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
    std::string log_;
};

// A UDP socket on 127.0.0.1 that never answers.
class BlackHole {
  public:
    BlackHole();
    ~BlackHole();
    SocketAddr address() const;

  private:
    int fd_ = -1;
    uint16_t port_ = 0;
};

// A UDP server on 127.0.0.1:port that answers every query under its ID with QR set and no
// records: Truncated echoes the question with TC=1; NoQuestion sends the header alone
// (QDCOUNT 0), as a broken or forging upstream might.
class StubResponder {
  public:
    enum class Kind : uint8_t { Truncated, NoQuestion };
    StubResponder(uint16_t port, Kind kind);
    ~StubResponder();
    int queries() const { return queries_.load(); }

  private:
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<int> queries_{0};
    std::thread thread_;
};

SocketAddr loopback(uint16_t port);

}  // namespace fabdns::test
