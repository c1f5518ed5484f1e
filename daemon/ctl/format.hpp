// Text helpers for fabdnsctl's operator output: aligned tables, durations, addresses and DNS
// records as an operator reads them (dig-like).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datapath_maps.hpp"
#include "engine/engine.hpp"

namespace fabdns::ctl {

// Columns separated by two spaces, each as wide as its widest cell; the last column is not
// padded, so lines carry no trailing spaces. Right-aligned columns suit numbers.
class Table {
  public:
    explicit Table(std::vector<std::string> header = {});
    void right_align(size_t column);
    void add(std::vector<std::string> row);
    bool empty() const { return rows_.empty(); }
    // Every line starts with `indent`; the header (when given) comes first.
    std::string render(std::string_view indent = "") const;

  private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
    std::vector<bool> right_;
};

// "250ms", "1.5s", "2m0s", "1h30m": short and exact enough for ages and timeouts.
std::string format_duration_ns(uint64_t ns);

// Address bytes in network order (4 or 16) as inet_ntop prints them.
std::string format_address(const uint8_t *bytes, size_t len);

// Parses "A", "aaaa", "TYPE28" or a number. Returns 0 when unknown.
uint16_t parse_type(std::string_view text);

// One record in zone-file form: "owner.  5  IN  A  10.0.0.1". SOA and NS rdata is decoded;
// other types are shown as RFC 3597 generic data.
std::string format_record(const Record &record);

// A kernel answer's data as an operator reads it: its addresses, "NODATA (SOA of global)" or
// "zone SOA, serial N".
std::string kernel_answer_text(const maps::KernelAnswer &a);

}  // namespace fabdns::ctl
