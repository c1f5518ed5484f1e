// End-to-end tests of forwarding: a real unbound upstream on loopback, TC=1 retried over TCP,
// timeouts turned into SERVFAIL, failover between upstreams, in-zone answers that a dead
// upstream cannot slow down, relayed answers cut to the client's limit, replies without the
// question rejected, and the bounded queue.
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>

#include "resolver/forwarder.hpp"
#include "resolver/resolver.hpp"
#include "support.hpp"

namespace fabdns {
namespace {

using namespace std::chrono_literals;

#define REQUIRE_UNBOUND()                                                               \
    do {                                                                                \
        if (!test::have_program("unbound")) GTEST_SKIP() << "unbound is not installed"; \
    } while (0)

class ForwardTest : public ::testing::Test {
  protected:
    void SetUp() override { engine_ = test::sample_engine(); }

    void start(std::vector<SocketAddr> upstream, std::chrono::milliseconds timeout = 2000ms) {
        ResolverOptions o;
        o.listen = {test::loopback(0)};
        o.workers = 2;
        o.upstream = std::move(upstream);
        o.upstream_timeout = timeout;
        resolver_ = std::make_unique<Resolver>(*engine_, std::move(o));
        server_ = resolver_->addresses().front();
    }

    // Sends a query over UDP and parses the reply.
    test::PktPtr ask_udp(const std::string &name, uint16_t type, test::QueryOptions o = {},
                         std::chrono::milliseconds timeout = 10s) {
        const auto reply = test::udp_exchange(server_, test::make_query(name, type, o), timeout);
        if (!reply) return nullptr;
        return test::parse(*reply);
    }

    std::unique_ptr<Engine> engine_;
    std::unique_ptr<Resolver> resolver_;
    SocketAddr server_;
};

TEST_F(ForwardTest, RelaysUnboundAnswers) {
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    start({test::loopback(port)});

    test::QueryOptions o;
    o.id = 0x4242;
    auto pkt = ask_udp("www.example.test.", LDNS_RR_TYPE_A, o);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0x4242);  // the client's ID, not ours
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"192.0.2.10"});

    // Unbound's own negative answer is relayed as it is.
    pkt = ask_udp("nothing.example.test.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);

    // A TCP client's query is forwarded too.
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    const auto replies =
        test::tcp_exchange(fd, {test::make_query("www.example.test.", LDNS_RR_TYPE_AAAA)}, 1, 10s);
    ::close(fd);
    ASSERT_TRUE(replies);
    pkt = test::parse(replies->front());
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"2001:db8::10"});

    // In-zone names never leave the node.
    pkt = ask_udp("nginx.default.svc.global.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});

    EXPECT_EQ(resolver_->counters().forwarded.load(), 3u);
    EXPECT_EQ(resolver_->counters().upstream_failures.load(), 0u);
}

TEST_F(ForwardTest, DigThroughTheResolver) {
    if (!test::have_program("dig")) GTEST_SKIP() << "dig is not installed";
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    start({test::loopback(port)});
    const std::string out = test::run("dig @127.0.0.1 -p " + std::to_string(server_.port) +
                                      " +tries=1 +time=5 +short www.example.test A 2>&1");
    EXPECT_EQ(out, "192.0.2.10\n");
}

TEST_F(ForwardTest, TruncatedUpstreamAnswerIsRetriedOverTcp) {
    // UDP on the port says TC=1; unbound serves the same port over TCP only.
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::StubResponder udp(port, test::StubResponder::Kind::Truncated);
    test::Unbound unbound(port, /*udp=*/false);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    start({test::loopback(port)});

    auto pkt = ask_udp("www.example.test.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(pkt);
    EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"192.0.2.10"});
    EXPECT_GE(udp.queries(), 1);
    EXPECT_EQ(resolver_->counters().upstream_tcp_retries.load(), 1u);
}

TEST_F(ForwardTest, TimeoutIsServfail) {
    test::BlackHole hole;
    start({hole.address()}, 300ms);
    test::QueryOptions o;
    o.edns_payload = 1232;
    auto pkt = ask_udp("www.example.test.", LDNS_RR_TYPE_A, o);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
    EXPECT_EQ(resolver_->counters().upstream_failures.load(), 1u);
    EXPECT_EQ(resolver_->counters().reply_count(Transport::Udp, Rcode::ServFail), 1u);
}

TEST_F(ForwardTest, NextUpstreamIsTriedOnFailure) {
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    test::BlackHole hole;
    start({hole.address(), test::loopback(port)}, 300ms);
    auto pkt = ask_udp("www.example.test.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"192.0.2.10"});
    EXPECT_EQ(resolver_->counters().upstream_failures.load(), 0u);
}

TEST_F(ForwardTest, DeadUpstreamDoesNotSlowInZoneAnswers) {
    test::BlackHole hole;
    start({hole.address()}, 5000ms);
    // Many forwarded queries hang at the black hole...
    for (int i = 0; i < 50; ++i) {
        test::QueryOptions o;
        o.id = static_cast<uint16_t>(i);
        test::udp_send(server_, test::make_query("host" + std::to_string(i) + ".example.test.",
                                                 LDNS_RR_TYPE_A, o));
    }
    // ...while in-zone queries are answered at once, over UDP and TCP. The bound is far
    // below the upstream timeout: had the forwarded queries blocked a worker, these would
    // wait for it.
    for (int i = 0; i < 10; ++i) {
        auto pkt = ask_udp("nginx.default.svc.global.", LDNS_RR_TYPE_A, {}, 2s);
        ASSERT_TRUE(pkt) << "in-zone query " << i << " not answered while upstream hangs";
        EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"10.0.0.5"});
    }
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(test::tcp_exchange(
        fd, {test::make_query("nginx.default.svc.global.", LDNS_RR_TYPE_A)}, 1, 2s));
    ::close(fd);
    EXPECT_EQ(resolver_->counters().forwarded.load(), 50u);
}

TEST_F(ForwardTest, OversizedUpstreamAnswerIsCutForTheClient) {
    // The forwarder alone: an upstream answer above the client's UDP limit goes back as
    // header and question with TC=1, so the client retries over TCP.
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    ResolverCounters counters;
    Forwarder fwd(ForwarderOptions{{test::loopback(port)}, 2000ms, 16}, counters);
    const auto query = test::make_query("www.example.test.", LDNS_RR_TYPE_A);
    std::promise<std::vector<uint8_t>> got;
    // A limit below the real answer's size forces the cut.
    fwd.submit(query, 40, [&](std::vector<uint8_t> reply) { got.set_value(std::move(reply)); });
    auto future = got.get_future();
    ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
    const auto reply = future.get();
    auto pkt = test::parse(reply);
    ASSERT_TRUE(pkt);
    EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
    EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0x1234);
}

TEST_F(ForwardTest, RelayedAnswerIsCappedLikeOurOwn) {
    // unbound's 100-address answer (about 1,700 bytes) reaches the forwarder whole (over TCP
    // after unbound's own TC=1). A UDP client gets at most 1232 bytes however large an EDNS
    // size it claims, and 512 without EDNS, with TC=1; over TCP it gets everything.
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    start({test::loopback(port)});
    test::QueryOptions big;
    big.edns_payload = 4096;
    for (const auto &o : {big, test::QueryOptions{}}) {
        const auto reply = test::udp_exchange(
            server_, test::make_query("big.example.test.", LDNS_RR_TYPE_A, o), 10s);
        ASSERT_TRUE(reply);
        EXPECT_LE(reply->size(), o.edns_payload ? 1232u : 512u);
        auto pkt = test::parse(*reply);
        ASSERT_TRUE(pkt);
        EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
        EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
    }
    const int fd = test::tcp_connect(server_);
    ASSERT_GE(fd, 0);
    const auto replies = test::tcp_exchange(
        fd, {test::make_query("big.example.test.", LDNS_RR_TYPE_A, big)}, 1, 10s);
    ::close(fd);
    ASSERT_TRUE(replies);
    auto pkt = test::parse(replies->at(0));
    ASSERT_TRUE(pkt);
    EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
    EXPECT_EQ(test::answer_addresses(pkt.get()).size(), 100u);
}

TEST_F(ForwardTest, ReplyWithoutTheQuestionIsRejected) {
    // The first upstream answers under the right ID but with QDCOUNT 0: not an answer to the
    // question asked, so the forwarder waits it out and takes unbound's.
    REQUIRE_UNBOUND();
    const uint16_t port = test::free_port();
    test::Unbound unbound(port);
    ASSERT_TRUE(unbound.ready()) << unbound.log();
    const uint16_t stub_port = test::free_port();
    test::StubResponder stub(stub_port, test::StubResponder::Kind::NoQuestion);
    start({test::loopback(stub_port), test::loopback(port)}, 300ms);
    auto pkt = ask_udp("www.example.test.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(pkt);
    EXPECT_EQ(test::answer_addresses(pkt.get()), std::vector<std::string>{"192.0.2.10"});
    EXPECT_GE(stub.queries(), 1);
}

TEST_F(ForwardTest, QueueIsBoundedAtSubmit) {
    // Beyond max_pending, submit() answers SERVFAIL before it returns: nothing waits in a
    // queue the bound does not see.
    test::BlackHole hole;
    ResolverCounters counters;
    Forwarder fwd(ForwarderOptions{{hole.address()}, 5000ms, 10}, counters);
    int servfails = 0;
    for (uint16_t id = 0; id < 100; ++id) {
        test::QueryOptions o;
        o.id = id;
        fwd.submit(test::make_query("www.example.test.", LDNS_RR_TYPE_A, o), 512,
                   [&](std::vector<uint8_t> reply) {
                       auto pkt = test::parse(reply);
                       if (pkt && ldns_pkt_get_rcode(pkt.get()) == LDNS_RCODE_SERVFAIL)
                           ++servfails;  // the rejected ones come on this thread
                   });
    }
    EXPECT_EQ(servfails, 90);
    EXPECT_EQ(counters.forward_rejected.load(), 90u);
    fwd.stop();
}

TEST_F(ForwardTest, ForwarderOverloadIsServfail) {
    test::BlackHole hole;
    ResolverCounters counters;
    Forwarder fwd(ForwarderOptions{{hole.address()}, 5000ms, 1}, counters);
    const auto query = test::make_query("www.example.test.", LDNS_RR_TYPE_A);
    fwd.submit(query, 512, [](std::vector<uint8_t>) {});
    std::promise<std::vector<uint8_t>> got;
    fwd.submit(query, 512, [&](std::vector<uint8_t> reply) { got.set_value(std::move(reply)); });
    auto future = got.get_future();
    ASSERT_EQ(future.wait_for(3s), std::future_status::ready);
    auto pkt = test::parse(future.get());
    ASSERT_TRUE(pkt);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
    const auto t0 = std::chrono::steady_clock::now();
    fwd.stop();  // with a query still in flight
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

}  // namespace
}  // namespace fabdns
