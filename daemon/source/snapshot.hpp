// Crash-safe small files: the hub's last-known-good snapshot is written so that a reader (the
// next daemon) sees either the old or the new content, never a torn mix.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabdns::source_detail {

// Writes `data` to a temporary file in path's directory, fsyncs it, renames it over `path` and
// fsyncs the directory. Creates the directory if needed. Returns "" on success, else the reason.
std::string write_file_atomically(const std::string &path, std::string_view data);

// The same in two steps, so that the caller can free the data and go on between them: stage()
// writes it to the temporary file (creating the directory if needed), commit() makes it durable
// and renames it over `path`. `path` keeps its old content until commit(); a file never
// committed is removed. Each returns "" on success, else the reason.
class StagedFile {
  public:
    StagedFile() = default;
    StagedFile(const StagedFile &) = delete;
    StagedFile &operator=(const StagedFile &) = delete;
    ~StagedFile();

    // A failed stage(), open() or append() leaves nothing staged.
    std::string stage(const std::string &path, std::string_view data);
    // stage() in steps, for data that arrives in pieces: open() creates the temporary file,
    // each append() adds to it.
    std::string open(const std::string &path);
    std::string append(std::string_view data);
    std::string commit();
    bool staged() const { return fd_ >= 0; }

  private:
    std::string fail(const std::string &what);  // errno's reason; removes the temporary file

    int fd_ = -1;
    std::string tmp_, path_, dir_;  // tmp_ is non-empty while there is a file to remove
    size_t written_ = 0, flushed_ = 0;
};

// Reads from `fd` until `n` bytes are in `buf` or the file ends: the bytes read, or -1 (errno
// set) on an error.
ssize_t read_fully(int fd, char *buf, size_t n);

// Reads `fd` from where it is to its end in pieces of 256 KiB (small enough to stay in the CPU's
// cache while each is used), giving each to `each`, which returns false to stop there. False on
// a read error (errno set).
template <typename Each>
bool read_pieces(int fd, Each &&each) {
    std::vector<char> buf(size_t{256} << 10);
    for (;;) {
        ssize_t n = read_fully(fd, buf.data(), buf.size());
        if (n < 0) return false;
        if (n == 0 || !each(std::string_view(buf.data(), static_cast<size_t>(n)))) return true;
    }
}

// Opens a regular file for reading: its descriptor (and its size in `size`), or -1 with `why`
// filled (why == "" when the file does not exist).
int open_regular_file(const std::string &path, std::string &why, size_t *size = nullptr);

// The whole file, or nullopt with `why` filled (why == "" when the file does not exist). A file
// larger than max_bytes (0: no limit) is refused without being read.
std::optional<std::string> read_whole_file(const std::string &path, std::string &why,
                                           size_t max_bytes = 0);

}  // namespace fabdns::source_detail
