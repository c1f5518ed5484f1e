// Loads the daemon's GlobalServices once, from the file source or the hub snapshot.
#include "ctl/services.hpp"

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "source/file_source.hpp"
#include "source/hub_source.hpp"
#include "source/snapshot.hpp"

namespace fabdns::ctl {

namespace {

LoadedServices from_file(const std::string &path, std::chrono::milliseconds timeout) {
    // The daemon's FileSource reads the file or directory on its own thread at start and either
    // delivers a complete set or records a failure; wait for whichever comes first.
    std::mutex mu;
    std::condition_variable cv;
    bool delivered = false;
    LoadedServices out;
    out.origin = "file " + path;
    FileSource src(FileOptions{path});
    src.start([&](ServiceSet services) {
        std::lock_guard lock(mu);
        out.services = copy_services(*services);
        delivered = true;
        cv.notify_all();
    });
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu);
    while (!delivered) {
        SourceStatus st = src.status();
        if (st.consecutive_failures > 0) {
            lock.unlock();
            src.stop();
            throw std::runtime_error("cannot load services from " + out.origin + ": " +
                                     st.last_error);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            lock.unlock();
            src.stop();
            throw std::runtime_error("timed out loading services from " + out.origin);
        }
        cv.wait_for(lock, std::chrono::milliseconds(10));
    }
    lock.unlock();
    src.stop();
    out.rejected = src.status().rejected;
    return out;
}

LoadedServices from_snapshot(const std::string &path) {
    LoadedServices out;
    out.origin = "hub snapshot " + path;
    if (path.empty())
        throw std::runtime_error(
            "source.hub.snapshot is empty: explain needs the hub's last-known-good snapshot");
    std::string why;
    auto body = source_detail::read_whole_file(path, why);
    if (!body) {
        if (why.empty())
            throw std::runtime_error("no hub snapshot at " + path +
                                     " yet (fabdnsd writes it after its first good sync)");
        throw std::runtime_error("cannot read hub snapshot: " + why);
    }
    // The daemon's own rules for a hub answer, with nothing held yet.
    auto d = source_detail::decide_hub_answer(*body, {}, false, DecodeLimits{}, out.origin);
    if (!d.refusal.empty())
        throw std::runtime_error("hub snapshot " + path + " is not usable: " + d.refusal);
    out.services = copy_services(d.next.services);
    out.rejected = d.decoded.rejected_count();
    return out;
}

}  // namespace

LoadedServices load_services(const Config::Source &source, std::chrono::milliseconds timeout) {
    switch (source.kind) {
        case SourceKind::File:
            if (source.file.path.empty()) throw std::runtime_error("source.file.path is empty");
            return from_file(source.file.path, timeout);
        case SourceKind::Hub:
            return from_snapshot(source.hub.snapshot);
        case SourceKind::Kubernetes:
            break;
    }
    throw std::runtime_error(
        "explain needs a file source or a hub snapshot; this config uses source.kind "
        "kubernetes (point a copy of the config at a manifest file to explain)");
}

}  // namespace fabdns::ctl
