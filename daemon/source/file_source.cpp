// FileSource: inotify on the manifests' directory, debounced reloads gated by a stat signature,
// all-or-nothing parsing of the file set.
#include "source/file_source.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "common/log.hpp"
#include "model/document.hpp"
#include "source/health.hpp"
#include "source/objects.hpp"
#include "source/snapshot.hpp"

namespace fabdns {

using namespace source_detail;
using Clock = std::chrono::steady_clock;

namespace {

bool has_manifest_extension(const std::string &name) {
    auto ends_with = [&](const char *ext) {
        size_t n = std::strlen(ext);
        return name.size() > n && name.compare(name.size() - n, n, ext) == 0;
    };
    return ends_with(".yaml") || ends_with(".yml") || ends_with(".json");
}

std::string stat_signature(const std::string &path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return "!" + std::to_string(errno);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
           std::to_string(st.st_ctim.tv_nsec);
}

// The manifest files of a directory, sorted, hidden ones left out. nullopt when it is unreadable.
std::optional<std::vector<std::string>> list_manifests(const std::string &dir, std::string &why) {
    DIR *d = opendir(dir.c_str());
    if (d == nullptr) {
        why = "cannot read directory " + dir + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::vector<std::string> names;
    while (dirent *e = readdir(d)) {
        std::string name = e->d_name;
        if (name.empty() || name[0] == '.' || !has_manifest_extension(name)) continue;
        struct stat st {};
        std::string full = dir + "/" + name;
        if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(name);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

namespace source_detail {

bool decode_manifest_file(const std::string &name, const std::string &text, DecodeResult &out,
                          std::string &why) {
    bool json = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
    DocumentResult doc =
        json ? decode_json_document(text, Container::Manifest) : decode_yaml_documents(text);
    if (!doc.error.empty()) {
        why = doc.error;
        return false;
    }
    out = std::move(doc);
    return true;
}

}  // namespace source_detail

struct FileSource::State {
    explicit State(FileOptions o) : options(std::move(o)), health("file", "file " + options.path) {}

    FileOptions options;
    Health health;
    Update on_update;
    int stop_fd = -1;
    int inotify_fd = -1;
    std::map<int, std::string> watches;         // wd -> directory
    std::optional<std::string> last_signature;  // of the last load attempt
    // The content of the set currently held, by hash and size: unchanged files are not
    // delivered again.
    size_t accepted_hash = 0, accepted_size = 0;
    // The set delivered last, sorted by namespace/name; the engine answers from the same one.
    ServiceSet held = std::make_shared<const ServiceList>();
    bool holding = false;

    bool is_directory() const {
        struct stat st {};
        return stat(options.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }

    // What the path currently looks like on disk: changes whenever a reload could matter.
    std::string signature() const {
        if (!is_directory()) return "f " + stat_signature(options.path);
        std::string why;
        auto names = list_manifests(options.path, why);
        if (!names) return "d !" + why;
        std::string sig = "d";
        for (const auto &n : *names) sig += "\n" + n + " " + stat_signature(options.path + "/" + n);
        return sig;
    }

    // The directories whose changes can change the set: the path's own directory (or the path
    // when it is one) and, when the path is a symlink, the directory of its target.
    std::vector<std::string> wanted_watches() const {
        namespace fs = std::filesystem;
        std::vector<std::string> dirs;
        auto add = [&](const fs::path &p) {
            std::string s = p.empty() ? "." : p.string();
            if (std::find(dirs.begin(), dirs.end(), s) == dirs.end()) dirs.push_back(s);
        };
        fs::path p(options.path);
        bool dir = is_directory();
        add(dir ? p : p.parent_path());
        std::error_code ec;
        fs::path real = fs::canonical(p, ec);
        if (!ec) add(dir ? real : real.parent_path());
        return dirs;
    }

    void refresh_watches() {
        auto wanted = wanted_watches();
        for (auto it = watches.begin(); it != watches.end();) {
            if (std::find(wanted.begin(), wanted.end(), it->second) == wanted.end()) {
                inotify_rm_watch(inotify_fd, it->first);
                it = watches.erase(it);
            } else {
                ++it;
            }
        }
        constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                   IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR;
        for (const auto &dir : wanted) {
            bool have = std::any_of(watches.begin(), watches.end(),
                                    [&](const auto &w) { return w.second == dir; });
            if (have) continue;
            int wd = inotify_add_watch(inotify_fd, dir.c_str(), kMask);
            if (wd >= 0) watches[wd] = dir;  // a missing directory is retried at the next rescan
        }
    }

    // Reads and decodes every manifest into `result`; `hash` and `size` identify the content
    // (to spot unchanged reloads). False, with a category and a reason naming the file, when a
    // file is missing or unreadable or has a syntax error: then nothing of this attempt may be
    // used.
    bool read_all(DecodeResult &result, size_t &hash, size_t &size, std::string &category,
                  std::string &why) const {
        std::vector<std::string> files;
        if (is_directory()) {
            auto names = list_manifests(options.path, why);
            if (!names) {
                category = "read";
                return false;
            }
            for (const auto &n : *names) files.push_back(options.path + "/" + n);
        } else {
            files.push_back(options.path);
        }
        for (const auto &file : files) {
            std::string read_why;
            auto text = read_whole_file(file, read_why);
            if (!text) {
                category = read_why.empty() ? "missing" : "read";
                why = read_why.empty() ? file + " does not exist" : read_why;
                return false;
            }
            // Each file's name and bytes feed the content hash (boost::hash_combine's mixing).
            for (std::string_view part : {std::string_view(file), std::string_view(*text)}) {
                hash ^= std::hash<std::string_view>{}(part) + 0x9e3779b97f4a7c15ULL + (hash << 6) +
                        (hash >> 2);
                size += part.size() + 1;
            }
            std::string name = std::filesystem::path(file).filename().string();
            DecodeResult one;
            if (!decode_manifest_file(name, *text, one, why)) {
                category = "parse";
                why = file + ": " + why;
                return false;
            }
            text.reset();  // the bytes are no longer needed
            for (auto &svc : one.services) result.services.push_back(std::move(svc));
            for (auto &r : one.rejected)
                result.reject({name + ": " + r.object, std::move(r.reason), std::move(r.key)});
            result.unlisted_rejections += one.unlisted_rejections;
            result.skipped += one.skipped;
        }
        return true;
    }

    void reload() {
        std::string sig = signature();
        if (sig == last_signature) return;  // nothing on disk changed since the last attempt
        last_signature = sig;

        DecodeResult result;
        size_t hash = 0, size = 0;
        std::string category, why;
        if (!read_all(result, hash, size, category, why)) {
            health.failed(category, why);
            return;
        }
        if (holding && hash == accepted_hash && size == accepted_size) {
            health.succeeded();
            return;
        }
        NextSet next = build_set(result, *held, health.label());
        log_rejections(result, health.label());
        health.succeeded();
        size_t rejected = result.rejected_count();
        log::info(
            health.label() + ": loaded " + std::to_string(next.services.size()) + " services" +
            (rejected == 0 ? ""
                           : ", rejected " + std::to_string(rejected) + " (" +
                                 std::to_string(next.kept) + " kept in their last good version)"));
        accepted_hash = hash;
        accepted_size = size;
        holding = true;
        held = std::make_shared<const ServiceList>(std::move(next.services));
        health.delivered(held->size(), rejected);
        if (on_update) on_update(held);
    }

    // Drains inotify; returns true when something happened in a watched directory. `complete`
    // tells whether the last event finished a write (a file closed after writing, or renamed
    // into place).
    bool drain_events(bool &complete) {
        alignas(inotify_event) char buf[16 * 1024];
        bool any = false;
        for (;;) {
            ssize_t n = read(inotify_fd, buf, sizeof(buf));
            if (n <= 0) break;  // EAGAIN: drained
            for (char *p = buf; p < buf + n;) {
                auto *ev = reinterpret_cast<inotify_event *>(p);
                if (ev->mask & IN_IGNORED) watches.erase(ev->wd);      // the directory went away
                if (ev->mask & IN_Q_OVERFLOW) last_signature.reset();  // events lost: look again
                any = true;
                complete = (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
                p += sizeof(inotify_event) + ev->len;
            }
        }
        return any;
    }
};

FileSource::FileSource(FileOptions options) {
    if (options.path.empty()) throw std::invalid_argument("source.file.path is empty");
    state_ = std::make_unique<State>(std::move(options));
}

FileSource::~FileSource() {
    stop();
    if (state_->stop_fd >= 0) close(state_->stop_fd);
    if (state_->inotify_fd >= 0) close(state_->inotify_fd);
}

void FileSource::start(Update on_update) {
    State &s = *state_;
    if (thread_.joinable() || s.stop_fd >= 0) throw std::logic_error("FileSource started twice");
    s.on_update = std::move(on_update);
    s.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s.inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (s.stop_fd < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    if (s.inotify_fd < 0) {
        // Still works through the rescan, only slower.
        log::warn(s.health.label() + ": inotify unavailable (" + std::strerror(errno) +
                  "); checking for changes every " + std::to_string(s.options.rescan.count()) +
                  " ms");
    }
    s.health.pending("not loaded yet");
    thread_ = std::thread([this] { run(); });
}

void FileSource::stop() {
    State &s = *state_;
    if (s.stop_fd >= 0) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(s.stop_fd, &one, sizeof(one));
    }
    if (thread_.joinable()) thread_.join();
}

SourceStatus FileSource::status() const {
    return state_->health.status();
}

void FileSource::run() {
    State &s = *state_;
    if (s.inotify_fd >= 0) s.refresh_watches();
    s.reload();

    const auto debounce = std::max(s.options.debounce, std::chrono::milliseconds(1));
    const auto settle = std::min(s.options.settle, debounce);
    const auto max_delay = debounce * 5;  // a file written continuously still reloads
    const auto rescan = std::max(s.options.rescan, std::chrono::milliseconds(10));
    bool pending = false;
    Clock::time_point first{}, deadline{}, next_rescan = Clock::now() + rescan;

    for (;;) {
        auto now = Clock::now();
        auto until = pending ? std::min(deadline, next_rescan) : next_rescan;
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
        pollfd fds[2] = {{s.stop_fd, POLLIN, 0}, {s.inotify_fd, POLLIN, 0}};
        int nfds = s.inotify_fd >= 0 ? 2 : 1;
        int rc = poll(fds, nfds, static_cast<int>(std::clamp<int64_t>(wait_ms, 0, INT_MAX)));
        if (rc < 0 && errno != EINTR) {
            log::error(s.health.label() + ": poll: " + std::strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) break;
        now = Clock::now();
        bool complete = false;
        if (nfds == 2 && (fds[1].revents & POLLIN) && s.drain_events(complete)) {
            if (!pending) {
                pending = true;
                first = now;
            }
            // A finished write is read almost at once; anything else may be mid-write.
            deadline = std::min(now + (complete ? settle : debounce), first + max_delay);
        }
        if (pending && now >= deadline) {
            pending = false;
            if (s.inotify_fd >= 0) s.refresh_watches();  // a replaced directory needs a new watch
            s.reload();
        }
        if (now >= next_rescan) {
            next_rescan = now + rescan;
            if (s.inotify_fd >= 0) s.refresh_watches();
            s.reload();  // does nothing unless the stat signature changed
        }
    }
}

}  // namespace fabdns
