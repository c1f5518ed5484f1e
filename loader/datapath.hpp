// The datapath loader: the only code that touches libbpf. Opens, loads and pins the BPF
// object (adopting already-pinned maps and links on restart), attaches it to interfaces in
// xdp, xdp-generic or tc mode (tcx link, or clsact + cls_bpf before Linux 6.6) and detaches
// it, and gives typed access to the pinned maps.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/attach_mode.hpp"
#include "datapath_maps.hpp"

namespace fabdns::loader {

using Mode = AttachMode;  // named and parsed in daemon/common/attach_mode.hpp

// A loader error with a message fit for an operator.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// How a mode is hooked into the kernel. Tc uses a tcx link where the kernel has them (6.6)
// and a cls_bpf filter on the clsact qdisc before (docs/kernels.md).
enum class Hook { XdpLink, TcxLink, Clsact };
const char *to_string(Hook hook);

// The clsact filter fabdns owns on an interface's ingress: fixed, so that a restarted daemon
// finds it and replaces its program in place (docs/kernels.md).
constexpr uint32_t kClsactHandle = 0xfabd;
constexpr uint32_t kClsactPriority = 1;

struct Attachment {
    std::string iface;
    Mode mode;
    Hook hook = Hook::XdpLink;
    uint32_t prog_id = 0;  // 0: recorded under pin_path but no longer in the kernel
    bool pinned = false;   // recorded under pin_path (survives the process)
};

// Maps opened from the pins under pin_path (no program needed): what fabdnsctl uses.
// Throws Error when the pins are missing.
std::unique_ptr<maps::DatapathMaps> open_pinned_maps(const std::string &pin_path);

// Attachments recorded under pin_path (pinned links), with the interface's current state.
std::vector<Attachment> list_attachments(const std::string &pin_path);

// Detaches iface (any mode) and removes its link pin. Throws Error if nothing of ours is
// attached there.
void detach(const std::string &pin_path, const std::string &iface);

// Removes every fabdns pin under pin_path (links first, which detaches them).
void remove_all(const std::string &pin_path);

// Which hook tc mode uses: Auto tries a tcx link and falls back to clsact where the kernel
// refuses it (before 6.6); the others force one (tests force Clsact on new kernels).
enum class TcHook { Auto, Tcx, Clsact };

struct Options {
    std::string pin_path = "/sys/fs/bpf/fabdns";
    uint32_t capacity = FABDNS_ANSWERS_CAPACITY;
    TcHook tc_hook = TcHook::Auto;
};

// RAII: the loaded object. Destruction closes file descriptors only: pinned maps and links
// stay, so the kernel keeps answering after the process exits (SPEC §4).
class Datapath {
  public:
    // Loads the object, pinning its maps under options.pin_path or adopting the ones already
    // pinned there (answers are kept unless the capacity changed).
    explicit Datapath(const Options &options);
    ~Datapath();
    Datapath(const Datapath &) = delete;
    Datapath &operator=(const Datapath &) = delete;

    // Attaches to iface, replacing an earlier fabdns attachment atomically (link update, or
    // the clsact filter replaced in place) and refusing to touch a foreign XDP program or a
    // foreign filter at fabdns's clsact handle. Throws Error.
    void attach(const std::string &iface, Mode mode);
    void detach(const std::string &iface);

    maps::DatapathMaps &maps();
    int prog_fd(Mode mode) const;  // for BPF_PROG_TEST_RUN
    uint32_t prog_id(Mode mode) const;
    uint32_t verified_insns(Mode mode) const;
    const std::string &pin_path() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Runs a program once through BPF_PROG_TEST_RUN on a frame; returns the verdict and output.
struct TestRun {
    uint32_t verdict = 0;
    std::vector<uint8_t> out;
    uint32_t duration_ns = 0;
};
TestRun test_run(int prog_fd, const std::vector<uint8_t> &frame, uint32_t repeat = 1);

}  // namespace fabdns::loader
