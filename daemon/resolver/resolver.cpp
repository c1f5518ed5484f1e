// The user-space resolver's I/O: per-worker SO_REUSEPORT UDP sockets served with
// recvmmsg/sendmmsg, one epoll thread for RFC 7766 TCP, and the forwarder for everything
// outside the zones. Answers themselves come from respond().
#include "resolver/resolver.hpp"

#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "common/fd.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "dns_wire.h"
#include "resolver/forwarder.hpp"
#include "resolver/respond.hpp"
#include "resolver/tcp.hpp"

namespace fabdns {
namespace {

constexpr size_t kBatch = 32;           // datagrams per recvmmsg/sendmmsg
constexpr size_t kRecvBuffer = 4096;    // larger UDP queries are dropped as garbage
constexpr int kRecvRounds = 8;          // recvmmsg calls per wakeup before checking for stop
constexpr int kSocketBuffer = 1 << 20;  // SO_RCVBUF/SO_SNDBUF asked for; the kernel may cap it
constexpr int kListenBacklog = 1024;
constexpr int kPortAttempts = 10;  // retries when port 0 gives a port TCP cannot have
constexpr uint64_t kStopKey = UINT64_MAX;

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

struct UdpSocket {
    Fd fd;
    bool wildcard = false;
};

struct Worker {
    std::vector<UdpSocket> sockets;  // one per listen address
    std::thread thread;
};

}  // namespace

struct Resolver::Impl {
    const Engine &engine;
    ResolverOptions options;
    ResolverCounters counters;
    RespondOptions respond_options;
    std::vector<SocketAddr> bound;
    std::vector<Worker> workers;
    std::vector<Fd> tcp_listeners;
    std::unique_ptr<Forwarder> forwarder;
    Fd stop_event;  // never drained once written: every loop sees it readable
    std::atomic<bool> stopping{false};
    std::unique_ptr<TcpServer> tcp;
    std::thread tcp_thread;

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

    static Fd open_socket(const SocketAddr &addr, int type, const char *what) {
        const int family = addr.ip.is_v4() ? AF_INET : AF_INET6;
        Fd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            throw ResolverError("cannot listen on " + addr.to_string() + " (" + what +
                                "): " + sock::error_text(errno));
        }
        // Separate IPv6 sockets, so that 0.0.0.0 and :: can both be listed.
        if (family == AF_INET6) sock::set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
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
                    sock::set_int_option(s.fd.fd, SOL_SOCKET, SO_REUSEPORT, 1);
                    sock::set_int_option(s.fd.fd, SOL_SOCKET, SO_RCVBUF, kSocketBuffer);
                    sock::set_int_option(s.fd.fd, SOL_SOCKET, SO_SNDBUF, kSocketBuffer);
                    if (wildcard) {
                        if (addr.ip.is_v4())
                            sock::set_int_option(s.fd.fd, IPPROTO_IP, IP_PKTINFO, 1);
                        else
                            sock::set_int_option(s.fd.fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
                    }
                    bind_or_throw(s.fd.fd, addr, "UDP");
                    if (addr.port == 0) addr.port = local_port(s.fd.fd);
                    udp.push_back(std::move(s));
                }
                Fd tcp = open_socket(addr, SOCK_STREAM, "TCP");
                sock::set_int_option(tcp.fd, SOL_SOCKET, SO_REUSEADDR, 1);
                bind_or_throw(tcp.fd, addr, "TCP");
                if (::listen(tcp.fd, kListenBacklog) != 0) {
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

    // Each TCP client holds a descriptor: take every one the hard limit allows, so that the
    // connection cap, not EMFILE, is what bounds them.
    static void raise_nofile_limit() {
        rlimit limit{};
        if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
        const rlim_t was = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
            log::info("resolver: open file limit raised from " + std::to_string(was) + " to " +
                      std::to_string(limit.rlim_cur));
        }
    }

    void start() {
        if (options.listen.empty()) throw ResolverError("no listen address");
        raise_nofile_limit();
        stop_event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!stop_event) throw ResolverError("cannot create eventfd: " + sock::error_text(errno));
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
        std::vector<int> listener_fds;
        for (const auto &l : tcp_listeners) listener_fds.push_back(l.fd);
        tcp = std::make_unique<TcpServer>(
            engine, respond_options, counters, forwarder.get(),
            [this](const Reply &r) { on_query(r); },
            TcpOptions{options.tcp_idle_timeout, options.tcp_message_timeout,
                       options.tcp_max_connections, options.tcp_max_output},
            std::move(listener_fds), stop_event.fd, stopping);
        tcp_thread = std::thread([this] { tcp->run(); });
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
            [[maybe_unused]] ssize_t n = ::write(stop_event.fd, &one, sizeof(one));
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
        Fd ep(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep) {
            log::error("resolver: epoll_create1: " + sock::error_text(errno));
            return;
        }
        add_epoll(ep.fd, stop_event.fd, EPOLLIN, kStopKey);
        for (size_t i = 0; i < w.sockets.size(); ++i)
            add_epoll(ep.fd, w.sockets[i].fd.fd, EPOLLIN, i);

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
            const int n = ::epoll_wait(ep.fd, events, 8, -1);
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
        const int got = ::recvmmsg(s.fd.fd, b.msgs, kBatch, MSG_DONTWAIT, nullptr);
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
            // Not even an error goes to echo, chargen and the like: a spoofed query from one
            // of them would start a reply loop (CVE-2024-2169).
            if (dns_is_reflection_port(sock::from_sockaddr(origin.peer).port)) {
                ResolverCounters::bump(counters.reflection_dropped);
                continue;
            }
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
            const int r = ::sendmmsg(s.fd.fd, b.out + sent, static_cast<unsigned>(n_out - sent),
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
        const int fd = s.fd.fd;
        forwarder->submit({query.begin(), query.end()}, client_limit,
                          [this, fd, origin](std::vector<uint8_t> reply) {
                              counters.count_reply(Transport::Udp, dns::rcode_of(reply));
                              send_one(fd, origin, reply);
                          });
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
