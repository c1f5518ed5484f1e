// Atomic file replacement (temp + fsync + rename + fsync dir) and whole-file reads.
#include "source/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <utility>

namespace fabdns::source_detail {

namespace {
std::string errno_text(const std::string &what) {
    return what + ": " + std::strerror(errno);
}
}  // namespace

StagedFile::~StagedFile() {
    if (fd_ >= 0) close(fd_);
    if (!tmp_.empty()) unlink(tmp_.c_str());
}

std::string StagedFile::open(const std::string &path) {
    namespace fs = std::filesystem;
    if (!tmp_.empty()) return "a file is already staged for " + path_;
    fs::path target(path);
    fs::path dir = target.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return "cannot create " + dir.string() + ": " + ec.message();

    // Hidden and in the same directory, so the rename is atomic and readers never list it.
    std::string tmpl = dir.string();
    tmpl.append("/.").append(target.filename().string()).append(".XXXXXX");
    fd_ = mkstemp(tmpl.data());
    if (fd_ < 0) return errno_text("cannot create a temporary file in " + dir.string());
    tmp_ = tmpl;
    path_ = path;
    dir_ = dir.string();
    written_ = flushed_ = 0;
    if (fchmod(fd_, 0644) != 0) return fail("cannot chmod " + tmp_);
    return "";
}

std::string StagedFile::append(std::string_view data) {
    if (fd_ < 0) return "nothing staged";
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("cannot write " + tmp_);
        }
        done += static_cast<size_t>(n);
    }
    written_ += data.size();
    // Dirty pages can only be reclaimed once written back: start that as the file grows, so
    // that a large answer does not sit in memory twice (memory cgroups count the page cache)
    // and commit()'s fsync finds little left to do. Asynchronous; errors show at commit().
    constexpr size_t kFlush = size_t{8} << 20;
    if (written_ - flushed_ >= kFlush) {
        sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(written_ - flushed_),
                        SYNC_FILE_RANGE_WRITE);
        flushed_ = written_;
    }
    return "";
}

std::string StagedFile::stage(const std::string &path, std::string_view data) {
    std::string why = open(path);
    return why.empty() ? append(data) : why;
}

std::string StagedFile::fail(const std::string &what) {
    std::string why = errno_text(what);
    close(std::exchange(fd_, -1));
    unlink(std::exchange(tmp_, "").c_str());
    return why;
}

std::string StagedFile::commit() {
    if (fd_ < 0) return "nothing staged";
    if (fsync(fd_) != 0) return errno_text("cannot fsync " + tmp_);
    // Clean now, its pages are only read again after a restart: dropped, so that a snapshot
    // (47 MB at 100,000 services) does not stay charged to the daemon's memory cgroup.
    posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
    int rc = close(fd_);
    fd_ = -1;
    if (rc != 0) return errno_text("cannot close " + tmp_);
    if (rename(tmp_.c_str(), path_.c_str()) != 0)
        return errno_text("cannot rename " + tmp_ + " to " + path_);
    tmp_.clear();
    // The rename is durable only once the directory entry is on disk.
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return errno_text("cannot open " + dir_);
    rc = fsync(dfd);
    int saved = errno;
    close(dfd);
    if (rc != 0) {
        errno = saved;
        return errno_text("cannot fsync " + dir_);
    }
    return "";
}

std::string write_file_atomically(const std::string &path, std::string_view data) {
    StagedFile file;
    std::string why = file.stage(path, data);
    return why.empty() ? file.commit() : why;
}

ssize_t read_fully(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += static_cast<size_t>(r);
    }
    return static_cast<ssize_t>(got);
}

int open_regular_file(const std::string &path, std::string &why, size_t *size) {
    why.clear();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) why = errno_text("cannot open " + path);
        return -1;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        why = "cannot read " + path + ": not a regular file";
        close(fd);
        return -1;
    }
    if (size) *size = static_cast<size_t>(st.st_size);
    return fd;
}

std::optional<std::string> read_whole_file(const std::string &path, std::string &why,
                                           size_t max_bytes) {
    size_t size = 0;
    int fd = open_regular_file(path, why, &size);
    if (fd < 0) return std::nullopt;
    std::string data;
    bool ok = true, too_large = max_bytes != 0 && size > max_bytes;
    if (!too_large) {
        data.reserve(size);
        ok = read_pieces(fd, [&](std::string_view piece) {
            data.append(piece);
            too_large = max_bytes != 0 && data.size() > max_bytes;  // it grew while being read
            return !too_large;
        });
    }
    if (!ok) why = errno_text("cannot read " + path);
    close(fd);
    if (too_large)
        why = "cannot read " + path + ": larger than " + std::to_string(max_bytes) + " bytes";
    if (!ok || too_large) return std::nullopt;
    return data;
}

}  // namespace fabdns::source_detail
