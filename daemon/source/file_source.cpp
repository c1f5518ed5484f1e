// FileSource: inotify on the manifests' directory, debounced reloads gated by a stat signature,
// only changed files decoded again, all-or-nothing for the file set.
#include "source/file_source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "common/log.hpp"
#include "model/document.hpp"
#include "source/health.hpp"
#include "source/objects.hpp"
#include "source/snapshot.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

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

bool is_json(const std::string &name) {
    return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
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
                          std::string &why, SpanCache *cache) {
    DocumentResult doc = !is_json(name) ? decode_yaml_documents(text)
                         : cache ? decode_json_document(text, Container::Manifest, {}, *cache)
                                 : decode_json_document(text, Container::Manifest);
    if (!doc.error.empty()) {
        why = doc.error;
        return false;
    }
    out = std::move(doc);
    return true;
}

}  // namespace source_detail

namespace {

// What tells one version of a file on disk from another: a rewrite in place changes the size or
// the times, a rename over it (an editor's save, a ConfigMap's "..data" swap, seen through the
// symlink) the inode. A rewrite within one tick of the filesystem's clock, of the same size,
// changes none of them: see FileEntry::racy.
struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileId &) const = default;
};

int64_t to_ns(const timespec &t) {
    return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// Coarser than any filesystem's timestamps (ext4 and tmpfs tick with the kernel's coarse clock,
// some filesystems by the second or two).
constexpr int64_t kRacyNs = 2'000'000'000;

using HashState = std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)>;

HashState new_hash() {
    HashState state(XXH3_createState(), XXH3_freeState);
    if (!state) throw std::bad_alloc();
    XXH3_64bits_reset(state.get());
    return state;
}

// The XXH3 of a file's bytes, read in pieces: a file read again only because its last change
// was too recent for its stat to tell the next one (FileEntry::racy) is checked without holding
// its text (45 MB at 100,000 services) beside the set the engine holds. nullopt when it cannot
// be read.
std::optional<std::pair<uint64_t, size_t>> hash_file(const std::string &path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    HashState state = new_hash();
    size_t bytes = 0;
    bool ok = read_pieces(fd, [&](std::string_view piece) {
        XXH3_64bits_update(state.get(), piece.data(), piece.size());
        bytes += piece.size();
        return true;
    });
    close(fd);
    if (!ok) return std::nullopt;
    return std::pair<uint64_t, size_t>{XXH3_64bits_digest(state.get()), bytes};
}

// Identifies a namespace/name in FileSource::State::key_hashes (a collision only costs a search).
uint64_t key_hash(std::string_view ns, std::string_view name) {
    uint64_t h = std::hash<std::string_view>{}(ns);
    return h ^ (std::hash<std::string_view>{}(name) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

using Key = std::pair<std::string_view, std::string_view>;  // namespace, name

Key key_of(const GlobalService &s) {
    return {s.ns, s.name};
}

// "namespace/name" as a Key (viewing the string).
Key split_key(const std::string &key) {
    size_t slash = key.find('/');
    std::string_view k(key);
    return {k.substr(0, slash), slash == std::string::npos ? "" : k.substr(slash + 1)};
}

// Where `key` is or belongs in a list sorted by key_less.
size_t lower_key(const ServiceList &list, const Key &key) {
    auto it =
        std::lower_bound(list.begin(), list.end(), key, [](const ServicePtr &s, const Key &k) {
            return std::pair<std::string_view, std::string_view>(s->ns, s->name) < k;
        });
    return static_cast<size_t>(it - list.begin());
}

// The position of `key` in a list sorted by key_less, or its size.
size_t find_key(const ServiceList &list, const Key &key) {
    size_t i = lower_key(list, key);
    return i < list.size() && key_of(*list[i]) == key ? i : list.size();
}

// One manifest file as last read: what it decoded to, never its text.
struct FileEntry {
    FileId id;          // as seen before the text was read
    bool racy = false;  // changed too shortly before it was read for `id` to tell the next change
    uint64_t hash = 0;  // XXH3 of the text: a rewrite with the same bytes decodes the same
    size_t bytes = 0;
    std::string error;  // why the file is unreadable as a whole ("" when it decoded)
    // Sorted by key, one per key (the file's last); each one equal to a held service is that
    // service, so memory holds one copy and the engine tells it unchanged by its pointer.
    ServiceList services;
    std::vector<Rejection> rejected;  // objects named "<file>: <object>"
    size_t unlisted_rejections = 0;
    SpanCache cache;  // the next version of the file decodes only its changed objects
    SortMemo sorted;  // and, when only versions changed, sorts nothing either
};

}  // namespace

struct FileSource::State {
    explicit State(FileOptions o) : options(std::move(o)), health("file", "file " + options.path) {}

    FileOptions options;
    Health health;
    Update on_update;
    int stop_fd = -1;
    int inotify_fd = -1;
    std::map<int, std::string> watches;         // wd -> directory
    std::optional<std::string> last_signature;  // of the last load attempt
    // Every manifest file as last read, by path: a change decodes only the files that changed,
    // and the set is built from these. In path order, which is the files' order in the set.
    std::map<std::string, FileEntry> files;
    // What changed in `files` since the last set was built from them: the paths changed,
    // added or removed; the services of those files that changed (the versions before and
    // after; a service kept by pointer is not there), and the rejection keys they held before.
    std::set<std::string> changed_paths;
    ServiceList changed_before, changed_after;
    std::vector<std::string> rejections_before;
    // A hash of the namespace/name of every service of every file, sorted (a multiset): tells
    // for a name which no other file holds without searching the files.
    std::vector<uint64_t> key_hashes;
    std::vector<uint64_t> hashes_out, hashes_in;  // to apply to key_hashes after a reload
    std::atomic<uint64_t> decodes{0}, objects{0};
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

    // Notes that a file's entry goes: what it held is what changed.
    void forget(const std::string &file, const FileEntry &entry) {
        forget_rejections(entry);
        note_changes(file, entry.services, {});
    }

    void forget_rejections(const FileEntry &entry) {
        for (const auto &r : entry.rejected)
            if (!r.key.empty()) rejections_before.push_back(r.key);
    }

    // Notes the services of `file` that changed from `before` to `after` (both sorted by key):
    // one walk, comparing pointers (the SpanCache and unique_services keep an unchanged
    // service's), so that one changed object in a file of 100,000 costs one name to decide.
    void note_changes(const std::string &file, const ServiceList &before,
                      const ServiceList &after) {
        changed_paths.insert(file);
        size_t i = 0, j = 0;
        while (i < before.size() || j < after.size()) {
            if (i < before.size() && j < after.size() && before[i] == after[j]) {
                ++i, ++j;
                continue;
            }
            bool old_first =
                j == after.size() || (i < before.size() && key_less(*before[i], *after[j]));
            bool new_first =
                i == before.size() || (j < after.size() && key_less(*after[j], *before[i]));
            if (old_first) {
                hashes_out.push_back(key_hash(before[i]->ns, before[i]->name));
                changed_before.push_back(before[i++]);
            } else if (new_first) {
                hashes_in.push_back(key_hash(after[j]->ns, after[j]->name));
                changed_after.push_back(after[j++]);
            } else {  // another version of the same name: the name's hash stays
                changed_before.push_back(before[i++]);
                changed_after.push_back(after[j++]);
            }
        }
    }

    void apply_hash_changes() {
        if (hashes_out.empty() && hashes_in.empty()) return;
        std::sort(hashes_out.begin(), hashes_out.end());
        std::sort(hashes_in.begin(), hashes_in.end());
        std::vector<uint64_t> kept, next;
        kept.reserve(key_hashes.size());
        std::set_difference(key_hashes.begin(), key_hashes.end(), hashes_out.begin(),
                            hashes_out.end(), std::back_inserter(kept));
        next.reserve(kept.size() + hashes_in.size());
        std::merge(kept.begin(), kept.end(), hashes_in.begin(), hashes_in.end(),
                   std::back_inserter(next));
        key_hashes = std::move(next);
        hashes_out = std::vector<uint64_t>();
        hashes_in = std::vector<uint64_t>();
    }

    void clear_changes() {
        changed_paths.clear();
        changed_before = ServiceList();
        changed_after = ServiceList();
        rejections_before = std::vector<std::string>();
    }

    // The service the set holds for `key`: the version in the last file (by path) that has
    // one, or nullptr. Searches only the changed files when the key's hash says no other file
    // can hold it. `warn`: log a name found in several files.
    ServicePtr winner(const Key &key, bool warn = true) const {
        uint64_t h = key_hash(key.first, key.second);
        auto [lo, hi] = std::equal_range(key_hashes.begin(), key_hashes.end(), h);
        if (lo == hi) return nullptr;
        ServicePtr found;
        int holders = 0;
        auto search = [&](const FileEntry &entry) {
            size_t i = find_key(entry.services, key);
            if (i == entry.services.size()) return;
            found = entry.services[i];
            ++holders;
        };
        if (hi - lo == 1) {
            for (const auto &path : changed_paths) {
                auto it = files.find(path);
                if (it != files.end()) search(it->second);
            }
            if (found) return found;
        }
        for (const auto &f : files) search(f.second);  // in path order: the last one wins
        if (warn && holders > 1)
            log::warn(health.label() + ": " + std::string(key.first) + "/" +
                      std::string(key.second) + " appears more than once; the last one is used");
        return found;
    }

    bool any_racy() const {
        return std::any_of(files.begin(), files.end(), [](const auto &f) { return f.second.racy; });
    }

    // Decodes one file's text into `entry`.
    void decode_into(const std::string &file, const std::string &text, FileEntry &entry) {
        std::string name = std::filesystem::path(file).filename().string();
        DecodeResult one;
        uint64_t objects_before = entry.cache.objects_decoded();
        std::string error;
        bool ok = decode_manifest_file(name, text, one, error, &entry.cache);
        objects += entry.cache.objects_decoded() - objects_before;
        store(name, ok ? &one : nullptr, error, entry);
    }

    // A file's decoded services (or, when `one` is null, the error that refused it) into
    // `entry`: sorted and de-duplicated (the last of a name wins), each equal held service
    // re-used.
    void store(const std::string &name, DecodeResult *one, std::string error, FileEntry &entry) {
        decodes++;
        entry.error = std::move(error);
        entry.services.clear();
        entry.rejected.clear();
        entry.unlisted_rejections = 0;
        if (!one) return;
        if (one->services.empty()) {
            entry.services =
                unique_services(one->shared, *held, health.label(), " in " + name, &entry.sorted);
        } else {
            entry.sorted.clear();  // decoded whole into values: nothing for the next decode
            entry.services = unique_services(one->services, *held, health.label(), " in " + name);
        }
        for (auto &r : one->rejected) r.object = name + ": " + r.object;
        log_rejections(*one, health.label());
        entry.rejected = std::move(one->rejected);
        entry.unlisted_rejections = one->unlisted_rejections;
    }

    // A file's text as it is now, hashed, with the services it holds in `decoded` when it is a
    // JSON array or List and its bytes differ from `entry`'s: read in pieces, each decoded
    // through the entry's cache as it comes (a List of 100,000 is never held whole, and each
    // piece is scanned while it is in the CPU's cache). `text` holds the text only when it
    // must be decoded whole (YAML, a single object, an error to report with its position).
    struct Read {
        uint64_t hash = 0;
        size_t bytes = 0;
        std::optional<DocumentResult> decoded;
        std::string text;
    };
    bool read_file(const std::string &file, const FileEntry *entry, SpanCache &cache, Read &out,
                   std::string &why) {
        if (!is_json(file)) {
            auto text = read_whole_file(file, why);
            if (!text) return false;
            out.hash = XXH3_64bits(text->data(), text->size());
            out.bytes = text->size();
            out.text = std::move(*text);
            return true;
        }
        int fd = open_regular_file(file, why);
        if (fd < 0) return false;
        HashState state = new_hash();
        DocumentStream stream(Container::Manifest, {}, cache);
        bool ok = read_pieces(fd, [&](std::string_view piece) {
            XXH3_64bits_update(state.get(), piece.data(), piece.size());
            out.bytes += piece.size();
            if (!stream.irregular()) stream.feed(piece);
            return true;
        });
        out.hash = XXH3_64bits_digest(state.get());
        if (ok && entry && entry->hash == out.hash && entry->bytes == out.bytes) {
            close(fd);  // the same bytes: the stream is dropped, the cache stays as it was
            return true;
        }
        if (ok) out.decoded = stream.finish();
        if (ok && !out.decoded) {
            // Not plainly an array or a List of objects: read again whole (the same file, even
            // if it was renamed over since) for the decoder's result or error.
            ok = lseek(fd, 0, SEEK_SET) == 0 && read_pieces(fd, [&](std::string_view piece) {
                     out.text.append(piece);
                     return true;
                 });
            out.hash = XXH3_64bits(out.text.data(), out.text.size());
            out.bytes = out.text.size();
        }
        if (!ok) why = "cannot read " + file + ": " + std::strerror(errno);
        close(fd);
        return ok;
    }

    // Brings files[file] up to date with the disk, reading and decoding it only when it
    // changed. False, with a category and a reason naming the file, when it is missing,
    // unreadable or has a syntax error.
    bool refresh_file(const std::string &file, std::string &category, std::string &why) {
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        struct stat st {};
        if (stat(file.c_str(), &st) != 0) {
            category = errno == ENOENT ? "missing" : "read";
            why = errno == ENOENT ? file + " does not exist"
                                  : "cannot read " + file + ": " + std::strerror(errno);
            return false;
        }
        FileId id{st.st_dev, st.st_ino, st.st_size, to_ns(st.st_mtim), to_ns(st.st_ctim)};
        auto it = files.find(file);
        if (it != files.end() && it->second.id == id && it->second.racy) {
            // Only the clock's tick is in doubt: the same bytes need no reading whole.
            auto same = hash_file(file);
            if (same && same->first == it->second.hash && same->second == it->second.bytes) {
                it->second.racy = std::max(id.mtime_ns, id.ctime_ns) > to_ns(now) - kRacyNs;
                return it->second.error.empty() || fail_parse(file, it->second, category, why);
            }
        }
        if (it == files.end() || it->second.id != id || it->second.racy) {
            const bool fresh = it == files.end();
            SpanCache new_cache;  // a file not read before has none yet
            SpanCache &cache = fresh ? new_cache : it->second.cache;
            uint64_t objects_before = cache.objects_decoded();
            Read got;
            std::string read_why;
            if (!read_file(file, fresh ? nullptr : &it->second, cache, got, read_why)) {
                category = read_why.empty() ? "missing" : "read";
                why = read_why.empty() ? file + " does not exist" : read_why;
                return false;
            }
            if (fresh) {
                it = files.emplace(file, FileEntry{}).first;
                it->second.cache = std::move(new_cache);
            }
            FileEntry &entry = it->second;
            if (fresh || entry.hash != got.hash || entry.bytes != got.bytes) {
                forget_rejections(entry);
                ServiceList before = std::move(entry.services);
                if (got.decoded) {
                    objects += entry.cache.objects_decoded() - objects_before;
                    store(std::filesystem::path(file).filename().string(), &*got.decoded, "",
                          entry);
                } else {
                    decode_into(file, got.text, entry);
                }
                note_changes(file, before, entry.services);
                entry.hash = got.hash;
                entry.bytes = got.bytes;
            }
            entry.id = id;
            // A change in the same clock tick as this one would leave `id` as it is: until the
            // tick is surely over, the file is read again (not decoded, unless its bytes
            // changed) at every reload.
            entry.racy = std::max(id.mtime_ns, id.ctime_ns) > to_ns(now) - kRacyNs;
        }
        return it->second.error.empty() || fail_parse(file, it->second, category, why);
    }

    static bool fail_parse(const std::string &file, const FileEntry &entry, std::string &category,
                           std::string &why) {
        category = "parse";
        why = file + ": " + entry.error;
        return false;
    }

    // The next set from every file's decoded services: the last file's version of a name
    // wins, as if the files were one document in path order; a rejected object keeps its held
    // version unless some file has a valid one (build_set's rules).
    NextSet assemble(size_t &rejected) const {
        ServiceList all;
        std::vector<size_t> ends;  // where each file's (sorted) run ends in `all`
        size_t total = 0;
        for (const auto &f : files) total += f.second.services.size();
        all.reserve(total);
        rejected = 0;
        for (const auto &[path, entry] : files) {
            all.insert(all.end(), entry.services.begin(), entry.services.end());
            ends.push_back(all.size());
            rejected += entry.rejected.size() + entry.unlisted_rejections;
        }
        auto ptr_less = [](const ServicePtr &a, const ServicePtr &b) { return key_less(*a, *b); };
        // Merges neighbouring runs until one is left; a stable merge keeps, among equal names,
        // the earlier file's first.
        for (size_t width = 1; width < ends.size(); width *= 2) {
            for (size_t i = 0; i + width < ends.size(); i += 2 * width) {
                size_t lo = i == 0 ? 0 : ends[i - 1];
                size_t mid = ends[i + width - 1];
                size_t hi = ends[std::min(i + 2 * width, ends.size()) - 1];
                std::inplace_merge(all.begin() + static_cast<std::ptrdiff_t>(lo),
                                   all.begin() + static_cast<std::ptrdiff_t>(mid),
                                   all.begin() + static_cast<std::ptrdiff_t>(hi), ptr_less);
            }
        }
        NextSet next;
        ServiceList &out = next.services;
        out.reserve(all.size());
        const ServiceList &old = *held;
        size_t h = 0;
        bool in_run = false;  // all[i] is not the first of its name (the one before is moved)
        for (size_t i = 0; i < all.size(); ++i) {
            if (i + 1 < all.size() && !ptr_less(all[i], all[i + 1])) {
                if (!in_run)
                    log::warn(health.label() + ": " + all[i]->key() +
                              " appears more than once; the last one is used");
                in_run = true;
                continue;
            }
            in_run = false;
            // A version from another file that equals the held one is the held one.
            while (h < old.size() && key_less(*old[h], *all[i])) ++h;
            if (h < old.size() && old[h] != all[i] && *old[h] == *all[i])
                out.push_back(old[h]);
            else
                out.push_back(std::move(all[i]));
        }
        all = ServiceList();
        std::vector<Rejection> rejections;
        for (const auto &f : files)
            rejections.insert(rejections.end(), f.second.rejected.begin(), f.second.rejected.end());
        next.kept = keep_last_good(out, rejections, old);
        return next;
    }

    // The next set as the held one with only the names the changed files held or hold
    // decided again: the same set as assemble() builds, without walking every service. Null
    // when so many names changed that assemble() is cheaper.
    std::optional<NextSet> assemble_changes(size_t &rejected) const {
        std::vector<Key> keys;
        for (const auto &svc : changed_before) keys.push_back(key_of(*svc));
        for (const auto &svc : changed_after) keys.push_back(key_of(*svc));
        for (const auto &k : rejections_before) keys.push_back(split_key(k));
        std::unordered_set<std::string_view> rejected_keys;  // of every file, for the kept rule
        rejected = 0;
        for (const auto &[path, entry] : files) {
            rejected += entry.rejected.size() + entry.unlisted_rejections;
            for (const auto &r : entry.rejected)
                if (!r.key.empty()) rejected_keys.insert(r.key);
            if (!changed_paths.count(path)) continue;
            for (const auto &r : entry.rejected)
                if (!r.key.empty()) keys.push_back(split_key(r.key));
        }
        const ServiceList &old = *held;
        if (keys.size() > old.size() / 2) return std::nullopt;
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

        struct Edit {
            size_t pos;       // in `old`
            bool replaces;    // old[pos] is this key's
            ServicePtr with;  // null: removed
        };
        std::vector<Edit> edits;
        for (const Key &key : keys) {
            ServicePtr win = winner(key);
            size_t pos = lower_key(old, key);
            bool has = pos < old.size() && key_of(*old[pos]) == key;
            if (!win) {
                std::string name = std::string(key.first) + "/" + std::string(key.second);
                // A rejected object keeps its held version (SPEC §5).
                if (has && !rejected_keys.count(name)) edits.push_back({pos, true, nullptr});
                continue;
            }
            if (has && (old[pos] == win || *old[pos] == *win)) continue;
            edits.push_back({pos, has, std::move(win)});
        }
        NextSet next;
        ServiceList &out = next.services;
        out.reserve(old.size() + edits.size());
        size_t at = 0;
        for (auto &e : edits) {
            out.insert(out.end(), old.begin() + static_cast<std::ptrdiff_t>(at),
                       old.begin() + static_cast<std::ptrdiff_t>(e.pos));
            at = e.pos + (e.replaces ? 1 : 0);
            if (e.with) out.push_back(std::move(e.with));
        }
        out.insert(out.end(), old.begin() + static_cast<std::ptrdiff_t>(at), old.end());
        for (std::string_view k : rejected_keys) {
            std::string key(k);
            Key parts = split_key(key);
            if (find_key(out, parts) < out.size() && !winner(parts, false)) ++next.kept;
        }
        return next;
    }

    void reload() {
        std::string sig = signature();
        // Nothing on disk changed since the last attempt, unless a file may have changed
        // within its clock tick.
        if (sig == last_signature && !any_racy()) return;
        last_signature = sig;

        std::vector<std::string> paths;
        std::string category, why;
        if (is_directory()) {
            auto names = list_manifests(options.path, why);
            if (!names) {
                health.failed("read", why);
                return;
            }
            for (const auto &n : *names) paths.push_back(options.path + "/" + n);
        } else {
            paths.push_back(options.path);
        }
        for (auto it = files.begin(); it != files.end();) {
            if (std::binary_search(paths.begin(), paths.end(), it->first)) {
                ++it;
            } else {
                forget(it->first, it->second);
                it = files.erase(it);  // removed: its services go with it
            }
        }
        uint64_t decoded_before = decodes;
        bool ok = true;
        for (const auto &file : paths) {
            if (!refresh_file(file, category, why)) {
                ok = false;
                break;
            }
        }
        apply_hash_changes();
        if (!ok) {
            // Nothing of this attempt is delivered: a half-read directory could drop services
            // that only moved between files.
            health.failed(category, why);
            return;
        }
        if (holding && changed_paths.empty()) {
            health.succeeded();
            return;
        }
        size_t rejected = 0;
        std::optional<NextSet> changes;
        if (holding) changes = assemble_changes(rejected);
        NextSet next = changes ? std::move(*changes) : assemble(rejected);
        clear_changes();
        health.succeeded();
        bool same = holding && next.services.size() == held->size() &&
                    std::equal(next.services.begin(), next.services.end(), held->begin());
        if (same) {  // the files changed, their services did not (a comment, say)
            health.set_rejected(rejected);
            return;
        }
        log::info(
            health.label() + ": loaded " + std::to_string(next.services.size()) + " services" +
            (paths.size() > 1 ? " from " + std::to_string(paths.size()) + " files (" +
                                    std::to_string(decodes - decoded_before) + " decoded)"
                              : "") +
            (rejected == 0 ? ""
                           : ", rejected " + std::to_string(rejected) + " (" +
                                 std::to_string(next.kept) + " kept in their last good version)"));
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

uint64_t FileSource::files_decoded() const {
    return state_->decodes;
}

uint64_t FileSource::objects_decoded() const {
    return state_->objects;
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
