// Micro-benchmark of the datapath through BPF_PROG_TEST_RUN (root): ns per hit and per pass.
//
// Answer maps of 1, 10k and 64k entries, names of 24 and 255 wire bytes, A with 1 record and
// AAAA with 8, XDP and TC.
//
// Method. A test run with repeat > 1 does not restore the packet between repetitions, so after
// the first XDP_TX (or TC redirect) the program would be timing its own reply being passed
// (probed at start and shown as the context "restored_between_repeats"). Hits are therefore
// timed as a tight loop of repeat=1 runs: each iteration's time is the kernel's own measurement
// of that run (BPF_PROG_TEST_RUN's duration), so the syscall is excluded but the timer's own
// overhead is not; the "empty" benchmarks (a non-IP frame, passed at the first check) measure
// that fixed cost the same way, and the net cost of a hit is hit - empty. The counter
// syscall_ns is the wall time per run including the syscall. Passes leave the packet alone, so
// they are timed with repeat = 1,000,000 in one run; their reported time is per packet.
//
// Beside it, the same way and on the same frames, bench/run's reference responder
// (bench/harness/bpf/ref_responder.bpf.c: A only, 256-byte key, one record): the floor of what
// a minimal in-kernel answer costs under BPF_PROG_TEST_RUN on this machine.
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "datapath/loaded_datapath.hpp"

namespace fabdns::bench {
namespace {

using test::Bytes;

constexpr uint32_t kCapacity = 65536;
constexpr int64_t kHitIterations = 200000;
constexpr uint32_t kPassRepeat = 1000000;

// The two query names: 22 and 253 characters, i.e. 24 and 255 bytes on the wire.
std::string name_wire_24() {
    return "web-0001.ns.svc.global";
}
std::string name_wire_255() {
    std::string s;
    const std::string tail = ".global";
    while (s.size() + tail.size() < FABDNS_NAME_MAX) {
        if (!s.empty()) s += '.';
        const size_t room = FABDNS_NAME_MAX - tail.size() - s.size();
        s += std::string(std::min<size_t>(63, room), static_cast<char>('a' + s.size() % 26));
    }
    return s + tail;
}
// A name of the same length that is not in the map (differs in its first byte).
std::string miss_of(std::string name) {
    name[0] = name[0] == 'z' ? 'y' : 'z';
    return name;
}

struct Target {
    std::string name;
    uint16_t qtype;
    size_t records;
};

maps::KernelAnswer answer_for(const Target &t) {
    maps::KernelAnswer a;
    a.name = t.name;
    a.qtype = t.qtype;
    a.ttl = 30;
    for (size_t i = 0; i < t.records; i++) {
        std::array<uint8_t, 16> addr{};
        if (t.qtype == DNS_TYPE_A) {
            addr = {10, 7, 0, static_cast<uint8_t>(i + 1)};
        } else {
            addr = {0xfd, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(i + 1)};
        }
        a.addrs.push_back(addr);
    }
    return a;
}

std::vector<Target> targets() {
    return {{name_wire_24(), DNS_TYPE_A, 1},
            {name_wire_24(), DNS_TYPE_AAAA, 8},
            {name_wire_255(), DNS_TYPE_A, 1},
            {name_wire_255(), DNS_TYPE_AAAA, 8}};
}

// The datapath shared by every benchmark, and the map contents it currently holds.
class Bench {
  public:
    Bench() : dp_("bench", kCapacity) {}

    test::LoadedDatapath &dp() { return dp_; }

    // Makes the map hold `entries` answers: the target alone when entries is 1, else all four
    // targets plus fillers of assorted lengths. Refilled only when the wanted contents change.
    void fill(size_t entries, const Target &t) {
        const std::string want =
            entries == 1 ? t.name + "/" + std::to_string(t.qtype) : std::string("all");
        if (entries == entries_ && want == contents_) return;
        auto &table = dp_.answers();
        // Batches: each one switches the table's copies, which waits for a grace period.
        table.clear();
        std::vector<maps::AnswerChange> batch;
        auto put = [&](const maps::KernelAnswer &a) {
            batch.push_back({maps::make_key(a.name, a.qtype), maps::make_value(a)});
        };
        if (entries == 1) {
            put(answer_for(t));
        } else {
            for (const auto &x : targets()) put(answer_for(x));
            for (size_t i = 4; i < entries; i++) {
                const std::string name = "filler-" + std::to_string(i) + "." +
                                         std::string(1 + i % 40, 'f') + ".svc.global";
                put(answer_for(
                    {name, static_cast<uint16_t>(i % 2 ? DNS_TYPE_AAAA : DNS_TYPE_A), 1 + i % 8}));
            }
        }
        if (!table.apply(batch).empty()) throw std::runtime_error("cannot fill the answer map");
        entries_ = entries;
        contents_ = want;
        dp_.refresh();
    }

  private:
    test::LoadedDatapath dp_;
    size_t entries_ = 0;
    std::string contents_;
};

std::unique_ptr<Bench> g_bench;

// The reference responder, loaded from its object (nothing pinned or attached).
class RefResponder {
  public:
    explicit RefResponder(const char *path) {
        obj_ = bpf_object__open_file(path, nullptr);
        if (!obj_) throw std::runtime_error(std::string("cannot open ") + path);
        if (bpf_object__load(obj_) < 0) {
            bpf_object__close(obj_);
            throw std::runtime_error(std::string("cannot load ") + path);
        }
        bpf_program *prog = bpf_object__find_program_by_name(obj_, "ref_xdp");
        bpf_map *names = bpf_object__find_map_by_name(obj_, "ref_names");
        if (!prog || !names) {
            bpf_object__close(obj_);
            throw std::runtime_error(std::string("no ref_xdp / ref_names in ") + path);
        }
        prog_fd_ = bpf_program__fd(prog);
        names_fd_ = bpf_map__fd(names);
    }
    ~RefResponder() { bpf_object__close(obj_); }
    RefResponder(const RefResponder &) = delete;
    RefResponder &operator=(const RefResponder &) = delete;

    int fd() const { return prog_fd_; }

    // One A record for a dotted name: its key is the wire form, zero-padded to 256 bytes.
    void put(const std::string &name, const std::array<uint8_t, 4> &addr, uint32_t ttl) {
        std::array<uint8_t, 256> key{};
        size_t o = 0;
        size_t start = 0;
        while (start <= name.size()) {
            const size_t dot = std::min(name.find('.', start), name.size());
            key.at(o++) = static_cast<uint8_t>(dot - start);
            for (size_t i = start; i < dot; i++) key.at(o++) = static_cast<uint8_t>(name[i]);
            start = dot + 1;
        }
        struct {
            uint32_t addr;  // network order
            uint32_t ttl;   // host order
        } value{};
        std::memcpy(&value.addr, addr.data(), 4);
        value.ttl = ttl;
        if (bpf_map_update_elem(names_fd_, key.data(), &value, BPF_ANY) < 0)
            throw std::runtime_error("cannot fill ref_names");
    }

  private:
    bpf_object *obj_ = nullptr;
    int prog_fd_ = -1;
    int names_fd_ = -1;
};

std::unique_ptr<RefResponder> g_ref;

// One program and one input frame, run without the allocations of loader::test_run.
struct Runner {
    int fd;
    Bytes in;
    Bytes out = Bytes(4096);
    uint32_t duration = 0;
    uint32_t out_size = 0;

    uint32_t run(uint32_t repeat) {
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.data(), .data_out = out.data(),
                    .data_size_in = static_cast<uint32_t>(in.size()),
                    .data_size_out = static_cast<uint32_t>(out.size()),
                    .repeat = static_cast<int>(repeat));
        if (bpf_prog_test_run_opts(fd, &o) < 0) return UINT32_MAX;
        duration = o.duration;
        out_size = o.data_size_out;
        return o.retval;
    }
};

bool is_tc(const std::string &mode) {
    return mode == "tc";
}
int fd_of(const std::string &mode) {
    return is_tc(mode) ? g_bench->dp().tc_fd() : g_bench->dp().xdp_fd();
}
uint32_t answered_verdict(const std::string &mode) {
    return is_tc(mode) ? TC_ACT_REDIRECT : XDP_TX;
}
uint32_t passed_verdict(const std::string &mode) {
    return is_tc(mode) ? TC_ACT_OK : XDP_PASS;
}

Bytes query_frame(const std::string &name, uint16_t qtype, uint16_t dport = 53) {
    test::QueryOpts q;
    q.name = name;
    q.qtype = qtype;
    test::FrameOpts f = test::frame_v4();
    f.dport = dport;
    return test::frame(f, test::dns_query(q));
}

// An ARP-typed frame of minimum Ethernet size: passed at the first check.
Bytes non_ip_frame() {
    Bytes b(60, 0);
    b[0] = 0xff;
    b[12] = 0x08;
    b[13] = 0x06;
    return b;
}

// repeat=1 runs in a loop, each iteration timed by the kernel's measurement of its run.
void run_singles(benchmark::State &state, Runner &r, uint32_t expect) {
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        const uint32_t v = r.run(1);
        if (v != expect) {
            state.SkipWithError(("unexpected verdict " + std::to_string(v)).c_str());
            break;
        }
        state.SetIterationTime(r.duration * 1e-9);
    }
    const double wall =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    state.counters["syscall_ns"] =
        wall / static_cast<double>(std::max<int64_t>(1, state.iterations()));
}

void hit(benchmark::State &state, std::string mode, size_t entries, Target t) {
    g_bench->fill(entries, t);
    Runner r{fd_of(mode), query_frame(t.name, t.qtype)};
    state.counters["entries"] = static_cast<double>(entries);
    run_singles(state, r, answered_verdict(mode));
    state.counters["frame_bytes"] = static_cast<double>(r.out_size);
}

void empty(benchmark::State &state, std::string mode) {
    Runner r{fd_of(mode), non_ip_frame()};
    run_singles(state, r, passed_verdict(mode));
}

// The reference responder on the frame hit/xdp sends for the same name (it knows that name
// only, as a map of 1).
void ref_hit(benchmark::State &state, Target t) {
    if (!g_ref) {
        state.SkipWithError("reference responder not loaded");
        return;
    }
    g_ref->put(t.name, {10, 7, 0, 1}, 30);
    Runner r{g_ref->fd(), query_frame(t.name, t.qtype)};
    run_singles(state, r, XDP_TX);
    state.counters["frame_bytes"] = static_cast<double>(r.out_size);
}

void ref_empty(benchmark::State &state) {
    if (!g_ref) {
        state.SkipWithError("reference responder not loaded");
        return;
    }
    Runner r{g_ref->fd(), non_ip_frame()};
    run_singles(state, r, XDP_PASS);
}

// One run of kPassRepeat repetitions per iteration; the iteration time is the kernel's
// per-repetition average, so the reported time is ns per packet.
void pass(benchmark::State &state, std::string mode, Bytes frame, size_t entries, Target t) {
    if (entries) g_bench->fill(entries, t);
    g_bench->dp().refresh();
    Runner r{fd_of(mode), std::move(frame)};
    for (auto _ : state) {
        const uint32_t v = r.run(kPassRepeat);
        if (v != passed_verdict(mode)) {
            state.SkipWithError(("unexpected verdict " + std::to_string(v)).c_str());
            break;
        }
        state.SetIterationTime(r.duration * 1e-9);
    }
    state.counters["repeat"] = kPassRepeat;
}

// One hot name answered on `cpus` CPUs at once (thread i pinned to CPU i, kHotRuns repeat=1
// runs each): the reported time is the mean kernel-timed ns per hit over all threads, so a
// cache line bouncing between CPUs shows as 2 CPUs costing more per hit than 1.
constexpr int kHotRuns = 20000;
void hot(benchmark::State &state, std::string mode, int cpus) {
    const Target t = targets()[0];
    g_bench->fill(1, t);
    if (std::thread::hardware_concurrency() < static_cast<unsigned>(cpus)) {
        state.SkipWithError("not enough CPUs");
        return;
    }
    for (auto _ : state) {
        std::atomic<uint64_t> total_ns{0}, bad{0};
        std::atomic<int> ready{0};
        std::vector<std::thread> threads;
        for (int c = 0; c < cpus; c++) {
            threads.emplace_back([&, c] {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(c, &set);
                pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
                Runner r{fd_of(mode), query_frame(t.name, t.qtype)};
                ready++;
                while (ready.load() < cpus) {
                }
                uint64_t ns = 0;
                for (int i = 0; i < kHotRuns; i++) {
                    if (r.run(1) != answered_verdict(mode)) bad++;
                    ns += r.duration;
                }
                total_ns += ns;
            });
        }
        for (auto &th : threads) th.join();
        if (bad) {
            state.SkipWithError("unexpected verdict");
            break;
        }
        state.SetIterationTime(static_cast<double>(total_ns) / (double(kHotRuns) * cpus) * 1e-9);
    }
    state.counters["cpus"] = cpus;
}

// Whether a test run with repeat=2 runs the second repetition on the original query: the
// answered counter then grows by 2, else by 1 (the second run saw the reply and passed it).
std::string probe_restore(const std::string &mode) {
    g_bench->fill(1, targets()[0]);
    auto &maps = g_bench->dp().dp().maps();
    Runner r{fd_of(mode), query_frame(targets()[0].name, targets()[0].qtype)};
    const auto before = maps.stats()[FABDNS_STAT_ANSWERED];
    r.run(2);
    const auto after = maps.stats()[FABDNS_STAT_ANSWERED];
    return after - before == 2
               ? "yes"
               : "no (answered " + std::to_string(after - before) + " of 2 repetitions)";
}

void register_all() {
    const auto ts = targets();
    for (int cpus : {1, 2})
        benchmark::RegisterBenchmark(("hot/xdp/cpus:" + std::to_string(cpus)).c_str(), hot,
                                     std::string("xdp"), cpus)
            ->Iterations(5)
            ->UseManualTime();
    for (const char *mode : {"xdp", "tc"}) {
        std::string m = mode;
        benchmark::RegisterBenchmark(("empty/" + m).c_str(), empty, m)
            ->UseManualTime()
            ->Iterations(kHitIterations);
    }
    // The reference: XDP, A with one record, both name lengths.
    benchmark::RegisterBenchmark("empty/ref", ref_empty)
        ->UseManualTime()
        ->Iterations(kHitIterations);
    for (const Target &t : ts) {
        if (t.qtype != DNS_TYPE_A) continue;
        const std::string shape = "entries:1/name:" + std::to_string(t.name.size() + 2) + "/Ax1";
        benchmark::RegisterBenchmark(("hit/ref/" + shape).c_str(), ref_hit, t)
            ->UseManualTime()
            ->Iterations(kHitIterations);
    }
    for (size_t entries : {size_t{1}, size_t{10000}, size_t{kCapacity}}) {
        for (const Target &t : ts) {
            const std::string shape = "entries:" + std::to_string(entries) +
                                      "/name:" + std::to_string(t.name.size() + 2) + "/" +
                                      (t.qtype == DNS_TYPE_A ? "A" : "AAAA") + "x" +
                                      std::to_string(t.records);
            for (const char *mode : {"xdp", "tc"}) {
                std::string m = mode;
                benchmark::RegisterBenchmark(("hit/" + m + "/" + shape).c_str(), hit, m, entries, t)
                    ->UseManualTime()
                    ->Iterations(kHitIterations);
            }
            // Misses cost the same for either type; one per name length.
            if (t.qtype == DNS_TYPE_A) {
                const std::string mshape = "entries:" + std::to_string(entries) +
                                           "/name:" + std::to_string(t.name.size() + 2);
                for (const char *mode : {"xdp", "tc"}) {
                    std::string m = mode;
                    benchmark::RegisterBenchmark(("miss/" + m + "/" + mshape).c_str(), pass, m,
                                                 query_frame(miss_of(t.name), t.qtype), entries, t)
                        ->UseManualTime()
                        ->Iterations(3);
                }
            }
        }
    }
    // Where the time goes: frames that pass at successive stages of the program, for both
    // name lengths (XDP only; TC runs the same code after its own entry).
    for (size_t wire : {size_t{24}, size_t{255}}) {
        const Target &t = wire == 24 ? ts[0] : ts[2];
        const std::string n = "/xdp/name:" + std::to_string(wire);
        Bytes response = query_frame(t.name, t.qtype);
        response[14 + 20 + 8 + 2] |= 0x80;  // QR=1: passes right after the header check
        benchmark::RegisterBenchmark(("stage-response" + n).c_str(), pass, std::string("xdp"),
                                     response, size_t{1}, t)
            ->UseManualTime()
            ->Iterations(3);
        // TXT: passes after the name walk and the question's type check.
        benchmark::RegisterBenchmark(("stage-qtype" + n).c_str(), pass, std::string("xdp"),
                                     query_frame(t.name, 16), size_t{1}, t)
            ->UseManualTime()
            ->Iterations(3);
    }
    for (const char *mode : {"xdp", "tc"}) {
        std::string m = mode;
        benchmark::RegisterBenchmark(("pass-non-ip/" + m).c_str(), pass, m, non_ip_frame(),
                                     size_t{0}, ts[0])
            ->UseManualTime()
            ->Iterations(3);
        benchmark::RegisterBenchmark(("pass-not-for-us/" + m).c_str(), pass, m,
                                     query_frame(ts[0].name, ts[0].qtype, 5353), size_t{0}, ts[0])
            ->UseManualTime()
            ->Iterations(3);
    }
}

}  // namespace
}  // namespace fabdns::bench

int main(int argc, char **argv) {
    using namespace fabdns::bench;
    if (geteuid() != 0) {
        std::fprintf(stderr, "fabdns_bench_datapath: needs root (BPF_PROG_TEST_RUN)\n");
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int status = 0;
    try {
        g_bench = std::make_unique<Bench>();
        try {
            g_ref = std::make_unique<RefResponder>(FABDNS_REF_BPF_OBJ);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "fabdns_bench_datapath: %s (reference skipped)\n", e.what());
        }
        benchmark::AddCustomContext("restored_between_repeats_xdp", probe_restore("xdp"));
        benchmark::AddCustomContext("restored_between_repeats_tc", probe_restore("tc"));
        register_all();
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fabdns_bench_datapath: %s\n", e.what());
        status = 1;
    }
    g_ref.reset();
    g_bench.reset();  // removes the pins
    benchmark::Shutdown();
    return status;
}
