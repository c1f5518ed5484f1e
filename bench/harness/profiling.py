"""The profile pass: BPF run-time stats (ns per program run) and perf samples of the server's
tasks, one target at a time, kept out of the timed rounds because both add overhead."""
import json
import os
import shutil
import subprocess
import time

from common import HarnessError, log, run
from load import kxdpgun
from measure import proc_tree, sysctl_get, sysctl_set
from rounds import start_target, throughput_run
from targets import TARGETS


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

# ----------------------------------------------------------------------------- sync scale
