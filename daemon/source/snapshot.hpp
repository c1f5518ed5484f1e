// Crash-safe small files: the hub's last-known-good snapshot is written so that a reader (the
// next daemon) sees either the old or the new content, never a torn mix.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace fabdns::source_detail {

// Writes `data` to a temporary file in path's directory, fsyncs it, renames it over `path` and
// fsyncs the directory. Creates the directory if needed. Returns "" on success, else the reason.
std::string write_file_atomically(const std::string &path, const std::string &data);

// The whole file, or nullopt with `why` filled (why == "" when the file does not exist). A file
// larger than max_bytes (0: no limit) is refused without being read.
std::optional<std::string> read_whole_file(const std::string &path, std::string &why,
                                           size_t max_bytes = 0);

}  // namespace fabdns::source_detail
