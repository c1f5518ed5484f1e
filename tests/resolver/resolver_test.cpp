// End-to-end tests of the Resolver server on loopback: dig over UDP and TCP, raw malformed
// packets, TCP pipelining and idle timeout, no reply to reflection ports, bind errors, counters,
// the hook.
#include "resolver/resolver.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <regex>
#include <sstream>

#include "dns_wire.h"
#include "support.hpp"

namespace fabdns {
namespace {

using namespace std::chrono_literals;

// What dig printed, picked apart.
struct DigResult {
    std::string output;
    std::string status;
    std::vector<std::string> flags;
    std::vector<std::string> answer_owners;
    std::vector<std::string> answer_data;

    bool has_flag(const std::string &f) const {
        return std::find(flags.begin(), flags.end(), f) != flags.end();
    }
    std::vector<std::string> sorted_data() const {
        auto d = answer_data;
        std::sort(d.begin(), d.end());
        return d;
    }
};

DigResult dig(const SocketAddr &server, const std::string &args) {
    DigResult r;
    r.output = test::run("dig @" + server.ip.to_string() + " -p " + std::to_string(server.port) +
                         " +tries=1 +time=3 " + args + " 2>&1");
    std::smatch m;
    if (std::regex_search(r.output, m, std::regex("status: ([A-Z]+)"))) r.status = m[1];
    if (std::regex_search(r.output, m, std::regex(";; flags:([a-z ]*);"))) {
        std::istringstream in(m[1].str());
        for (std::string f; in >> f;) r.flags.push_back(f);
    }
    std::istringstream lines(r.output);
    bool in_answer = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.find(";; ANSWER SECTION:") != std::string::npos) {
            in_answer = true;
            continue;
        }
        if (!in_answer) continue;
        if (line.empty()) break;
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string x; fields >> x;) f.push_back(x);
        if (f.size() >= 5) {
            r.answer_owners.push_back(f.front());
            r.answer_data.push_back(f.back());
        }
    }
    return r;
}

class ResolverTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::have_program("dig")) GTEST_SKIP() << "dig is not installed";
        engine_ = test::sample_engine();
    }

    void start(ResolverOptions o = {}) {
        if (o.listen.empty()) o.listen = {test::loopback(0)};
        if (o.workers == 0) o.workers = 2;
        resolver_ = std::make_unique<Resolver>(*engine_, std::move(o));
        ASSERT_EQ(resolver_->addresses().size(), 1u);
        server_ = resolver_->addresses().front();
        ASSERT_NE(server_.port, 0);
    }

    std::unique_ptr<Engine> engine_;
    std::unique_ptr<Resolver> resolver_;
    SocketAddr server_;
};

TEST_F(ResolverTest, AnswersOverUdp) {
    start();
    const auto r = dig(server_, "nginx.default.svc.global A");
    EXPECT_EQ(r.status, "NOERROR") << r.output;
    EXPECT_TRUE(r.has_flag("aa")) << r.output;
    EXPECT_TRUE(r.has_flag("rd")) << r.output;
    EXPECT_FALSE(r.has_flag("ra")) << r.output;
    EXPECT_EQ(r.answer_data, std::vector<std::string>{"10.0.0.5"}) << r.output;
    // dig sends EDNS with a cookie: OPT comes back, without a cookie.
    EXPECT_NE(r.output.find("OPT PSEUDOSECTION"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("udp: 1232"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("COOKIE"), std::string::npos) << r.output;
}

TEST_F(ResolverTest, AnswersOverTcp) {
    start();
    const auto r = dig(server_, "+tcp nginx.default.svc.global AAAA");
    EXPECT_EQ(r.status, "NOERROR") << r.output;
    EXPECT_TRUE(r.has_flag("aa")) << r.output;
    EXPECT_EQ(r.answer_data, std::vector<std::string>{"fd00::5"}) << r.output;
    EXPECT_GE(resolver_->counters().query_count(Transport::Tcp), 1u);
}

TEST_F(ResolverTest, KeepsTheQueryCase) {
    start();
    const auto r = dig(server_, "NgInX.DeFault.svc.GLOBAL A");
    EXPECT_EQ(r.status, "NOERROR") << r.output;
    EXPECT_EQ(r.answer_owners, std::vector<std::string>{"NgInX.DeFault.svc.GLOBAL."}) << r.output;
}

TEST_F(ResolverTest, NegativeAnswers) {
    start();
    auto r = dig(server_, "nope.default.svc.global A");
    EXPECT_EQ(r.status, "NXDOMAIN") << r.output;
    EXPECT_TRUE(r.has_flag("aa")) << r.output;
    EXPECT_NE(r.output.find("AUTHORITY: 1"), std::string::npos) << r.output;
    r = dig(server_, "nginx.default.svc.global TXT");
    EXPECT_EQ(r.status, "NOERROR") << r.output;
    EXPECT_NE(r.output.find("ANSWER: 0"), std::string::npos) << r.output;
    r = dig(server_, "www.example.com A");
    EXPECT_EQ(r.status, "REFUSED") << r.output;
    EXPECT_FALSE(r.has_flag("aa")) << r.output;
}

TEST_F(ResolverTest, TruncatesOverUdpAndServesWholeOverTcp) {
    start();
    // +ignore keeps dig from retrying over TCP, so the TC reply itself is seen.
    auto r = dig(server_, "+ignore +noedns db.default.svc.global A");
    EXPECT_EQ(r.status, "NOERROR") << r.output;
    EXPECT_TRUE(r.has_flag("tc")) << r.output;
    EXPECT_LT(r.answer_data.size(), 60u) << r.output;

    r = dig(server_, "+ignore +bufsize=512 db.default.svc.global AAAA");
    EXPECT_TRUE(r.has_flag("tc")) << r.output;

    r = dig(server_, "+ignore +bufsize=4096 db.default.svc.global A");
    EXPECT_FALSE(r.has_flag("tc")) << r.output;
    EXPECT_EQ(r.answer_data.size(), 60u) << r.output;

    // Without +ignore dig retries over TCP and gets everything.
    r = dig(server_, "+bufsize=4096 db.default.svc.global AAAA");
    EXPECT_FALSE(r.has_flag("tc")) << r.output;
    EXPECT_EQ(r.answer_data.size(), 60u) << r.output;

    r = dig(server_, "+tcp db.default.svc.global AAAA");
    EXPECT_EQ(r.answer_data.size(), 60u) << r.output;
    EXPECT_GE(resolver_->counters().truncated.load(), 2u);
}

TEST_F(ResolverTest, SurvivesMalformedPackets) {
    start();
    test::udp_send(server_, {1, 2, 3, 4, 5});
    auto response = test::make_query("nginx.default.svc.global.", LDNS_RR_TYPE_A);
    response[2] |= 0x80;
    test::udp_send(server_, response);
    std::vector<uint8_t> bad_name = {0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'x'};
    const auto formerr = test::udp_exchange(server_, bad_name, 3s);
    ASSERT_TRUE(formerr);
    ASSERT_GE(formerr->size(), 12u);
    EXPECT_EQ((*formerr)[0], 0xab);
    EXPECT_EQ((*formerr)[3] & 0x0f, 1);

    // Garbage over TCP too, in the middle of a connection.
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    const auto good = test::make_query("nginx.default.svc.global.", LDNS_RR_TYPE_A);
    const auto replies = test::tcp_exchange(fd, {{9, 9, 9}, response, good}, 1, 3s);
    ::close(fd);
    ASSERT_TRUE(replies);
    auto pkt = test::parse(replies->at(0));
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});

    const auto r = dig(server_, "nginx.default.svc.global A");
    EXPECT_EQ(r.answer_data, std::vector<std::string>{"10.0.0.5"}) << r.output;
    EXPECT_GE(resolver_->counters().dropped.load(), 4u);
    EXPECT_GE(resolver_->counters().reply_count(Transport::Udp, Rcode::FormErr), 1u);
}

TEST_F(ResolverTest, TcpConnectionCarriesManyQueries) {
    start();
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    std::vector<std::vector<uint8_t>> queries;
    for (uint16_t id = 1; id <= 3; ++id) {
        test::QueryOptions o;
        o.id = id;
        queries.push_back(test::make_query("nginx.default.svc.global.", LDNS_RR_TYPE_A, o));
    }
    auto replies = test::tcp_exchange(fd, queries, 3, 5s);
    ASSERT_TRUE(replies);
    for (uint16_t i = 0; i < 3; ++i) EXPECT_EQ(dns::read16(replies->at(i).data()), i + 1);
    // And again on the same connection.
    replies = test::tcp_exchange(fd, {queries[0]}, 1, 5s);
    EXPECT_TRUE(replies);
    ::close(fd);
}

TEST_F(ResolverTest, IdleTcpConnectionsAreClosed) {
    ResolverOptions o;
    o.tcp_idle_timeout = 200ms;
    start(std::move(o));
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(test::wait_for_close(fd, 10s));
    ::close(fd);
}

TEST_F(ResolverTest, NoReplyToReflectionPorts) {
    // From echo, daytime, qotd, chargen and time, not even FORMERR goes back (SPEC §4): a
    // spoofed query would start a loop. Port 0 cannot be bound; the same check covers it.
    start();
    const auto query = test::make_query("nginx.default.svc.global.", LDNS_RR_TYPE_A);
    const std::vector<uint8_t> garbage = {0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'x'};
    uint64_t sent = 0;
    for (const uint16_t port : {7, 13, 17, 19, 37}) {
        ASSERT_TRUE(dns_is_reflection_port(port));
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) != 0) {
            ::close(fd);  // not root, or the port is in use here: try the next
            continue;
        }
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(server_.port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (const auto *msg : {&query, &garbage}) {
            ASSERT_EQ(::sendto(fd, msg->data(), msg->size(), 0, reinterpret_cast<sockaddr *>(&to),
                               sizeof(to)),
                      ssize_t(msg->size()));
            ++sent;
        }
        pollfd p{fd, POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 500), 0) << "a reply went to port " << port;
        ::close(fd);
    }
    if (sent == 0) GTEST_SKIP() << "cannot bind any reflection port (needs root)";
    EXPECT_EQ(resolver_->counters().reflection_dropped.load(), sent);
    // Any other port is answered as usual.
    EXPECT_TRUE(test::udp_exchange(server_, query, 3s));
}

TEST_F(ResolverTest, BindErrorNamesTheAddress) {
    // A plain UDP socket (no SO_REUSEPORT) holds the port.
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
    const uint16_t port = ntohs(sin.sin_port);

    ResolverOptions o;
    o.listen = {test::loopback(port)};
    o.workers = 2;
    try {
        Resolver r(*engine_, std::move(o));
        ADD_FAILURE() << "bound a port already in use";
    } catch (const ResolverError &e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
    ::close(fd);
}

TEST_F(ResolverTest, StopReturnsPromptly) {
    start();
    const int fd = test::tcp_connect(server_);  // an open connection must not hold stop()
    const auto t0 = std::chrono::steady_clock::now();
    resolver_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);  // did not hang
    resolver_->stop();                                     // idempotent
    if (fd >= 0) ::close(fd);
}

TEST_F(ResolverTest, CountersAndHook) {
    std::mutex mutex;
    std::vector<std::pair<std::string, uint16_t>> seen;
    ResolverOptions o;
    o.on_query = [&](std::string_view name, uint16_t type) {
        std::lock_guard lock(mutex);
        seen.emplace_back(name, type);
    };
    start(std::move(o));
    dig(server_, "NGINX.default.svc.global A");
    dig(server_, "+tcp nginx.default.svc.global AAAA");
    dig(server_, "nope.default.svc.global A");     // NXDOMAIN: not reported
    dig(server_, "nginx.default.svc.global TXT");  // not A/AAAA: not reported
    {
        std::lock_guard lock(mutex);
        const std::vector<std::pair<std::string, uint16_t>> expected = {
            {"nginx.default.svc.global", dnstype::A}, {"nginx.default.svc.global", dnstype::AAAA}};
        EXPECT_EQ(seen, expected);
    }
    const auto &c = resolver_->counters();
    EXPECT_EQ(c.query_count(Transport::Udp), 3u);
    EXPECT_EQ(c.query_count(Transport::Tcp), 1u);
    EXPECT_EQ(c.reply_count(Transport::Udp, Rcode::NoError), 2u);
    EXPECT_EQ(c.reply_count(Transport::Udp, Rcode::NxDomain), 1u);
    EXPECT_EQ(c.reply_count(Transport::Tcp, Rcode::NoError), 1u);
    EXPECT_EQ(c.forwarded.load(), 0u);
}

TEST_F(ResolverTest, ServesIpv6Loopback) {
    ResolverOptions o;
    o.listen = {SocketAddr{*IpAddr::parse("::1"), 0}};
    o.workers = 1;
    std::unique_ptr<Resolver> r;
    try {
        r = std::make_unique<Resolver>(*engine_, std::move(o));
    } catch (const ResolverError &e) {
        GTEST_SKIP() << "no IPv6 loopback: " << e.what();
    }
    const auto addr = r->addresses().front();
    auto d = dig(addr, "nginx.default.svc.global A");
    EXPECT_EQ(d.answer_data, std::vector<std::string>{"10.0.0.5"}) << d.output;
    d = dig(addr, "+tcp nginx.default.svc.global A");
    EXPECT_EQ(d.answer_data, std::vector<std::string>{"10.0.0.5"}) << d.output;
}

TEST_F(ResolverTest, WildcardAddressRepliesFromTheAddressAsked) {
    ResolverOptions o;
    o.listen = {SocketAddr{*IpAddr::parse("0.0.0.0"), 0}};
    start(std::move(o));
    // 127.0.0.2 is loopback too; the reply must come from it for dig to accept it.
    const SocketAddr other{IpAddr::v4(127, 0, 0, 2), server_.port};
    const auto r = dig(other, "nginx.default.svc.global A");
    EXPECT_EQ(r.answer_data, std::vector<std::string>{"10.0.0.5"}) << r.output;
}

TEST_F(ResolverTest, SeesNewServices) {
    start();
    auto services = test::sample_services();
    services[0].endpoints[0].addresses = {*IpAddr::parse("10.9.9.9")};
    engine_->set_services(services);
    const auto r = dig(server_, "nginx.default.svc.global A");
    EXPECT_EQ(r.answer_data, std::vector<std::string>{"10.9.9.9"}) << r.output;
}

}  // namespace
}  // namespace fabdns
