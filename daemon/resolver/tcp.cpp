// DNS over TCP: TcpConnection holds one client's buffers and timers and does the steps of a
// turn (read, parse frames, write, deadline check); TcpServer runs the epoll loop, answers the
// frames, admits connections under the cap and backs off when accept() runs out of resources.
#include "resolver/tcp.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>

#include "common/fd.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "resolver/forwarder.hpp"
#include "resolver/wire.hpp"

namespace fabdns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16384;   // bytes read from one connection per turn
constexpr size_t kFramePrefix = 2;     // RFC 1035 §4.2.2 length prefix
constexpr size_t kQueriesPerTurn = 8;  // messages answered per connection per turn
// Connections served from the backlog per turn, in rotation: a turn stays short however many
// clients pipeline, so a connection with new input (an epoll event) waits at most one.
constexpr size_t kBacklogPerTurn = 32;
constexpr size_t kMaxForwardsPerConn = 64;  // forwarded queries in flight per connection
constexpr size_t kAcceptsPerTurn = 64;      // connections accepted per listener per turn
constexpr size_t kKeepCapacity = 65536;     // buffers larger than this are freed when empty
// Kernel send buffer per client (the kernel doubles it). Left to autotuning it grows to
// tcp_wmem's maximum (megabytes) for a client that does not read, all of it answered.
constexpr int kSendBuffer = 16384;
constexpr auto kSweepEvery = std::chrono::milliseconds(100);
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
constexpr int kMaxEvents = 1024;  // a turn sees every ready connection, however many
constexpr uint64_t kStopKey = UINT64_MAX;
constexpr uint64_t kMailboxKey = UINT64_MAX - 1;
constexpr uint64_t kFirstConnKey = uint64_t{1} << 32;  // below: listener indices

bool transient(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

// One client connection. Input is consumed frame by frame from `in_` (`in_pos_` marks what is
// consumed); output is one buffer of length-prefixed replies.
class TcpConnection {
  public:
    enum class Io : uint8_t { Ok, Lost };
    enum class Frame : uint8_t { Message, None, Invalid };

    TcpConnection(Fd fd, Clock::time_point now) : fd_(std::move(fd)), last_progress_(now) {}

    int fd() const { return fd_.fd; }
    uint32_t registered() const { return registered_; }
    void set_registered(uint32_t events) { registered_ = events; }
    Clock::time_point last_progress() const { return last_progress_; }
    size_t output_pending() const { return out_.size() - out_done_; }
    size_t forwards() const { return forwards_; }
    // The loop turn this connection was last served in.
    uint64_t served_turn() const { return served_turn_; }
    void set_served_turn(uint64_t turn) { served_turn_ = turn; }
    // In the server's backlog queue.
    bool queued() const { return queued_; }
    void set_queued(bool q) { queued_ = q; }

    // Step: read at most one chunk, and only when no whole message is waiting (so the input
    // held is at most one message plus a chunk).
    Io read(Clock::time_point now) {
        if (read_closed_ || has_message()) return Io::Ok;
        compact();
        const size_t at = in_.size();
        in_.resize(at + kReadChunk);
        const ssize_t n = ::recv(fd_.fd, in_.data() + at, kReadChunk, MSG_DONTWAIT);
        in_.resize(at + static_cast<size_t>(std::max<ssize_t>(n, 0)));
        if (n < 0) return transient(errno) ? Io::Ok : Io::Lost;
        if (n == 0) read_closed_ = true;
        note_partial(now);
        return Io::Ok;
    }

    // Step: the next whole message, if one is buffered. Invalid: a zero length prefix, after
    // which the stream cannot be followed.
    Frame parse_frame(std::span<const uint8_t> &message, Clock::time_point now) {
        const size_t have = in_.size() - in_pos_;
        if (have < kFramePrefix) return Frame::None;
        const size_t len = dns::read16(in_.data() + in_pos_);
        if (len == 0) return Frame::Invalid;
        if (have < kFramePrefix + len) return Frame::None;
        message = {in_.data() + in_pos_ + kFramePrefix, len};
        in_pos_ += kFramePrefix + len;
        last_progress_ = now;  // a whole query received
        partial_since_.reset();
        note_partial(now);
        return Frame::Message;
    }

    bool has_message() const {
        const size_t have = in_.size() - in_pos_;
        return have >= kFramePrefix && have >= kFramePrefix + dns::read16(in_.data() + in_pos_);
    }

    void queue_reply(std::span<const uint8_t> bytes) {
        const size_t at = out_.size();
        out_.resize(at + kFramePrefix + bytes.size());
        dns::write16(out_.data() + at, static_cast<uint16_t>(bytes.size()));
        std::copy(bytes.begin(), bytes.end(), out_.begin() + static_cast<std::ptrdiff_t>(at + 2));
    }

    void forward_started() { ++forwards_; }
    void forward_done() { --forwards_; }

    // Step: send what is pending, as far as the socket takes it.
    Io write(Clock::time_point now) {
        while (out_done_ < out_.size()) {
            const ssize_t n = ::send(fd_.fd, out_.data() + out_done_, out_.size() - out_done_,
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) return transient(errno) ? Io::Ok : Io::Lost;
            out_done_ += static_cast<size_t>(n);
        }
        if (!out_.empty()) {
            last_progress_ = now;  // every pending reply sent
            out_.clear();
            out_done_ = 0;
            if (out_.capacity() > kKeepCapacity) out_.shrink_to_fit();
        }
        return Io::Ok;
    }

    // Step: whether a timer has run out. Idle: no progress for idle_timeout, while no
    // forwarded answer is owed. A message begun and not finished within message_timeout.
    bool expired(Clock::time_point now, const TcpOptions &o) const {
        if (partial_since_ && now - *partial_since_ > o.message_timeout) return true;
        return forwards_ == 0 && now - last_progress_ > o.idle_timeout;
    }

    // Nothing in progress either way: the connection an admission may evict.
    bool idle() const { return in_pos_ == in_.size() && out_.empty() && forwards_ == 0; }

    // The client closed its side and everything owed to it is sent.
    bool finished() const {
        return read_closed_ && !has_message() && out_.empty() && forwards_ == 0;
    }

    // The events this connection needs now.
    uint32_t wanted(const TcpOptions &o) const {
        uint32_t events = 0;
        if (!read_closed_ && !has_message() && output_pending() < o.max_output) events |= EPOLLIN;
        if (!out_.empty()) events |= EPOLLOUT;
        return events;
    }

  private:
    // Drops the consumed prefix of the input.
    void compact() {
        if (in_pos_ == 0) return;
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
        in_pos_ = 0;
        if (in_.empty() && in_.capacity() > kKeepCapacity) in_.shrink_to_fit();
    }

    // Starts the message deadline at the first byte of an incomplete message.
    void note_partial(Clock::time_point now) {
        const bool partial = in_pos_ < in_.size() && !has_message();
        if (!partial) {
            partial_since_.reset();
        } else if (!partial_since_) {
            partial_since_ = now;
        }
    }

    Fd fd_;
    std::vector<uint8_t> in_;
    size_t in_pos_ = 0;
    std::vector<uint8_t> out_;
    size_t out_done_ = 0;
    size_t forwards_ = 0;  // queries at the forwarder
    bool read_closed_ = false;
    uint32_t registered_ = 0;  // events registered with epoll
    uint64_t served_turn_ = 0;
    bool queued_ = false;
    Clock::time_point last_progress_;
    std::optional<Clock::time_point> partial_since_;
};

}  // namespace

struct TcpServer::Impl {
    const Engine &engine;
    const RespondOptions &respond_options;
    ResolverCounters &counters;
    Forwarder *forwarder;
    OnReply on_reply;
    TcpOptions options;
    std::vector<int> listeners;
    int stop_fd;
    const std::atomic<bool> &stopping;

    Fd ep;
    std::unordered_map<uint64_t, TcpConnection> conns;
    // Connections with whole messages still buffered after their turn, served in rotation
    // without waiting for an event. Each is queued once; closed ones are skipped when popped.
    std::deque<uint64_t> backlog;
    uint64_t next_key = kFirstConnKey;
    uint64_t turn = 0;
    std::vector<std::optional<Clock::time_point>> listener_paused;  // resume time, per listener

    // Replies from the forwarder (its thread), handed to this thread.
    Fd mailbox_event;
    std::mutex mailbox_mutex;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> mailbox;

    Impl(const Engine &e, const RespondOptions &ro, ResolverCounters &c, Forwarder *f, OnReply r,
         TcpOptions o, std::vector<int> l, int s, const std::atomic<bool> &st)
        : engine(e),
          respond_options(ro),
          counters(c),
          forwarder(f),
          on_reply(std::move(r)),
          options(o),
          listeners(std::move(l)),
          stop_fd(s),
          stopping(st),
          listener_paused(listeners.size()) {}

    bool set_events(int fd, uint32_t events, uint64_t key, int op) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = key;
        return ::epoll_ctl(ep.fd, op, fd, &ev) == 0;
    }

    void close_conn(uint64_t key) {
        conns.erase(key);  // closing the socket also removes it from epoll
    }

    // ---- admission ----

    // Makes room for one more connection: evicts the connection idle the longest. False when
    // every connection is busy.
    bool make_room() {
        auto oldest = conns.end();
        for (auto it = conns.begin(); it != conns.end(); ++it) {
            if (it->second.idle() && (oldest == conns.end() ||
                                      it->second.last_progress() < oldest->second.last_progress()))
                oldest = it;
        }
        if (oldest == conns.end()) return false;
        ResolverCounters::bump(counters.tcp_evicted);
        close_conn(oldest->first);
        return true;
    }

    void accept_some(size_t index, Clock::time_point now) {
        const int listener = listeners[index];
        for (size_t i = 0; i < kAcceptsPerTurn; ++i) {
            Fd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                if (transient(errno) || errno == ECONNABORTED) return;
                // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the pending
                // connection stays queued and the level-triggered listener would fire again at
                // once, so it is taken out of epoll for a while.
                ResolverCounters::bump(counters.tcp_accept_errors);
                set_events(listener, 0, index, EPOLL_CTL_MOD);
                listener_paused[index] = now + kAcceptBackoff;
                return;
            }
            if (conns.size() >= options.max_connections && !make_room()) {
                ResolverCounters::bump(counters.tcp_refused);
                continue;  // closed by Fd
            }
            sock::set_int_option(fd.fd, SOL_SOCKET, SO_SNDBUF, kSendBuffer);
            const uint64_t key = next_key++;
            if (!set_events(fd.fd, EPOLLIN, key, EPOLL_CTL_ADD)) continue;
            auto [it, added] = conns.try_emplace(key, std::move(fd), now);
            it->second.set_registered(EPOLLIN);
        }
    }

    void resume_listeners(Clock::time_point now) {
        for (size_t i = 0; i < listeners.size(); ++i) {
            if (listener_paused[i] && now >= *listener_paused[i]) {
                listener_paused[i].reset();
                set_events(listeners[i], EPOLLIN, i, EPOLL_CTL_MOD);
            }
        }
    }

    // ---- answering ----

    void forward(uint64_t key, TcpConnection &c, std::span<const uint8_t> query) {
        ResolverCounters::bump(counters.forwarded);
        c.forward_started();
        forwarder->submit({query.begin(), query.end()}, 0, [this, key](std::vector<uint8_t> reply) {
            {
                std::lock_guard lock(mailbox_mutex);
                mailbox.emplace_back(key, std::move(reply));
            }
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t n = ::write(mailbox_event.fd, &one, sizeof(one));
        });
    }

    // Step: answers up to kQueriesPerTurn buffered messages, stopping while the client's
    // pending output is at the cap. False when the stream is broken.
    bool answer_some(uint64_t key, TcpConnection &c, Clock::time_point now) {
        for (size_t done = 0; done < kQueriesPerTurn; ++done) {
            if (c.output_pending() >= options.max_output || c.forwards() >= kMaxForwardsPerConn)
                return true;
            std::span<const uint8_t> query;
            switch (c.parse_frame(query, now)) {
                case TcpConnection::Frame::None:
                    return true;
                case TcpConnection::Frame::Invalid:
                    return false;
                case TcpConnection::Frame::Message:
                    break;
            }
            counters.count_query(Transport::Tcp);
            Reply r = respond(engine, query, Transport::Tcp, respond_options);
            switch (r.action) {
                case Reply::Action::Drop:
                    ResolverCounters::bump(counters.dropped);
                    break;
                case Reply::Action::Forward:
                    forward(key, c, query);
                    break;
                case Reply::Action::Reply:
                    counters.count_reply(Transport::Tcp, r.rcode);
                    if (r.truncated) ResolverCounters::bump(counters.truncated);
                    if (on_reply) on_reply(r);
                    c.queue_reply(r.bytes);
                    break;
            }
        }
        return true;
    }

    // One turn for one connection: read, parse and answer, write, then register what it
    // needs next, or close it.
    void serve(uint64_t key, TcpConnection &c, uint32_t events, Clock::time_point now) {
        // HUP: the peer closed both ways, nothing more can reach it. It is reported whatever
        // is registered, so waiting for forwarded answers would spin.
        c.set_served_turn(turn);
        bool ok = !(events & (EPOLLHUP | EPOLLERR));
        if (ok && (events & EPOLLIN)) ok = c.read(now) == TcpConnection::Io::Ok;
        if (ok) ok = answer_some(key, c, now);
        if (ok) ok = c.write(now) == TcpConnection::Io::Ok;
        if (!ok || c.finished()) return close_conn(key);
        after_turn(key, c);
    }

    void after_turn(uint64_t key, TcpConnection &c) {
        if (!c.queued() && c.has_message() && c.output_pending() < options.max_output &&
            c.forwards() < kMaxForwardsPerConn) {
            backlog.push_back(key);
            c.set_queued(true);
        }
        const uint32_t want = c.wanted(options);
        if (want == c.registered()) return;
        if (!set_events(c.fd(), want, key, EPOLL_CTL_MOD)) return close_conn(key);
        c.set_registered(want);
    }

    void take_mailbox(Clock::time_point now) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(mailbox_event.fd, &count, sizeof(count));
        std::vector<std::pair<uint64_t, std::vector<uint8_t>>> items;
        {
            std::lock_guard lock(mailbox_mutex);
            items.swap(mailbox);
        }
        for (auto &[key, reply] : items) {
            auto it = conns.find(key);
            if (it == conns.end()) continue;  // the client went away
            TcpConnection &c = it->second;
            c.forward_done();
            counters.count_reply(Transport::Tcp, dns::rcode_of(reply));
            c.queue_reply(reply);
            if (c.write(now) != TcpConnection::Io::Ok || c.finished()) {
                close_conn(key);
                continue;
            }
            after_turn(key, c);
        }
    }

    void sweep(Clock::time_point now) {
        std::vector<uint64_t> expired;
        for (auto &[key, c] : conns)
            if (c.expired(now, options)) expired.push_back(key);
        for (uint64_t key : expired) {
            ResolverCounters::bump(counters.tcp_timed_out);
            close_conn(key);
        }
    }

    void run() {
        ep.reset(::epoll_create1(EPOLL_CLOEXEC));
        mailbox_event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!ep || !mailbox_event) {
            log::error("resolver: TCP setup: " + sock::error_text(errno));
            return;
        }
        set_events(stop_fd, EPOLLIN, kStopKey, EPOLL_CTL_ADD);
        set_events(mailbox_event.fd, EPOLLIN, kMailboxKey, EPOLL_CTL_ADD);
        for (size_t i = 0; i < listeners.size(); ++i)
            set_events(listeners[i], EPOLLIN, i, EPOLL_CTL_ADD);

        auto last_sweep = Clock::now();
        epoll_event events[kMaxEvents];
        while (!stopping.load(std::memory_order_acquire)) {
            const int timeout = backlog.empty() ? static_cast<int>(kSweepEvery.count()) : 0;
            const int n = ::epoll_wait(ep.fd, events, kMaxEvents, timeout);
            if (stopping.load(std::memory_order_acquire)) break;
            const auto now = Clock::now();
            ++turn;
            for (int e = 0; e < std::max(n, 0); ++e) {
                const uint64_t key = events[e].data.u64;
                if (key == kStopKey) continue;
                if (key == kMailboxKey) {
                    take_mailbox(now);
                } else if (key < kFirstConnKey) {
                    accept_some(key, now);
                } else if (auto it = conns.find(key); it != conns.end()) {
                    serve(key, it->second, events[e].events, now);
                }
            }
            // The next connections with messages still buffered get their share.
            for (size_t i = 0, n_queued = backlog.size(); i < std::min(kBacklogPerTurn, n_queued);
                 ++i) {
                const uint64_t key = backlog.front();
                backlog.pop_front();
                auto it = conns.find(key);
                if (it == conns.end()) continue;
                it->second.set_queued(false);
                if (it->second.served_turn() == turn) {
                    after_turn(key, it->second);  // had its share: back in the queue
                } else {
                    serve(key, it->second, 0, now);
                }
            }
            if (now - last_sweep >= kSweepEvery) {
                last_sweep = now;
                sweep(now);
                resume_listeners(now);
            }
        }
        backlog.clear();
        conns.clear();
    }
};

TcpServer::TcpServer(const Engine &engine, const RespondOptions &respond_options,
                     ResolverCounters &counters, Forwarder *forwarder, OnReply on_reply,
                     TcpOptions options, std::vector<int> listeners, int stop_fd,
                     const std::atomic<bool> &stopping)
    : impl_(std::make_unique<Impl>(engine, respond_options, counters, forwarder,
                                   std::move(on_reply), options, std::move(listeners), stop_fd,
                                   stopping)) {}

TcpServer::~TcpServer() = default;

void TcpServer::run() {
    impl_->run();
}

}  // namespace fabdns
