// The forwarder: one epoll thread, one non-blocking socket per outstanding upstream attempt.
#include "resolver/forwarder.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "common/fd.hpp"
#include "common/socket.hpp"
#include "resolver/wire.hpp"

namespace fabdns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kWakeKey = 0;  // epoll key of the submit/stop eventfd
constexpr int kMaxEvents = 64;
constexpr int kIdleWaitMs = 1000;

// Random query IDs (RFC 5452): drawn from getrandom in blocks to keep the syscall rare.
class IdSource {
  public:
    uint16_t next() {
        if (pos_ + 2 > sizeof(pool_)) refill();
        const uint16_t id = dns::read16(pool_ + pos_);
        pos_ += 2;
        return id;
    }

  private:
    void refill() {
        size_t got = 0;
        while (got < sizeof(pool_)) {
            const ssize_t n = ::getrandom(pool_ + got, sizeof(pool_) - got, 0);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                break;
            }
            got += static_cast<size_t>(n);
        }
        pos_ = 0;
    }
    uint8_t pool_[512];
    size_t pos_ = sizeof(pool_);
};

}  // namespace

struct Forwarder::Impl {
    enum class Stage : uint8_t { Udp, TcpConnecting, TcpWriting, TcpReading };

    struct Pending {
        std::vector<uint8_t> query;  // with our ID
        uint16_t client_id = 0;
        size_t client_limit = 0;
        Deliver deliver;
        size_t upstream = 0;
        Stage stage = Stage::Udp;
        Fd fd;
        uint64_t attempt = 0;  // bumped per attempt so stale deadlines are ignored
        std::vector<uint8_t> out;
        size_t out_done = 0;
        std::vector<uint8_t> in;
    };
    struct Deadline {
        Clock::time_point at;
        uint64_t key;
        uint64_t attempt;
    };
    struct Submission {
        std::vector<uint8_t> query;
        size_t client_limit;
        Deliver deliver;
    };

    ForwarderOptions options;
    ResolverCounters &counters;
    Fd epoll;
    Fd wake;
    std::thread thread;
    std::atomic<bool> stopping{false};

    std::mutex mutex;  // guards `incoming`
    std::vector<Submission> incoming;
    // Submitted and not yet delivered, queued or in flight: what max_pending bounds.
    std::atomic<size_t> outstanding{0};

    // Owned by the thread.
    std::unordered_map<uint64_t, Pending> pending;
    // Every attempt lasts options.timeout, so deadlines arrive in the order they were pushed.
    std::deque<Deadline> deadlines;
    uint64_t next_key = kWakeKey + 1;
    IdSource ids;

    Impl(ForwarderOptions o, ResolverCounters &c) : options(std::move(o)), counters(c) {
        epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!epoll) throw std::system_error(errno, std::generic_category(), "epoll_create1");
        wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!wake) throw std::system_error(errno, std::generic_category(), "eventfd");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kWakeKey;
        if (::epoll_ctl(epoll.fd, EPOLL_CTL_ADD, wake.fd, &ev) != 0)
            throw std::system_error(errno, std::generic_category(), "epoll_ctl");
        thread = std::thread([this] { run(); });
    }

    void signal() {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake.fd, &one, sizeof(one));
    }

    void run() {
        epoll_event events[kMaxEvents];
        while (!stopping.load(std::memory_order_acquire)) {
            int wait_ms = kIdleWaitMs;
            if (!deadlines.empty()) {
                const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                    deadlines.front().at - Clock::now());
                wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, kIdleWaitMs));
            }
            const int n = ::epoll_wait(epoll.fd, events, kMaxEvents, wait_ms);
            if (stopping.load(std::memory_order_acquire)) break;
            for (int i = 0; i < std::max(n, 0); ++i) {
                const uint64_t key = events[i].data.u64;
                if (key == kWakeKey) {
                    take_submissions();
                    continue;
                }
                auto it = pending.find(key);
                if (it != pending.end()) on_event(key, it->second, events[i].events);
            }
            expire();
        }
        pending.clear();
    }

    void take_submissions() {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake.fd, &count, sizeof(count));
        std::vector<Submission> batch;
        {
            std::lock_guard lock(mutex);
            batch.swap(incoming);
        }
        for (auto &s : batch) start(std::move(s));
    }

    void start(Submission s) {
        if (s.query.size() < dns::kHeaderSize) {
            outstanding.fetch_sub(1, std::memory_order_relaxed);
            return;
        }
        const uint64_t key = next_key++;
        Pending &p = pending[key];
        p.client_id = dns::read16(s.query.data() + dns::kOffId);
        p.query = std::move(s.query);
        p.client_limit = s.client_limit;
        p.deliver = std::move(s.deliver);
        start_udp(key, p);
    }

    void arm(uint64_t key, Pending &p) {
        ++p.attempt;
        deadlines.push_back({Clock::now() + options.timeout, key, p.attempt});
    }

    bool add_to_epoll(uint64_t key, Pending &p, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = key;
        return ::epoll_ctl(epoll.fd, EPOLL_CTL_ADD, p.fd.fd, &ev) == 0;
    }

    // Tries upstream p.upstream over UDP. Returns after arming a deadline or failing over.
    void start_udp(uint64_t key, Pending &p) {
        while (p.upstream < options.upstreams.size()) {
            p.stage = Stage::Udp;
            dns::write16(p.query.data() + dns::kOffId, ids.next());
            const auto addr = sock::to_sockaddr(options.upstreams[p.upstream]);
            p.fd.reset(::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            // connect() makes the kernel drop datagrams from anyone but the upstream.
            if (p.fd && ::connect(p.fd.fd, addr.get(), addr.len) == 0 &&
                ::send(p.fd.fd, p.query.data(), p.query.size(), 0) ==
                    static_cast<ssize_t>(p.query.size()) &&
                add_to_epoll(key, p, EPOLLIN)) {
                arm(key, p);
                return;
            }
            p.fd.reset();
            ++p.upstream;
        }
        give_up(key, p);
    }

    void start_tcp(uint64_t key, Pending &p) {
        ResolverCounters::bump(counters.upstream_tcp_retries);
        const auto addr = sock::to_sockaddr(options.upstreams[p.upstream]);
        p.fd.reset(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        p.out.resize(2 + p.query.size());
        dns::write16(p.out.data(), static_cast<uint16_t>(p.query.size()));
        std::copy(p.query.begin(), p.query.end(), p.out.begin() + 2);
        p.out_done = 0;
        p.in.clear();
        if (p.fd) {
            const int rc = ::connect(p.fd.fd, addr.get(), addr.len);
            if ((rc == 0 || errno == EINPROGRESS) && add_to_epoll(key, p, EPOLLOUT)) {
                p.stage = Stage::TcpConnecting;
                arm(key, p);
                return;
            }
        }
        next_upstream(key, p);
    }

    void next_upstream(uint64_t key, Pending &p) {
        p.fd.reset();  // closing also removes it from epoll
        ++p.upstream;
        start_udp(key, p);
    }

    void give_up(uint64_t key, Pending &p) {
        ResolverCounters::bump(counters.upstream_failures);
        std::vector<uint8_t> query = std::move(p.query);
        dns::write16(query.data() + dns::kOffId, p.client_id);
        Deliver deliver = std::move(p.deliver);
        pending.erase(key);
        outstanding.fetch_sub(1, std::memory_order_relaxed);
        if (auto fail = dns::servfail_for(query)) deliver(std::move(*fail));
    }

    void finish(uint64_t key, Pending &p, std::vector<uint8_t> reply) {
        dns::write16(reply.data() + dns::kOffId, p.client_id);
        if (p.client_limit != 0 && reply.size() > p.client_limit) {
            reply = dns::truncated_copy(reply);
            ResolverCounters::bump(counters.truncated);
        }
        Deliver deliver = std::move(p.deliver);
        pending.erase(key);
        outstanding.fetch_sub(1, std::memory_order_relaxed);
        deliver(std::move(reply));
    }

    void on_event(uint64_t key, Pending &p, uint32_t events) {
        switch (p.stage) {
            case Stage::Udp:
                return on_udp(key, p);
            case Stage::TcpConnecting:
            case Stage::TcpWriting:
                if (events & (EPOLLERR | EPOLLHUP)) return next_upstream(key, p);
                return on_tcp_write(key, p);
            case Stage::TcpReading:
                return on_tcp_read(key, p, events);
        }
    }

    void on_udp(uint64_t key, Pending &p) {
        uint8_t buf[dns::kTcpLimit];
        for (;;) {
            const ssize_t n = ::recv(p.fd.fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                return next_upstream(key, p);  // e.g. ECONNREFUSED: nothing listens there
            }
            const std::span<const uint8_t> reply(buf, static_cast<size_t>(n));
            // Anything that does not answer our question under our ID is ignored, not
            // trusted: the attempt goes on until its deadline.
            if (!dns::reply_matches(p.query, reply)) continue;
            if (reply[dns::kOffFlags1] & dns::kFlagTC) {
                p.fd.reset();
                return start_tcp(key, p);
            }
            return finish(key, p, {reply.begin(), reply.end()});
        }
    }

    void on_tcp_write(uint64_t key, Pending &p) {
        if (p.stage == Stage::TcpConnecting) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (::getsockopt(p.fd.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
                return next_upstream(key, p);
            p.stage = Stage::TcpWriting;
        }
        while (p.out_done < p.out.size()) {
            const ssize_t n =
                ::send(p.fd.fd, p.out.data() + p.out_done, p.out.size() - p.out_done, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                return next_upstream(key, p);
            }
            p.out_done += static_cast<size_t>(n);
        }
        p.stage = Stage::TcpReading;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = key;
        if (::epoll_ctl(epoll.fd, EPOLL_CTL_MOD, p.fd.fd, &ev) != 0) return next_upstream(key, p);
    }

    void on_tcp_read(uint64_t key, Pending &p, uint32_t events) {
        uint8_t buf[16384];
        for (;;) {
            const ssize_t n = ::recv(p.fd.fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                return next_upstream(key, p);
            }
            if (n == 0) return next_upstream(key, p);  // closed before a whole reply
            p.in.insert(p.in.end(), buf, buf + n);
            if (p.in.size() >= 2) {
                const size_t need = 2 + size_t{dns::read16(p.in.data())};
                if (p.in.size() >= need) {
                    std::vector<uint8_t> reply(p.in.begin() + 2,
                                               p.in.begin() + static_cast<std::ptrdiff_t>(need));
                    if (!dns::reply_matches(p.query, reply)) return next_upstream(key, p);
                    return finish(key, p, std::move(reply));
                }
            }
        }
        if (events & EPOLLERR) next_upstream(key, p);
    }

    void expire() {
        const auto now = Clock::now();
        while (!deadlines.empty() && deadlines.front().at <= now) {
            const Deadline d = deadlines.front();
            deadlines.pop_front();
            auto it = pending.find(d.key);
            if (it == pending.end() || it->second.attempt != d.attempt) continue;
            next_upstream(d.key, it->second);
        }
    }
};

Forwarder::Forwarder(ForwarderOptions options, ResolverCounters &counters)
    : impl_(std::make_unique<Impl>(std::move(options), counters)) {}

Forwarder::~Forwarder() {
    stop();
}

void Forwarder::submit(std::vector<uint8_t> query, size_t client_udp_limit, Deliver deliver) {
    if (impl_->stopping.load(std::memory_order_acquire)) return;
    if (impl_->outstanding.fetch_add(1, std::memory_order_relaxed) >= impl_->options.max_pending) {
        impl_->outstanding.fetch_sub(1, std::memory_order_relaxed);
        ResolverCounters::bump(impl_->counters.forward_rejected);
        if (auto fail = dns::servfail_for(query)) deliver(std::move(*fail));
        return;
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->incoming.push_back({std::move(query), client_udp_limit, std::move(deliver)});
    }
    impl_->signal();
}

void Forwarder::stop() {
    if (impl_->stopping.exchange(true)) return;
    impl_->signal();
    if (impl_->thread.joinable()) impl_->thread.join();
    std::lock_guard lock(impl_->mutex);
    impl_->incoming.clear();
}

}  // namespace fabdns
