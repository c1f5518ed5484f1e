// The metrics HTTP server on libmicrohttpd. The listening socket is bound here, not by
// libmicrohttpd, so that a taken port gives a clear error naming the address.
#include "metrics/server.hpp"

#include <fcntl.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common/fd.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"

namespace fabdns::metrics {

namespace {

constexpr unsigned kConnectionLimit = 64;       // scrapers and probes are few
constexpr unsigned kConnectionTimeoutSec = 10;  // a stalled client cannot hold a slot forever
constexpr int kListenBacklog = 64;

constexpr const char *kTextPlain = "text/plain; charset=utf-8";
constexpr const char *kExposition = "text/plain; version=0.0.4; charset=utf-8";

void mhd_log(void *, const char *fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    std::string line = buf;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    log::warn("metrics server: " + line);
}

[[noreturn]] void fail(const SocketAddr &addr, const char *what, int err) {
    throw ServerError("metrics server: cannot " + std::string(what) + " " + addr.to_string() +
                      ": " + std::strerror(err));
}

// Binds and listens on addr; returns the socket and fills in the bound address.
int open_listener(const SocketAddr &addr, SocketAddr &bound) {
    sock::SockAddr sa = sock::to_sockaddr(addr);
    Fd fd(::socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) fail(addr, "create a socket for", errno);
    // Lets a restarted daemon bind while old connections sit in TIME_WAIT; on Linux it does not
    // let two listeners share the port, so a taken port still fails below.
    sock::set_int_option(fd.fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (::bind(fd.fd, sa.get(), sa.len) != 0 || ::listen(fd.fd, kListenBacklog) != 0)
        fail(addr, "listen on", errno);
    bound = addr;
    sock::SockAddr got;
    got.len = sizeof(got.storage);
    if (::getsockname(fd.fd, got.get(), &got.len) == 0) bound.port = sock::from_sockaddr(got).port;
    return fd.release();
}

MHD_Result respond(MHD_Connection *conn, unsigned status, const std::string &body,
                   const char *content_type, const char *allow = nullptr) {
    MHD_Response *r = MHD_create_response_from_buffer(body.size(), const_cast<char *>(body.data()),
                                                      MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

MHD_Result collect_arg(void *cls, MHD_ValueKind, const char *key, const char *value) {
    auto *args = static_cast<std::map<std::string, std::string> *>(cls);
    if (key) (*args)[key] = value ? value : "";
    return MHD_YES;
}

}  // namespace

struct Server::Impl {
    const Registry &registry;
    ReadyCheck ready;
    std::map<std::string, Page> pages;
    SocketAddr bound;
    MHD_Daemon *daemon = nullptr;

    Impl(const Registry &r, ReadyCheck c, std::map<std::string, Page> p)
        : registry(r), ready(std::move(c)), pages(std::move(p)) {}

    MHD_Result handle(MHD_Connection *conn, const std::string &url, const std::string &method) {
        if (method != MHD_HTTP_METHOD_GET && method != MHD_HTTP_METHOD_HEAD)
            return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", kTextPlain,
                           "GET, HEAD");
        if (url == "/metrics") return respond(conn, MHD_HTTP_OK, registry.scrape(), kExposition);
        if (url == "/healthz") return respond(conn, MHD_HTTP_OK, "OK", kTextPlain);
        if (url == "/readyz") {
            Readiness r = ready ? ready() : Readiness{};
            if (r.ready) return respond(conn, MHD_HTTP_OK, "OK", kTextPlain);
            std::string reason = r.reason.empty() ? "not ready" : r.reason;
            return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, reason + "\n", kTextPlain);
        }
        if (auto it = pages.find(url); it != pages.end()) {
            std::map<std::string, std::string> args;
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, &collect_arg, &args);
            const PageReply r = it->second(args);
            return respond(conn, r.status, r.body, r.content_type.c_str());
        }
        return respond(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n", kTextPlain);
    }

    static MHD_Result access(void *cls, MHD_Connection *conn, const char *url, const char *method,
                             const char *, const char *, size_t *upload_data_size, void **con_cls) {
        // First call per request: headers only. Answer on a later call, after any request body
        // has been read and discarded, so that a POST gets its 405 on a clean connection.
        static int marker;
        if (*con_cls == nullptr) {
            *con_cls = &marker;
            return MHD_YES;
        }
        if (*upload_data_size != 0) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        try {
            return static_cast<Impl *>(cls)->handle(conn, url ? url : "", method ? method : "");
        } catch (const std::exception &e) {
            log::warn(std::string("metrics server: request failed: ") + e.what());
        } catch (...) {
            log::warn("metrics server: request failed");
        }
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", kTextPlain);
    }
};

Server::Server(const SocketAddr &listen, const Registry &registry, ReadyCheck ready,
               std::map<std::string, Page> pages)
    : impl_(std::make_unique<Impl>(registry, std::move(ready), std::move(pages))) {
    int fd = open_listener(listen, impl_->bound);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (listen.ip.is_v6()) flags |= MHD_USE_IPv6;
    impl_->daemon =
        MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::access, impl_.get(),
                         MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, nullptr, MHD_OPTION_LISTEN_SOCKET,
                         static_cast<MHD_socket>(fd), MHD_OPTION_CONNECTION_LIMIT, kConnectionLimit,
                         MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutSec, MHD_OPTION_END);
    if (!impl_->daemon) {
        // Whether libmicrohttpd closed a socket it was given depends on where it failed; close
        // it here only if it is still open. This is the startup path, so no other thread is
        // expected to have reused the number in between.
        if (::fcntl(fd, F_GETFD) != -1) ::close(fd);
        throw ServerError("metrics server: cannot start on " + listen.to_string());
    }
    log::info("metrics server listening on " + impl_->bound.to_string());
}

Server::~Server() {
    // MHD_stop_daemon joins the internal thread and closes the listening socket it was given.
    if (impl_ && impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

const SocketAddr &Server::address() const {
    return impl_->bound;
}

}  // namespace fabdns::metrics
