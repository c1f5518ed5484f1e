// The file source (SPEC §5): GlobalService manifests in one file or a directory, reloaded when
// they change on disk (inotify, with a slow stat-based rescan as a safety net).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "model/document.hpp"
#include "model/globalservice.hpp"
#include "source/source.hpp"

namespace fabdns {

struct FileOptions {
    std::string path;  // a file, or a directory of *.yaml, *.yml and *.json files (not recursive)
    std::chrono::milliseconds debounce{100};  // quiet time after the last change before a reload
    // The same after a change that finished a write (IN_CLOSE_WRITE, or IN_MOVED_TO: a file
    // renamed into place): short, so that a change is served at once, yet a burst of files
    // written together is still read as one.
    std::chrono::milliseconds settle{10};
    std::chrono::milliseconds rescan{2000};  // stat-based check for changes inotify cannot see
};

// Reload rules:
// - Only the files that changed are read and decoded again; each file's decoded services are
//   kept (not its text) and the set is built from them. A file counts as changed when its
//   inode, size, mtime or ctime differ (a symlink is followed: a ConfigMap's "..data" swap gives
//   every file a new inode) and then its bytes do; one changed within two seconds of being read
//   is read again at every reload until then, as a rewrite within one clock tick can leave all
//   four the same.
// - Of a name in several files, the one in the last file (by file name) is used; a set whose
//   services are all unchanged is not delivered again.
// - A YAML or JSON syntax error in the file, or in any one file of the directory, keeps the last
//   good set for the whole source (a half-applied directory could drop services that only moved
//   between files). The error is logged once until the files change again.
// - Objects the decoder refuses are logged with their reason and left out; the rest load.
// - A missing path keeps the last good set; an existing empty file or directory is an accepted
//   empty set (every manifest was removed on purpose).
// - The file's directory is watched rather than the file, so editors that write a new file and
//   rename it over the old one, and Kubernetes ConfigMap volumes (a "..data" symlink swap), are
//   seen. Hidden files in a directory are skipped.
class FileSource final : public Source {
  public:
    explicit FileSource(FileOptions options);
    ~FileSource() override;

    void start(Update on_update) override;
    void stop() override;
    SourceStatus status() const override;

    // How many times a manifest file was decoded since start (tests and benchmarks tell by it
    // which files a change read again).
    uint64_t files_decoded() const;
    // How many objects of JSON files were parsed and decoded since start: a changed JSON file
    // decodes only its objects whose bytes changed (SpanCache).
    uint64_t objects_decoded() const;

  private:
    struct State;
    void run();
    std::unique_ptr<State> state_;
    std::thread thread_;
};

namespace source_detail {

// Decodes one manifest file's text as FileSource does: *.json through the streaming JSON
// decoder, anything else through the streaming YAML decoder. False, with `why`, on a syntax error
// or a refused YAML alias (the whole file counts as unreadable then); objects the decoder
// refuses are in out.rejected.
// With a `cache`, a JSON file decodes only the objects whose bytes the file's last version
// decoded through it did not have, and delivers its services in out.shared.
bool decode_manifest_file(const std::string &name, const std::string &text, DecodeResult &out,
                          std::string &why, SpanCache *cache = nullptr);

}  // namespace source_detail

}  // namespace fabdns
