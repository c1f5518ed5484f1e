#!/usr/bin/env python3
"""fabdns benchmarks side by side with Knot DNS and unbound (the engine behind bench/run).

Phases (see docs/benchmarks.md): throughput (kxdpgun, interleaved rounds), latency (dnsperf at a
fixed rate), a profile pass (BPF run-time stats, perf), sync scale (1k/10k/100k GlobalServices
from a file and from the hub stand-in), and bench/micro.sh when present. Output: a timestamped
directory under bench/results/ (raw JSON, markdown, PNG plots, logs) and bench/results/latest.

This file holds the options, the run's results and the order of the phases; the parts live
beside it: topology.py (namespaces, veths, NAPI, processes), targets.py (the servers),
data.py and gen.py (data sets), load.py (kxdpgun, dnsperf, probes), measure.py (CPU, BPF stats,
the daemon's metrics), rounds.py, profiling.py and sync.py (the phases; hub_standin.py feeds the
hub source), report.py (tables and plots). Every process started is recorded in the state
directory so that bench/harness/cleanup.sh (run by bench/run on EXIT) can stop it even if this
program is killed.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from common import CLI_IP, REPO, SRV_IP, HarnessError, log, run
from data import Data
from measure import LoadWatch, loadavg, wait_quiet
from profiling import bpf_stats_compare, profile
from rounds import rounds
from sync import sync_scale
from targets import TARGETS
from topology import Env


class Bench:
    """One run: its options, topology, data sets, offered rates and results (raw.json)."""

    def __init__(self, opts, env, outdir):
        self.o = opts
        self.env = env
        self.out = outdir
        self.data = None
        self.rate = {}
        self.results = {"throughput": [], "latency": [], "profile": {}, "sync": [], "calibration": [],
                        "bpf_stats": None, "meta": {}, "micro": None, "notes": []}

    def micro(self):
        script = os.path.join(REPO, "bench", "micro.sh")
        if not os.path.exists(script):
            self.results["micro"] = {"present": False}
            return
        log("running bench/micro.sh")
        try:
            p = subprocess.run(["bash", script], capture_output=True, text=True, timeout=600,
                               cwd=REPO)
            self.results["micro"] = {"present": True, "rc": p.returncode, "stdout": p.stdout[-20000:],
                                     "stderr": p.stderr[-3000:]}
        except subprocess.TimeoutExpired:
            self.results["micro"] = {"present": True, "rc": None, "stdout": "", "stderr": "timed out"}

    def save(self):
        with open(os.path.join(self.out, "raw.json"), "w") as f:
            json.dump(self.results, f, indent=1, default=str)


def meta(opts, env):
    def first_line(cmd):
        try:
            return run(cmd, check=False, timeout=10).strip().splitlines()[0]
        except (HarnessError, IndexError, FileNotFoundError):
            return "?"

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        cpu = m.group(1) if m else cpu
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": os.uname().release, "cpu": cpu, "ncpu": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "server_cpu": env.server_cpu, "client_cpu": env.client_cpu,
        "fabdnsd": opts.fabdnsd,
        "git": first_line(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "knotd": first_line(["knotd", "-V"]), "kxdpgun": first_line(["kxdpgun", "-V"]),
        "unbound": "unbound " + first_line(["unbound", "-V"]).replace("Version ", ""),
        "dnsperf": (run(["dnsperf", "-h"], check=False) + "").split("Version")[-1].strip() or "?",
        "rounds": opts.rounds, "duration_s": opts.duration, "offered_qps": opts.offered,
        "lat_qps": opts.lat_qps, "lat_duration_s": opts.lat_duration, "smoke": opts.smoke,
    }


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="a few seconds: tiny load, one round, 3 targets; checks the harness only")
    ap.add_argument("--state", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--fabdnsd", default=None, help="fabdnsd binary (default: BUILD_DIR's)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--out", default=None, help="results directory (default: bench/results/<stamp>; "
                    "smoke: a temporary directory)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=2, help="seconds per kxdpgun run")
    ap.add_argument("--offered", type=int, default=4000000,
                    help="kxdpgun -Q for in-kernel paths (more than kxdpgun can send)")
    ap.add_argument("--sweep", default="60000,120000,240000",
                    help="offered rates tried for socket servers (plus --offered); '' = no sweep")
    ap.add_argument("--lat-qps", type=int, default=20000, help="dnsperf -Q")
    ap.add_argument("--lat-duration", type=int, default=2)
    ap.add_argument("--targets", default=",".join(c.key for c in TARGETS))
    ap.add_argument("--mixes", default="A,A+EDNS,AAAA,90/10 miss")
    ap.add_argument("--lat-mixes", default="A,90/10 miss")
    ap.add_argument("--datasets", default="100,10k")
    ap.add_argument("--scale", default="1000,10000,100000", help="sync-scale sizes ('' skips)")
    ap.add_argument("--no-hub", dest="hub", action="store_false", help="sync scale from files only")
    ap.add_argument("--hub-interval", default="1s")
    ap.add_argument("--changes", type=int, default=2, help="changes timed per sync-scale size")
    ap.add_argument("--idle-window", type=float, default=3.0)
    ap.add_argument("--only", choices=["bpf-stats"], default=None,
                    help="bpf-stats: only fabdns XDP's ns per run (positive A and NODATA hits) "
                    "beside the reference responder's, kernel.bpf_stats_enabled=1, --rounds "
                    "interleaved rounds (~1 min)")
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--no-micro", dest="micro", action="store_false")
    ap.add_argument("--nice", type=int, default=-20,
                    help="nice value of servers, NAPI kthreads and load generators (0: unchanged)")
    ap.add_argument("--quiet-load", type=float, default=1.0,
                    help="before the rounds, wait until the 1-min load average is below this ...")
    ap.add_argument("--quiet-wait", type=int, default=0, help="... for at most this many seconds")
    ap.add_argument("--server-cpu", type=int, default=None)
    ap.add_argument("--client-cpu", type=int, default=None)
    o = ap.parse_args(argv)
    if o.smoke:
        o.rounds, o.duration, o.offered = 1, 1, 2000
        o.lat_qps, o.lat_duration = 500, 1
        o.targets = "ref,fabdns-xdp,fabdns-user"
        o.mixes, o.lat_mixes, o.datasets = "A", "A", "100"
        o.scale, o.hub, o.changes, o.idle_window = "200", False, 1, 0.5
        o.profile, o.micro, o.quiet_wait, o.sweep = False, False, 0, ""
    if o.only == "bpf-stats":
        o.targets, o.scale, o.profile, o.micro = "ref,fabdns-xdp", "", False, False
    o.targets = [x for x in o.targets.split(",") if x]
    o.mixes = [x for x in o.mixes.split(",") if x]
    o.lat_mixes = [x for x in o.lat_mixes.split(",") if x]
    o.datasets = [x for x in o.datasets.split(",") if x]
    o.scale = [int(x) for x in o.scale.split(",") if x]
    o.sweep = [int(x) for x in o.sweep.split(",") if x]
    if o.fabdnsd is None:
        o.fabdnsd = os.path.join(o.build_dir, "daemon", "app", "fabdnsd")
    return o


def main(argv):
    # SIGTERM (bench/run passes Ctrl-C and kills on as SIGTERM): unwind, so that teardown runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    o = parse_args(argv)
    ncpu = os.cpu_count() or 1
    server_cpu = o.server_cpu if o.server_cpu is not None else (1 if ncpu > 1 else 0)
    client_cpu = o.client_cpu if o.client_cpu is not None else 0
    missing = [t for t in ("kxdpgun", "dnsperf", "bpftool", "clang", "nsenter", "taskset", "ip")
               if shutil.which(t) is None]
    if "knot-sock" in o.targets or "knot-xdp" in o.targets:
        missing += [t for t in ("knotd",) if shutil.which(t) is None]
    if "unbound" in o.targets:
        missing += [t for t in ("unbound",) if shutil.which(t) is None]
    if not os.access(o.fabdnsd, os.X_OK):
        missing.append(o.fabdnsd)
    if missing:
        log("missing: %s" % ", ".join(missing))
        return 77
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if o.out:
        outdir = o.out
    elif o.smoke:
        outdir = os.path.join(o.state, "results-smoke")
    else:
        outdir = os.path.join(REPO, "bench", "results", stamp)
    os.makedirs(os.path.join(outdir, "logs"), exist_ok=True)
    os.makedirs(os.path.join(o.state, "logs"), exist_ok=True)
    env = Env(o.state, server_cpu, client_cpu, o.nice)
    b = Bench(o, env, outdir)
    watch = LoadWatch()
    watch.start()
    t_start = time.monotonic()
    load_before = loadavg()
    ok = False
    try:
        b.results["meta"] = meta(o, env)
        b.results["meta"]["load_before"] = load_before
        log("building BPF objects, generating data sets")
        env.build_bpf()
        b.data = Data(o.state)
        log("topology: %s (%s, %s) <-> %s (%s, %s); server CPU %d, client CPU %d" % (
            env.srv_ns, env.hveth, SRV_IP, env.cli_ns, env.cveth, CLI_IP, server_cpu, client_cpu))
        env.setup()
        if o.quiet_wait > 0:
            b.results["meta"]["quiet_wait_s"] = wait_quiet(o.quiet_load, o.quiet_wait)
            b.results["meta"]["load_at_start"] = loadavg()
        if o.only == "bpf-stats":
            log("bpf_stats comparison, %d rounds" % o.rounds)
            bpf_stats_compare(b)
        else:
            rounds(b)
        if o.profile:
            log("profile pass (bpf_stats, perf)")
            profile(b)
        if o.scale:
            log("sync scale: %s" % o.scale)
            sync_scale(b)
        for p in list(env.procs):
            env.stop(p)
        env.teardown()
        if o.micro:
            b.micro()
        ok = True
    except HarnessError as e:
        log("error: %s" % e)
        b.results["notes"].append("error: %s" % str(e)[:500])
    finally:
        watch.stop_ev.set()
        b.results["meta"]["load_after"] = loadavg()
        b.results["meta"]["load_samples"] = watch.samples
        b.results["meta"]["elapsed_s"] = round(time.monotonic() - t_start, 1)
        # keep the server/daemon logs with the results
        for p in list(env.procs):
            env.stop(p)
        env.teardown()
        try:
            for f in os.listdir(os.path.join(o.state, "logs")):
                shutil.copy(os.path.join(o.state, "logs", f), os.path.join(outdir, "logs", f))
        except OSError:
            pass
        b.save()
    import report  # noqa: E402
    report.write(b.results, outdir)
    if not o.smoke and not o.out and not o.only:  # latest stays the last full run
        latest = os.path.join(REPO, "bench", "results", "latest")
        if os.path.islink(latest) or os.path.exists(latest):
            os.unlink(latest)
        os.symlink(stamp, latest)
    log("results: %s" % outdir)
    if o.smoke:
        return smoke_verdict(b.results) if ok else 1
    return 0 if ok else 1


def smoke_verdict(res):
    """The smoke test asserts that the harness works, never a speed: every target answered
    something, latency was measured, and the sync-scale step produced its numbers."""
    bad = []
    seen = set()
    for r in res["throughput"]:
        seen.add(r["target"])
        if r["qps"] <= 0:
            bad.append("%s %s: no answers" % (r["target"], r["mix"]))
    for t in ("ref", "fabdns-xdp", "fabdns-user"):
        if t not in seen:
            bad.append("%s: not measured" % t)
    if not any(r["samples"] > 0 for r in res["latency"]):
        bad.append("dnsperf: no latency samples")
    if not res["sync"] or res["sync"][0].get("first_answer_s") is None:
        bad.append("sync scale: no first answer")
    for b in bad:
        log("smoke: " + b)
    if not bad:
        log("smoke: harness OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
