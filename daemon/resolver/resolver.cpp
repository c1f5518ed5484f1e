// The user-space resolver's I/O: per-worker SO_REUSEPORT UDP sockets served with
// recvmmsg/sendmmsg, one epoll thread for RFC 7766 TCP, and the forwarder for everything
// outside the zones. Answers themselves come from respond().
#include "resolver/resolver.hpp"

#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "common/log.hpp"
#include "resolver/forwarder.hpp"
#include "resolver/respond.hpp"
#include "resolver/socket.hpp"

namespace fabdns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBatch = 32;           // datagrams per recvmmsg/sendmmsg
constexpr size_t kRecvBuffer = 4096;    // larger UDP queries are dropped as garbage
constexpr int kRecvRounds = 8;          // recvmmsg calls per wakeup before checking for stop
constexpr int kSocketBuffer = 1 << 20;  // SO_RCVBUF/SO_SNDBUF asked for; the kernel may cap it
constexpr int kListenBacklog = 1024;
constexpr int kPortAttempts = 10;  // retries when port 0 gives a port TCP cannot have
constexpr size_t kTcpReadChunk = 16384;
constexpr size_t kTcpMaxOutput = 1 << 20;  // stop reading a client that does not read replies
constexpr auto kTcpSweep = std::chrono::milliseconds(250);
constexpr int kTcpMaxEvents = 64;
constexpr uint64_t kStopKey = UINT64_MAX;
constexpr uint64_t kMailboxKey = UINT64_MAX - 1;
constexpr uint64_t kFirstConnKey = uint64_t{1} << 32;  // below: listener indices

// Where a UDP query came from and which local address it was sent to. The local address
// matters for wildcard binds: the reply must leave from the address the client asked.
struct Origin {
    sock::SockAddr peer;
    bool has_info = false;
    in_pktinfo v4{};
    in6_pktinfo v6{};
};

constexpr size_t kControlSize = CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo));

void read_pktinfo(msghdr &msg, Origin &o) {
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            std::memcpy(&o.v4, CMSG_DATA(c), sizeof(o.v4));
            o.has_info = true;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            std::memcpy(&o.v6, CMSG_DATA(c), sizeof(o.v6));
            o.has_info = true;
        }
    }
}

// Fills msg's control data so the reply leaves from the address the query was sent to.
void write_pktinfo(const Origin &o, msghdr &msg, char *control) {
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    if (!o.has_info) return;
    msg.msg_control = control;
    msg.msg_controllen = kControlSize;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (o.peer.family() == AF_INET) {
        in_pktinfo info{};
        info.ipi_spec_dst = o.v4.ipi_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(info));
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
        msg.msg_controllen = CMSG_SPACE(sizeof(info));
    } else {
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(o.v6));
        std::memcpy(CMSG_DATA(c), &o.v6, sizeof(o.v6));
        msg.msg_controllen = CMSG_SPACE(sizeof(o.v6));
    }
}

void send_one(int fd, const Origin &o, const std::vector<uint8_t> &bytes) {
    iovec iov{const_cast<uint8_t *>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr *>(o.peer.get());
    msg.msg_namelen = o.peer.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[kControlSize];
    write_pktinfo(o, msg, control);
    ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

uint16_t rcode_of(const std::vector<uint8_t> &msg) {
    return msg.size() >= dns::kHeaderSize ? msg[dns::kOffFlags2] & dns::kMaskRcode : 0;
}

struct UdpSocket {
    sock::Fd fd;
    bool wildcard = false;
};

struct Worker {
    std::vector<UdpSocket> sockets;  // one per listen address
    std::thread thread;
};

struct TcpConn {
    sock::Fd fd;
    std::vector<uint8_t> in;
    std::vector<uint8_t> out;
    size_t out_done = 0;
    Clock::time_point last_activity;
    size_t pending = 0;  // queries at the forwarder
    bool read_closed = false;
    uint32_t events = 0;  // registered with epoll
};

}  // namespace

struct Resolver::Impl {
    const Engine &engine;
    ResolverOptions options;
    ResolverCounters counters;
    RespondOptions respond_options;
    std::vector<SocketAddr> bound;
    std::vector<Worker> workers;
    std::vector<sock::Fd> tcp_listeners;
    std::unique_ptr<Forwarder> forwarder;
    sock::Fd stop_event;  // never drained once written: every loop sees it readable
    std::atomic<bool> stopping{false};
    std::thread tcp_thread;

    // Replies from the forwarder for TCP clients, handed to the TCP thread.
    sock::Fd mailbox_event;
    std::mutex mailbox_mutex;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> mailbox;

    Impl(const Engine &e, ResolverOptions o) : engine(e), options(std::move(o)) {
        if (options.workers == 0) {
            // One worker per CPU this process may run on (a DaemonSet pinned to one CPU must
            // not context-switch between idle workers).
            cpu_set_t set;
            CPU_ZERO(&set);
            unsigned n = sched_getaffinity(0, sizeof(set), &set) == 0
                             ? static_cast<unsigned>(CPU_COUNT(&set))
                             : std::thread::hardware_concurrency();
            options.workers = std::max(1u, n);
        }
        respond_options.forward = !options.upstream.empty();
    }

    // ---- setup ----

    static sock::Fd open_socket(const SocketAddr &addr, int type, const char *what) {
        const int family = addr.ip.is_v4() ? AF_INET : AF_INET6;
        sock::Fd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            throw ResolverError("cannot listen on " + addr.to_string() + " (" + what +
                                "): " + sock::error_text(errno));
        }
        // Separate IPv6 sockets, so that 0.0.0.0 and :: can both be listed.
        if (family == AF_INET6) sock::set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1);
        return fd;
    }

    static void bind_or_throw(int fd, const SocketAddr &addr, const char *what) {
        const auto sa = sock::to_sockaddr(addr);
        if (::bind(fd, sa.get(), sa.len) != 0) {
            throw ResolverError("cannot listen on " + addr.to_string() + " (" + what +
                                "): " + sock::error_text(errno));
        }
    }

    static uint16_t local_port(int fd) {
        sock::SockAddr sa;
        sa.len = sizeof(sa.storage);
        if (::getsockname(fd, sa.get(), &sa.len) != 0) return 0;
        return sock::from_sockaddr(sa).port;
    }

    // Binds one address: a UDP socket per worker (SO_REUSEPORT spreads datagrams over them)
    // and one TCP listener.
    void bind_address(const SocketAddr &wanted) {
        const bool wildcard = wanted.ip.is_unspecified();
        for (int attempt = 1;; ++attempt) {
            SocketAddr addr = wanted;
            std::vector<UdpSocket> udp;
            try {
                for (unsigned w = 0; w < options.workers; ++w) {
                    UdpSocket s{open_socket(addr, SOCK_DGRAM, "UDP"), wildcard};
                    sock::set_int_option(s.fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
                    sock::set_int_option(s.fd.get(), SOL_SOCKET, SO_RCVBUF, kSocketBuffer);
                    sock::set_int_option(s.fd.get(), SOL_SOCKET, SO_SNDBUF, kSocketBuffer);
                    if (wildcard) {
                        if (addr.ip.is_v4())
                            sock::set_int_option(s.fd.get(), IPPROTO_IP, IP_PKTINFO, 1);
                        else
                            sock::set_int_option(s.fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
                    }
                    bind_or_throw(s.fd.get(), addr, "UDP");
                    if (addr.port == 0) addr.port = local_port(s.fd.get());
                    udp.push_back(std::move(s));
                }
                sock::Fd tcp = open_socket(addr, SOCK_STREAM, "TCP");
                sock::set_int_option(tcp.get(), SOL_SOCKET, SO_REUSEADDR, 1);
                bind_or_throw(tcp.get(), addr, "TCP");
                if (::listen(tcp.get(), kListenBacklog) != 0) {
                    throw ResolverError("cannot listen on " + addr.to_string() +
                                        " (TCP): " + sock::error_text(errno));
                }
                for (unsigned w = 0; w < options.workers; ++w)
                    workers[w].sockets.push_back(std::move(udp[w]));
                tcp_listeners.push_back(std::move(tcp));
                bound.push_back(addr);
                return;
            } catch (const ResolverError &) {
                // A kernel-chosen UDP port may be taken for TCP: pick another.
                if (wanted.port != 0 || attempt >= kPortAttempts) throw;
            }
        }
    }

    void start() {
        if (options.listen.empty()) throw ResolverError("no listen address");
        stop_event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        mailbox_event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!stop_event || !mailbox_event)
            throw ResolverError("cannot create eventfd: " + sock::error_text(errno));
        workers.resize(options.workers);
        for (const auto &addr : options.listen) bind_address(addr);
        if (respond_options.forward) {
            try {
                forwarder = std::make_unique<Forwarder>(
                    ForwarderOptions{options.upstream, options.upstream_timeout,
                                     options.max_forward_pending},
                    counters);
            } catch (const std::system_error &e) {
                throw ResolverError(std::string("cannot start the forwarder: ") + e.what());
            }
        }
        for (auto &w : workers) w.thread = std::thread([this, &w] { udp_loop(w); });
        tcp_thread = std::thread([this] { tcp_loop(); });
        std::string list;
        for (const auto &a : bound) list += (list.empty() ? "" : ", ") + a.to_string();
        std::string upstreams;
        for (const auto &a : options.upstream) upstreams += " " + a.to_string();
        log::info("resolver listening on " + list + " (UDP and TCP), udp workers " +
                  std::to_string(options.workers) + ", upstream" +
                  (upstreams.empty() ? " none (REFUSED)" : upstreams));
    }

    void stop() {
        if (stopping.exchange(true)) return;
        // The forwarder goes first: its callbacks use the sockets and the mailbox below.
        if (forwarder) forwarder->stop();
        if (stop_event) {
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t n = ::write(stop_event.get(), &one, sizeof(one));
        }
        for (auto &w : workers)
            if (w.thread.joinable()) w.thread.join();
        if (tcp_thread.joinable()) tcp_thread.join();
    }

    static bool add_epoll(int ep, int fd, uint32_t events, uint64_t key) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = key;
        return ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    void on_query(const Reply &r) {
        if (r.has_addresses && options.on_query) options.on_query(r.qname, r.qtype);
    }

    // ---- UDP ----

    void udp_loop(Worker &w) {
        sock::Fd ep(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep) {
            log::error("resolver: epoll_create1: " + sock::error_text(errno));
            return;
        }
        add_epoll(ep.get(), stop_event.get(), EPOLLIN, kStopKey);
        for (size_t i = 0; i < w.sockets.size(); ++i)
            add_epoll(ep.get(), w.sockets[i].fd.get(), EPOLLIN, i);

        struct Batch {
            std::vector<uint8_t> data = std::vector<uint8_t>(kBatch * kRecvBuffer);
            mmsghdr msgs[kBatch];
            iovec iov[kBatch];
            sockaddr_storage peers[kBatch];
            alignas(cmsghdr) char control[kBatch][kControlSize];
            // Replies waiting for sendmmsg.
            std::vector<uint8_t> replies[kBatch];
            Origin origins[kBatch];
            mmsghdr out[kBatch];
            iovec out_iov[kBatch];
            alignas(cmsghdr) char out_control[kBatch][kControlSize];
        };
        auto batch = std::make_unique<Batch>();

        epoll_event events[8];
        while (!stopping.load(std::memory_order_acquire)) {
            const int n = ::epoll_wait(ep.get(), events, 8, -1);
            if (stopping.load(std::memory_order_acquire)) break;
            for (int e = 0; e < std::max(n, 0); ++e) {
                if (events[e].data.u64 == kStopKey) continue;
                UdpSocket &s = w.sockets[events[e].data.u64];
                for (int round = 0; round < kRecvRounds; ++round) {
                    const size_t got = udp_receive(s, *batch);
                    if (got < kBatch) break;
                }
            }
        }
    }

    // One recvmmsg and the replies to it; returns how many datagrams were read.
    template <class Batch>
    size_t udp_receive(UdpSocket &s, Batch &b) {
        for (size_t i = 0; i < kBatch; ++i) {
            b.iov[i] = {b.data.data() + i * kRecvBuffer, kRecvBuffer};
            msghdr &h = b.msgs[i].msg_hdr;
            h = {};
            h.msg_name = &b.peers[i];
            h.msg_namelen = sizeof(b.peers[i]);
            h.msg_iov = &b.iov[i];
            h.msg_iovlen = 1;
            if (s.wildcard) {
                h.msg_control = b.control[i];
                h.msg_controllen = kControlSize;
            }
            b.msgs[i].msg_len = 0;
        }
        const int got = ::recvmmsg(s.fd.get(), b.msgs, kBatch, MSG_DONTWAIT, nullptr);
        if (got <= 0) return 0;

        size_t n_out = 0;
        for (int i = 0; i < got; ++i) {
            msghdr &h = b.msgs[i].msg_hdr;
            counters.count_query(Transport::Udp);
            if (h.msg_flags & MSG_TRUNC) {
                ResolverCounters::bump(counters.dropped);
                continue;
            }
            Origin origin;
            std::memcpy(&origin.peer.storage, &b.peers[i], h.msg_namelen);
            origin.peer.len = h.msg_namelen;
            if (s.wildcard) read_pktinfo(h, origin);

            const std::span<const uint8_t> query(b.data.data() + size_t(i) * kRecvBuffer,
                                                 b.msgs[i].msg_len);
            Reply r = respond(engine, query, Transport::Udp, respond_options);
            switch (r.action) {
                case Reply::Action::Drop:
                    ResolverCounters::bump(counters.dropped);
                    break;
                case Reply::Action::Forward:
                    forward_udp(s, origin, query, r.udp_limit);
                    break;
                case Reply::Action::Reply:
                    counters.count_reply(Transport::Udp, r.rcode);
                    if (r.truncated) ResolverCounters::bump(counters.truncated);
                    on_query(r);
                    b.replies[n_out] = std::move(r.bytes);
                    b.origins[n_out] = origin;
                    ++n_out;
                    break;
            }
        }
        for (size_t i = 0; i < n_out; ++i) {
            b.out_iov[i] = {b.replies[i].data(), b.replies[i].size()};
            msghdr &h = b.out[i].msg_hdr;
            h = {};
            h.msg_name = b.origins[i].peer.get();
            h.msg_namelen = b.origins[i].peer.len;
            h.msg_iov = &b.out_iov[i];
            h.msg_iovlen = 1;
            write_pktinfo(b.origins[i], h, b.out_control[i]);
        }
        size_t sent = 0;
        while (sent < n_out) {
            const int r = ::sendmmsg(s.fd.get(), b.out + sent, static_cast<unsigned>(n_out - sent),
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r > 0) {
                sent += static_cast<size_t>(r);
            } else if (r < 0 && errno == EINTR) {
                continue;
            } else {
                ++sent;  // this datagram cannot go (buffer full, peer unreachable): skip it
            }
        }
        return static_cast<size_t>(got);
    }

    void forward_udp(UdpSocket &s, const Origin &origin, std::span<const uint8_t> query,
                     size_t client_limit) {
        ResolverCounters::bump(counters.forwarded);
        const int fd = s.fd.get();
        forwarder->submit({query.begin(), query.end()}, client_limit,
                          [this, fd, origin](std::vector<uint8_t> reply) {
                              counters.count_reply(Transport::Udp, rcode_of(reply));
                              send_one(fd, origin, reply);
                          });
    }

    // ---- TCP ----

    void tcp_loop() {
        sock::Fd ep(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep) {
            log::error("resolver: epoll_create1: " + sock::error_text(errno));
            return;
        }
        add_epoll(ep.get(), stop_event.get(), EPOLLIN, kStopKey);
        add_epoll(ep.get(), mailbox_event.get(), EPOLLIN, kMailboxKey);
        for (size_t i = 0; i < tcp_listeners.size(); ++i)
            add_epoll(ep.get(), tcp_listeners[i].get(), EPOLLIN, i);

        std::unordered_map<uint64_t, TcpConn> conns;
        uint64_t next_key = kFirstConnKey;
        auto last_sweep = Clock::now();
        epoll_event events[kTcpMaxEvents];

        auto close_conn = [&](uint64_t key) { conns.erase(key); };  // close() leaves epoll

        // Registers the events a connection needs now; closes it when it is done.
        auto update = [&](uint64_t key, TcpConn &c) {
            const bool has_output = c.out_done < c.out.size();
            if (c.read_closed && c.pending == 0 && !has_output) return close_conn(key);
            uint32_t want = 0;
            if (!c.read_closed && c.out.size() - c.out_done < kTcpMaxOutput) want |= EPOLLIN;
            if (has_output) want |= EPOLLOUT;
            if (want == c.events) return;
            epoll_event ev{};
            ev.events = want;
            ev.data.u64 = key;
            if (::epoll_ctl(ep.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) return close_conn(key);
            c.events = want;
        };

        auto flush = [&](TcpConn &c) {
            while (c.out_done < c.out.size()) {
                const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_done,
                                         c.out.size() - c.out_done, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                    return false;
                }
                c.out_done += static_cast<size_t>(n);
                c.last_activity = Clock::now();
            }
            if (c.out_done == c.out.size()) {
                c.out.clear();
                c.out_done = 0;
            }
            return true;
        };

        auto queue_reply = [](TcpConn &c, const std::vector<uint8_t> &bytes) {
            const size_t at = c.out.size();
            c.out.resize(at + 2 + bytes.size());
            dns::write16(c.out.data() + at, static_cast<uint16_t>(bytes.size()));
            std::copy(bytes.begin(), bytes.end(),
                      c.out.begin() + static_cast<std::ptrdiff_t>(at + 2));
        };

        // Answers every whole length-prefixed message in the input buffer.
        auto handle_input = [&](uint64_t key, TcpConn &c) {
            size_t pos = 0;
            while (c.in.size() - pos >= 2) {
                const size_t len = dns::read16(c.in.data() + pos);
                if (len == 0) return false;  // not a DNS message: the stream is lost
                if (c.in.size() - pos < 2 + len) break;
                const std::span<const uint8_t> query(c.in.data() + pos + 2, len);
                pos += 2 + len;
                counters.count_query(Transport::Tcp);
                Reply r = respond(engine, query, Transport::Tcp, respond_options);
                switch (r.action) {
                    case Reply::Action::Drop:
                        ResolverCounters::bump(counters.dropped);
                        break;
                    case Reply::Action::Forward:
                        ResolverCounters::bump(counters.forwarded);
                        ++c.pending;
                        forwarder->submit({query.begin(), query.end()}, 0,
                                          [this, key](std::vector<uint8_t> reply) {
                                              {
                                                  std::lock_guard lock(mailbox_mutex);
                                                  mailbox.emplace_back(key, std::move(reply));
                                              }
                                              const uint64_t one = 1;
                                              [[maybe_unused]] ssize_t n =
                                                  ::write(mailbox_event.get(), &one, sizeof(one));
                                          });
                        break;
                    case Reply::Action::Reply:
                        counters.count_reply(Transport::Tcp, r.rcode);
                        if (r.truncated) ResolverCounters::bump(counters.truncated);
                        on_query(r);
                        queue_reply(c, r.bytes);
                        break;
                }
            }
            c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(pos));
            return true;
        };

        auto on_readable = [&](uint64_t key, TcpConn &c) {
            uint8_t buf[kTcpReadChunk];
            for (;;) {
                const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    return false;
                }
                if (n == 0) {
                    c.read_closed = true;
                    break;
                }
                c.last_activity = Clock::now();
                c.in.insert(c.in.end(), buf, buf + n);
                if (!handle_input(key, c)) return false;
                if (c.out.size() - c.out_done >= kTcpMaxOutput) break;
            }
            return true;
        };

        auto accept_all = [&](int listener) {
            for (;;) {
                sock::Fd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
                if (!fd) return;  // EAGAIN, or a transient error such as EMFILE
                if (conns.size() >= options.tcp_max_connections) {
                    ResolverCounters::bump(counters.tcp_refused);
                    continue;  // closed by Fd
                }
                const uint64_t key = next_key++;
                if (!add_epoll(ep.get(), fd.get(), EPOLLIN, key)) continue;
                TcpConn &c = conns[key];
                c.fd = std::move(fd);
                c.events = EPOLLIN;
                c.last_activity = Clock::now();
            }
        };

        auto take_mailbox = [&] {
            uint64_t count;
            [[maybe_unused]] ssize_t r = ::read(mailbox_event.get(), &count, sizeof(count));
            std::vector<std::pair<uint64_t, std::vector<uint8_t>>> items;
            {
                std::lock_guard lock(mailbox_mutex);
                items.swap(mailbox);
            }
            for (auto &[key, reply] : items) {
                auto it = conns.find(key);
                if (it == conns.end()) continue;  // the client went away
                TcpConn &c = it->second;
                --c.pending;
                counters.count_reply(Transport::Tcp, rcode_of(reply));
                queue_reply(c, reply);
                if (!flush(c)) {
                    close_conn(key);
                    continue;
                }
                update(key, c);
            }
        };

        while (!stopping.load(std::memory_order_acquire)) {
            const int n =
                ::epoll_wait(ep.get(), events, kTcpMaxEvents, static_cast<int>(kTcpSweep.count()));
            if (stopping.load(std::memory_order_acquire)) break;
            for (int e = 0; e < std::max(n, 0); ++e) {
                const uint64_t key = events[e].data.u64;
                if (key == kStopKey) continue;
                if (key == kMailboxKey) {
                    take_mailbox();
                    continue;
                }
                if (key < kFirstConnKey) {
                    accept_all(tcp_listeners[key].get());
                    continue;
                }
                auto it = conns.find(key);
                if (it == conns.end()) continue;
                TcpConn &c = it->second;
                const uint32_t ev = events[e].events;
                // HUP: the peer closed both ways, nothing more can reach it. It is reported
                // whatever we ask for, so waiting for forwarded answers would spin.
                bool ok = !(ev & (EPOLLHUP | EPOLLERR));
                if (ok && (ev & EPOLLIN)) ok = on_readable(key, c);
                if (ok) ok = flush(c);
                if (!ok) {
                    close_conn(key);
                    continue;
                }
                update(key, c);
            }

            const auto now = Clock::now();
            if (now - last_sweep >= kTcpSweep) {
                last_sweep = now;
                for (auto it = conns.begin(); it != conns.end();) {
                    // Idle clients are closed (RFC 7766 §6.2.3), unless an upstream answer
                    // is still on its way to them.
                    if (it->second.pending == 0 &&
                        now - it->second.last_activity > options.tcp_idle_timeout) {
                        it = conns.erase(it);
                    } else {
                        ++it;
                    }
                }
            }
        }
    }
};

Resolver::Resolver(const Engine &engine, ResolverOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {
    try {
        impl_->start();
    } catch (...) {
        impl_->stop();
        throw;
    }
}

Resolver::~Resolver() {
    stop();
}

void Resolver::stop() {
    impl_->stop();
}

const std::vector<SocketAddr> &Resolver::addresses() const {
    return impl_->bound;
}

const ResolverCounters &Resolver::counters() const {
    return impl_->counters;
}

}  // namespace fabdns
