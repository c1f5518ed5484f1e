"""The profile pass: BPF run-time stats (ns per program run) and perf samples of the server's
tasks, one target at a time, kept out of the timed rounds because both add overhead; and the
bpf_stats comparison (`bench/run --only bpf-stats`): fabdns XDP's positive and NODATA hits
against the reference responder's A hits, in interleaved rounds."""
import json
import os
import shutil
import statistics
import subprocess
import time

from common import HarnessError, log, run
from load import kxdpgun
from measure import proc_tree, sysctl_get, sysctl_set
from rounds import start_target, throughput_run
from targets import TARGETS, FabdnsXdp, Reference

# (key, target class, data set, mix, the program whose ns per run is compared)
BPF_STATS_CASES = [
    ("fabdns positive (A)", FabdnsXdp, "100", "A", "fabdns_xdp"),
    ("fabdns NODATA (AAAA, IPv4-only name)", FabdnsXdp, "100v4", "AAAA", "fabdns_xdp"),
    ("reference (A)", Reference, "100", "A", "ref_xdp"),
]


def profile(bench):
    """One pass with kernel.bpf_stats_enabled=1 (ns per program run) and perf sampling of the
    server CPU, A mix, 100 names. Kept out of the timed rounds: both add overhead."""
    env = bench.env
    old = sysctl_get("kernel.bpf_stats_enabled")
    env.remember("sysctl", "kernel.bpf_stats_enabled=%s" % old)
    perf_ok = shutil.which("perf") is not None
    targets = [c(env, bench.data, bench.o) for c in TARGETS if c.key in bench.o.targets]
    for t in targets:
        if "A" not in t.mixes:
            continue
        try:
            start_target(bench, t, "100")
            ids = t.kernel_progs()
            sysctl_set("kernel.bpf_stats_enabled", 1)
            try:
                rec = throughput_run(bench, t, "100", "A", -1, bench.o.duration,
                                     bench.rate.get(t.key, bench.o.offered), profile_ids=ids)
            finally:
                sysctl_set("kernel.bpf_stats_enabled", old)
            prof = {"bpf": rec.get("bpf"), "qps_with_stats": rec["qps"],
                    "cpu_us_per_answer": rec["cpu_us_per_answer"]}
            if perf_ok:
                pdata = os.path.join(env.state, "perf-%s.data" % t.key)
                # only the server's tasks: its threads and the host end's NAPI kthread
                tids = env.napi_threads(env.hveth)
                for pid in t.pids():
                    for p in proc_tree(pid):
                        try:
                            tids += [int(x) for x in os.listdir("/proc/%d/task" % p)]
                        except OSError:
                            pass
                perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999",
                                         "-t", ",".join(str(x) for x in tids), "-o", pdata,
                                         "--", "sleep", str(bench.o.duration + 1)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                env.remember("pids", perf.pid)
                time.sleep(0.3)
                kxdpgun(env, bench.data.queries[("100", "A")][0], bench.o.duration,
                        bench.rate.get(t.key, bench.o.offered))
                try:
                    perf.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    perf.kill()
                rep = run(["perf", "report", "-i", pdata, "--stdio", "--no-children",
                           "--sort", "dso,sym", "--percent-limit", "1.5"], check=False,
                          timeout=120)
                top = [ln.rstrip() for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")]
                with open(os.path.join(bench.out, "logs", "perf-%s.txt" % t.key), "w") as f:
                    f.write(rep)
                prof["perf_top"] = top[:14]
                os.unlink(pdata)
            bench.results["profile"][t.key] = prof
            log("  profile %-12s %s" % (t.key, json.dumps(prof.get("bpf"))))
        except HarnessError as e:
            bench.results["notes"].append("profile of %s failed: %s" % (t.key, str(e)[:300]))
            log("profile of %s failed: %s" % (t.key, e))
        finally:
            t.stop()
    bench.save()


def bpf_stats_compare(bench):
    """ns per run (run_time_ns / run_cnt over one kxdpgun run) and answers/s of each of
    BPF_STATS_CASES with kernel.bpf_stats_enabled=1, in bench.o.rounds rounds whose order
    rotates; results["bpf_stats"] holds every run and the medians (the last case is the
    reference the others are divided by)."""
    env = bench.env
    old = sysctl_get("kernel.bpf_stats_enabled")
    env.remember("sysctl", "kernel.bpf_stats_enabled=%s" % old)
    runs = []
    n = len(BPF_STATS_CASES)
    for rnd in range(bench.o.rounds):
        order = BPF_STATS_CASES[rnd % n:] + BPF_STATS_CASES[:rnd % n]
        for case, cls, dataset, mix, prog in order:
            t = cls(env, bench.data, bench.o)
            try:
                start_target(bench, t, dataset)
                ids = t.kernel_progs()
                sysctl_set("kernel.bpf_stats_enabled", 1)
                try:
                    rec = throughput_run(bench, t, dataset, mix, rnd, bench.o.duration,
                                         bench.o.offered, profile_ids=ids)
                finally:
                    sysctl_set("kernel.bpf_stats_enabled", old)
            finally:
                t.stop()
            p = (rec.get("bpf") or {}).get(prog) or {}
            r = {"case": case, "round": rnd, "program": prog, "ns_per_run": p.get("ns_per_run"),
                 "runs": p.get("runs", 0), "qps": rec["qps"], "rcodes": rec["rcodes"],
                 "kernel_frac": rec.get("kernel_frac"), "load1": rec["load1"]}
            runs.append(r)
            log("  round %d %-38s %s ns/run, %8.0f answers/s, rcodes %s%s, load %.2f" % (
                rnd + 1, case, "%.0f" % r["ns_per_run"] if r["ns_per_run"] else "–", r["qps"],
                r["rcodes"], ", kernel %.0f%%" % (100 * r["kernel_frac"])
                if r["kernel_frac"] is not None else "", r["load1"]))
    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    ref = {r["round"]: r["ns_per_run"] for r in runs if r["case"] == BPF_STATS_CASES[-1][0]}
    summary = []
    for case, _cls, _ds, _mix, prog in BPF_STATS_CASES:
        rs = [r for r in runs if r["case"] == case]
        summary.append({"case": case, "program": prog,
                        "ns_per_run": med([r["ns_per_run"] for r in rs if r["ns_per_run"]]),
                        # the same round's reference: the noise between rounds cancels
                        "ratio_to_ref": med([r["ns_per_run"] / ref[r["round"]] for r in rs
                                             if r["ns_per_run"] and ref.get(r["round"])]),
                        "qps": med([r["qps"] for r in rs]),
                        "kernel_frac": med([r["kernel_frac"] for r in rs
                                            if r["kernel_frac"] is not None])})
    for m in summary:
        log("  median %-37s %s ns/run (%s of the reference's), %8.0f answers/s" % (
            m["case"], "%.0f" % m["ns_per_run"] if m["ns_per_run"] else "–",
            "%.2fx" % m["ratio_to_ref"] if m["ratio_to_ref"] else "–", m["qps"]))
    bench.results["bpf_stats"] = {"runs": runs, "medians": summary}
    bench.save()
