// Decode of manifest files as the file source runs it (source_detail::decode_manifest_file), by
// hand: `fabdns_file_decode_bench FILE [RUNS]` prints each run's wall and CPU time (CPU time is
// the steadier figure on a shared machine), their medians, and the process's peak memory (VmHWM)
// before and after, so the decoder's own peak shows beside the file's size. Generate files with
// bench/harness/gen.py (see bench/README.md). A JSON file is then decoded again as the file
// source decodes its next version: through the SpanCache of the previous one, with one object
// changed (a name in the middle of the file made one letter longer); that CPU time shows beside
// the first, with the objects decoded. Before the timed runs it prints the heap bytes the decoded
// set holds once the decoder's scratch is gone (malloc's in-use bytes with the set as a source
// keeps it, minus those before the decode): the figure the compact model is measured by. Last,
// for a JSON file, the CPU time of unique_services on a next version with one object's
// resourceVersion changed: sorting afresh, and reusing the first version's sort (SortMemo).
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "source/file_source.hpp"
#include "source/objects.hpp"

namespace {

long vm_hwm_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE [RUNS]\n", argv[0]);
        return 2;
    }
    std::string path = argv[1];
    int runs = argc > 2 ? std::max(1, std::stoi(argv[2])) : 3;
    std::stringstream buf;
    buf << std::ifstream(path).rdbuf();
    const std::string text = buf.str();
    std::string name = path.substr(path.find_last_of('/') + 1);
    long hwm_before = vm_hwm_kib();
    {
        size_t heap_before = mallinfo2().uordblks;
        fabdns::ServiceSet held;
        {
            fabdns::DecodeResult out;
            std::string why;
            if (!fabdns::source_detail::decode_manifest_file(name, text, out, why)) {
                std::fprintf(stderr, "%s: %s\n", path.c_str(), why.c_str());
                return 1;
            }
            held = fabdns::make_service_set(std::move(out.services));
        }
        size_t held_bytes = mallinfo2().uordblks - heap_before;
        std::printf("held set: %zu services, %.1f MB on the heap (%zu bytes per service)\n",
                    held->size(), held_bytes / 1e6, held->empty() ? 0 : held_bytes / held->size());
    }
    std::vector<double> secs, cpu;
    size_t services = 0, rejected = 0;
    for (int i = 0; i < runs; i++) {
        auto t0 = std::chrono::steady_clock::now();
        double c0 = cpu_seconds();
        fabdns::DecodeResult out;
        std::string why;
        if (!fabdns::source_detail::decode_manifest_file(name, text, out, why)) {
            std::fprintf(stderr, "%s: %s\n", path.c_str(), why.c_str());
            return 1;
        }
        secs.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        cpu.push_back(cpu_seconds() - c0);
        services = out.services.size();
        rejected = out.rejected_count();
        std::printf("run %d: %.3f s, CPU %.3f s\n", i + 1, secs.back(), cpu.back());
    }
    std::sort(secs.begin(), secs.end());
    std::sort(cpu.begin(), cpu.end());

    std::printf(
        "%s: %.1f MiB, %zu services, %zu rejected; median of %d: %.3f s, CPU %.3f s; "
        "VmHWM %.1f MiB (%.1f MiB with the text read)\n",
        name.c_str(), text.size() / 1048576.0, services, rejected, runs, secs[secs.size() / 2],
        cpu[cpu.size() / 2], vm_hwm_kib() / 1024.0, hwm_before / 1024.0);
    bool json = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
    size_t at = text.find("\"name\":", text.size() / 2);
    if (json && at != std::string::npos) {
        at = text.find('"', at + 7);
        std::string changed = text;
        changed.insert(at + 1, "x");
        std::vector<double> again;
        uint64_t objects = 0;
        for (int i = 0; i < runs; i++) {
            fabdns::SpanCache cache;
            fabdns::DecodeResult first, second;
            std::string why;
            fabdns::source_detail::decode_manifest_file(name, text, first, why, &cache);
            uint64_t before = cache.objects_decoded();
            double c0 = cpu_seconds();
            if (!fabdns::source_detail::decode_manifest_file(name, changed, second, why, &cache)) {
                std::fprintf(stderr, "%s (changed): %s\n", path.c_str(), why.c_str());
                return 1;
            }
            again.push_back(cpu_seconds() - c0);
            objects = cache.objects_decoded() - before;
        }
        std::sort(again.begin(), again.end());
        std::printf(
            "one object changed, decoded again through the cache: median CPU %.4f s "
            "(%.1f%% of a decode from scratch), %llu object(s) decoded\n",
            again[again.size() / 2], 100.0 * again[again.size() / 2] / cpu[cpu.size() / 2],
            static_cast<unsigned long long>(objects));
    }
    at = text.find("\"resourceVersion\":", text.size() / 2);
    if (json && at != std::string::npos) {
        at = text.find('"', at + 18);
        // unique_services on the next version as the file source runs it (through the cache,
        // the first version's set held), one object's resourceVersion changed: sorted afresh,
        // and with the first version's SortMemo.
        std::string changed = text;
        changed.insert(at + 1, "9");
        fabdns::SpanCache cache;
        fabdns::DecodeResult first, second;
        std::string why;
        fabdns::source_detail::decode_manifest_file(name, text, first, why, &cache);
        fabdns::source_detail::SortMemo memo;
        const fabdns::ServiceList held =
            fabdns::source_detail::unique_services(first.shared, {}, "bench", "", &memo);
        fabdns::source_detail::decode_manifest_file(name, changed, second, why, &cache);
        std::vector<double> fresh, reused;
        size_t reuses = 0;
        for (int i = 0; i < std::max(runs, 11); i++) {
            std::vector<fabdns::ServicePtr> in = second.shared;
            double c0 = cpu_seconds();
            fabdns::ServiceList sorted = fabdns::source_detail::unique_services(in, held, "bench");
            fresh.push_back(cpu_seconds() - c0);
            in = second.shared;
            fabdns::source_detail::SortMemo last = memo;
            c0 = cpu_seconds();
            fabdns::ServiceList memoized =
                fabdns::source_detail::unique_services(in, held, "bench", "", &last);
            reused.push_back(cpu_seconds() - c0);
            if (memoized != sorted) {
                std::fprintf(stderr, "unique_services: a different set with the SortMemo\n");
                return 1;
            }
            reuses += last.reuses - memo.reuses;
        }
        std::sort(fresh.begin(), fresh.end());
        std::sort(reused.begin(), reused.end());
        std::printf(
            "one object's version changed, unique_services: median CPU %.2f ms sorted afresh, "
            "%.2f ms with the last version's SortMemo (reused %zu of %zu times)\n",
            fresh[fresh.size() / 2] * 1e3, reused[reused.size() / 2] * 1e3, reuses, reused.size());
    }
    return 0;
}
