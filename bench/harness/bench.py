#!/usr/bin/env python3
"""fabdns benchmarks side by side with Knot DNS and unbound (the engine behind bench/run).

Topology: two network namespaces made here, joined by one veth pair. The server namespace holds
the "host end" (fabdns, Knot DNS, unbound or the reference responder answer on 198.18.0.1, an
RFC 2544 benchmarking address); the client namespace holds the peer end and the load generators.
No traffic leaves these namespaces. NAPI is threaded on both ends; the server's NAPI kthread and
server processes run on one CPU, the load generator and the client's NAPI kthread on the other.

Phases (see docs/benchmarks.md): throughput (kxdpgun, interleaved rounds), latency (dnsperf at a
fixed rate), a profile pass (BPF run-time stats, perf), sync scale (1k/10k/100k GlobalServices
from a file and from the hub stand-in), and bench/micro.sh when present. Output: a timestamped
directory under bench/results/ (raw JSON, markdown, PNG plots, logs) and bench/results/latest.

Every process started is recorded in the state directory so that bench/harness/cleanup.sh (run
by bench/run on EXIT) can stop it even if this program is killed.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import string
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import gen  # noqa: E402

SRV_IP = "198.18.0.1"
CLI_IP = "198.18.0.2"
PORT = 53


class HarnessError(RuntimeError):
    pass


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, check=True, timeout=60, input_text=None):
    """Runs a command (bounded by `timeout`), returns stdout; raises HarnessError on failure."""
    try:
        p = subprocess.run(cmd, input=input_text, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HarnessError("timed out after %ss: %s" % (timeout, " ".join(cmd)))
    if check and p.returncode != 0:
        raise HarnessError("failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout[-2000:],
                                                     p.stderr[-2000:]))
    return p.stdout


# --------------------------------------------------------------------------------------------
# Environment: namespaces, veths, XDP_PASS programs, threaded NAPI, CPU pinning.


class Env:
    def __init__(self, state, server_cpu, client_cpu, nice=0):
        self.state = state
        self.nice = nice
        tag = "%04d" % (os.getpid() % 10000)
        self.tag = tag
        self.srv_ns = "fbb%ss" % tag
        self.cli_ns = "fbb%sc" % tag
        self.hveth = "fbb%sh" % tag  # host (server) end
        self.cveth = "fbb%sp" % tag  # peer (client) end
        self.pin = "/sys/fs/bpf/fbb%s" % tag
        self.server_cpu = server_cpu
        self.client_cpu = client_cpu
        self.procs = []
        self.bpf_dir = os.path.join(state, "bpf")
        os.makedirs(self.bpf_dir, exist_ok=True)

    # state registry (read by cleanup.sh)
    def remember(self, kind, value):
        with open(os.path.join(self.state, kind), "a") as f:
            f.write("%s\n" % value)

    def srv(self, cmd):
        return ["nsenter", "--net=/run/netns/%s" % self.srv_ns] + cmd

    def cli(self, cmd):
        return ["nsenter", "--net=/run/netns/%s" % self.cli_ns] + cmd

    def build_bpf(self):
        for name in ("xdp_pass", "ref_responder"):
            src = os.path.join(HERE, "bpf", name + ".bpf.c")
            out = os.path.join(self.bpf_dir, name + ".o")
            run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/%s-linux-gnu" % os.uname().machine,
                 "-Wno-unused-command-line-argument", "-c", src, "-o", out], timeout=120)

    def setup(self):
        self.remember("pins", self.pin)
        os.makedirs(self.pin, exist_ok=True)
        for ns in (self.srv_ns, self.cli_ns):
            self.remember("netns", ns)
            run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", self.hveth, "type", "veth", "peer", "name", self.cveth])
        run(["ip", "link", "set", self.hveth, "netns", self.srv_ns])
        run(["ip", "link", "set", self.cveth, "netns", self.cli_ns])
        for ns, dev, ip in ((self.srv_ns, self.hveth, SRV_IP), (self.cli_ns, self.cveth, CLI_IP)):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % dev])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        hmac = self.mac(self.srv_ns, self.hveth)
        cmac = self.mac(self.cli_ns, self.cveth)
        run(["ip", "-n", self.srv_ns, "neigh", "replace", CLI_IP, "lladdr", cmac, "dev", self.hveth,
             "nud", "permanent"])
        run(["ip", "-n", self.cli_ns, "neigh", "replace", SRV_IP, "lladdr", hmac, "dev", self.cveth,
             "nud", "permanent"])
        run(["bpftool", "prog", "load", os.path.join(self.bpf_dir, "xdp_pass.o"),
             self.pin + "/xdp_pass", "type", "xdp"])
        self.host_xdp("pass")
        self.client_xdp_pass()
        for ns, dev in ((self.srv_ns, self.hveth), (self.cli_ns, self.cveth)):
            run(["ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /sys/class/net/%s/threaded" % dev])
        self.pin_napi()

    @staticmethod
    def mac(ns, dev):
        out = run(["ip", "-n", ns, "-j", "link", "show", dev])
        return json.loads(out)[0]["address"]

    def host_xdp(self, what):
        """'pass': our XDP_PASS program on the host end; 'none': nothing (a target attaches its
        own); a path: that pinned program."""
        if what == "none":
            run(self.srv(["bpftool", "net", "detach", "xdpdrv", "dev", self.hveth]), check=False)
            run(self.srv(["bpftool", "net", "detach", "xdpgeneric", "dev", self.hveth]), check=False)
            return
        prog = self.pin + "/xdp_pass" if what == "pass" else what
        run(self.srv(["bpftool", "net", "attach", "xdpdrv", "pinned", prog, "dev", self.hveth,
                      "overwrite"]))

    def client_xdp_pass(self):
        run(self.cli(["bpftool", "net", "attach", "xdpdrv", "pinned", self.pin + "/xdp_pass",
                      "dev", self.cveth, "overwrite"]))

    def threaded_on(self):
        for ns, dev in ((self.srv_ns, self.hveth), (self.cli_ns, self.cveth)):
            run(["ip", "netns", "exec", ns, "sh", "-c",
                 "cat /sys/class/net/%s/threaded" % dev], check=False)

    def napi_threads(self, dev):
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("napi/%s-" % dev):
                out.append(int(pid))
        return out

    def pin_napi(self):
        for dev, cpu in ((self.hveth, self.server_cpu), (self.cveth, self.client_cpu)):
            for pid in self.napi_threads(dev):
                try:
                    os.sched_setaffinity(pid, {cpu})
                    os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                except OSError as e:
                    log("cannot pin napi thread %d: %s" % (pid, e))

    def napi_realtime(self, on):
        """SCHED_FIFO for the NAPI kthreads of both ends (latency runs only: at a fixed rate far
        below saturation they use little CPU, and without it their wake-ups queue behind other
        work on a shared machine, which is not the server's latency). Off: SCHED_OTHER + nice."""
        for dev in (self.hveth, self.cveth):
            for pid in self.napi_threads(dev):
                try:
                    if on:
                        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(50))
                    else:
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
                        os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                except OSError as e:
                    log("cannot set the policy of napi thread %d: %s" % (pid, e))

    def niced(self, cmd):
        return (["nice", "-n", str(self.nice)] if self.nice else []) + cmd

    def counters(self):
        """Packet counters of both veth ends (ip -s link): what the server side sent onto the
        wire (tx packets) and could not hand to the client's ring (tx dropped)."""
        out = {}
        for side, ns, dev in (("host", self.srv_ns, self.hveth), ("client", self.cli_ns, self.cveth)):
            st = json.loads(run(["ip", "-n", ns, "-s", "-j", "link", "show", dev]))[0]["stats64"]
            out[side] = {"tx": st["tx"]["packets"], "tx_drop": st["tx"]["dropped"],
                         "rx": st["rx"]["packets"], "rx_drop": st["rx"]["dropped"]}
        return out

    def start(self, cmd, name, ns="srv", cpu=None, env=None, stdin=None, nice=True):
        """Starts a long-running process in a namespace, pinned to a CPU; output to a log."""
        logf = open(os.path.join(self.state, "logs", name + ".log"), "ab")
        full = (["taskset", "-c", str(cpu)] if cpu is not None else []) + cmd
        if nice:
            full = self.niced(full)
        full = self.srv(full) if ns == "srv" else self.cli(full) if ns == "cli" else full
        p = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, env=env,
                             stdin=stdin if stdin is not None else subprocess.DEVNULL)
        self.remember("pids", p.pid)
        p.logfile = logf
        p.logpath = logf.name
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=10):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        p.logfile.close()
        if p in self.procs:
            self.procs.remove(p)

    def teardown(self):
        for p in list(self.procs):
            try:
                self.stop(p, wait=5)
            except Exception as e:  # keep tearing down
                log("stop: %s" % e)
        for ns in (self.cli_ns, self.srv_ns):
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.pin, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# CPU accounting: run time (ns) of the server's tasks and its NAPI kthread, and /proc/stat.


def task_ns(pid):
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def proc_tree(pid):
    """pid and its descendants (knotd/unbound do not fork here, but be safe)."""
    out = [pid]
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                for c in f.read().split():
                    out += proc_tree(int(c))
    except OSError:
        pass
    return out


def cpu_stat():
    """{cpu index: (busy jiffies, total jiffies)}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                v = [int(x) for x in parts[1:]]
                idle = v[3] + v[4]
                out[int(parts[0][3:])] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


class CpuMeter:
    def __init__(self, env, pids):
        self.env = env
        self.pids = pids

    def snap(self):
        ns = 0
        for pid in self.pids:
            for p in proc_tree(pid):
                ns += task_ns(p)
        napi = sum(task_ns(t) for t in self.env.napi_threads(self.env.hveth))
        return {"proc_ns": ns, "napi_ns": napi, "stat": cpu_stat(), "t": time.monotonic()}

    @staticmethod
    def diff(a, b, cpu):
        busy = b["stat"][cpu][0] - a["stat"][cpu][0]
        tot = b["stat"][cpu][1] - a["stat"][cpu][1]
        return {"proc_s": (b["proc_ns"] - a["proc_ns"]) / 1e9,
                "napi_s": (b["napi_ns"] - a["napi_ns"]) / 1e9,
                "cpu_busy_frac": busy / tot if tot else 0.0,
                "wall_s": b["t"] - a["t"]}


# --------------------------------------------------------------------------------------------
# Targets


class Target:
    key = ""
    label = ""
    host_xdp = "pass"
    kernel = False  # answers in the kernel (has a BPF program to profile)
    user_space = False  # answers from a socket: its peak is found by a rate sweep
    mixes = ("A", "A+EDNS", "AAAA", "90/10 miss")

    def __init__(self, env, data, opts):
        self.env = env
        self.data = data
        self.opts = opts
        self.proc = None

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def start(self, dataset):
        raise NotImplementedError

    def stop(self):
        if self.proc:
            self.env.stop(self.proc)
            self.proc = None

    def kernel_progs(self):
        """ids of the BPF programs answering on the host end (for bpf_stats)."""
        out = []
        try:
            info = json.loads(run(self.env.srv(["bpftool", "net", "show", "dev", self.env.hveth,
                                                "-j"])))
            for section in info:
                for x in section.get("xdp", []) + section.get("tc", []) + section.get("tcx", []):
                    pid = x.get("id", x.get("prog_id"))
                    if pid is not None:
                        out.append(pid)
        except (HarnessError, ValueError):
            pass
        return out


class Fabdns(Target):
    def kernel_progs(self):
        """fabdns attaches through pinned links (tcx for tc, which bpftool 7.1's `net show`
        does not list): the program ids come from <pin_path>/link_<iface>."""
        link = "%s/fabdns/link_%s" % (self.env.pin, self.env.hveth)
        if os.path.exists(link):
            try:
                d = json.loads(run(["bpftool", "link", "show", "pinned", link, "-j"]))
                return [d["prog_id"]] + [i for i in super().kernel_progs() if i != d["prog_id"]]
            except (HarnessError, ValueError, KeyError):
                pass
        return super().kernel_progs()

    mode = None  # "xdp" | "tc" | None (user space only)

    def config(self, dataset, source=None, capacity=262144):
        env = self.env
        tmpl = string.Template(open(os.path.join(HERE, "templates", "fabdns.yaml.in")).read())
        if source is None:
            source = "  kind: file\n  file:\n    path: %s" % self.data.manifest(dataset)
        attach = ("    - iface: %s\n      mode: %s" % (env.hveth, self.mode)) if self.mode else "    []"
        text = tmpl.substitute(listen="%s:%d" % (SRV_IP, PORT), source=source,
                               datapath_enabled="true" if self.mode else "false",
                               pin_path=env.pin + "/fabdns", capacity=capacity, attach=attach)
        path = os.path.join(env.state, "fabdns-%s.yaml" % (self.mode or "user"))
        with open(path, "w") as f:
            f.write(text)
        return path

    def launch(self, cfg, logname=None):
        self.proc = self.env.start([self.opts.fabdnsd, "--config", cfg, "--log-level", "info"],
                                   logname or "fabdnsd-%s" % (self.mode or "user"),
                                   cpu=self.env.server_cpu)
        return self.proc

    def start(self, dataset):
        self.launch(self.config(dataset))

    def stop(self):
        super().stop()
        shutil.rmtree(self.env.pin + "/fabdns", ignore_errors=True)

    def kernel_stats(self):
        path = self.env.pin + "/fabdns/stats"
        if not self.mode or not os.path.exists(path):
            return None
        try:
            d = json.loads(run(["bpftool", "map", "dump", "pinned", path, "-j"]))
        except (HarnessError, ValueError):
            return None
        out = {}
        for e in d:
            f = e.get("formatted", {})
            out[f.get("key")] = sum(v["value"] for v in f.get("values", []))
        return out


class FabdnsXdp(Fabdns):
    key, label, mode, host_xdp, kernel = "fabdns-xdp", "fabdns XDP", "xdp", "none", True


class FabdnsTc(Fabdns):
    key, label, mode, host_xdp, kernel = "fabdns-tc", "fabdns TC", "tc", "pass", True


class FabdnsUser(Fabdns):
    key, label, mode, host_xdp, user_space = "fabdns-user", "fabdns user space", None, "pass", True


class Knot(Target):
    xdp = False

    def start(self, dataset):
        env = self.env
        d = os.path.join(env.state, "knot-%s" % ("xdp" if self.xdp else "sock"))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "db"))
        shutil.copy(self.data.zone(dataset), os.path.join(d, "global.zone"))
        tmpl = string.Template(open(os.path.join(HERE, "templates", "knot.conf.in")).read())
        xdp = ("xdp:\n    listen: %s@%d\n    udp: on\n    tcp: off\n" % (env.hveth, PORT)
               if self.xdp else "")
        listen = "127.0.0.1@%d" % PORT if self.xdp else "%s@%d" % (SRV_IP, PORT)
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(tmpl.substitute(dir=d, listen=listen, xdp=xdp))
        self.proc = env.start(["knotd", "-c", os.path.join(d, "knot.conf")],
                              "knotd-%s" % ("xdp" if self.xdp else "sock"), cpu=env.server_cpu)


class KnotSock(Knot):
    key, label, host_xdp, user_space = "knot-sock", "Knot sockets", "pass", True


class KnotXdp(Knot):
    key, label, host_xdp, xdp, kernel = "knot-xdp", "Knot AF_XDP", "none", True, False


class Unbound(Target):
    key, label, host_xdp, user_space = "unbound", "unbound", "pass", True

    def start(self, dataset):
        env = self.env
        d = os.path.join(env.state, "unbound")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(self.data.unbound(dataset), os.path.join(d, "local-data.conf"))
        tmpl = string.Template(open(os.path.join(HERE, "templates", "unbound.conf.in")).read())
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write(tmpl.substitute(dir=d, listen_ip=SRV_IP))
        self.proc = env.start(["unbound", "-d", "-c", os.path.join(d, "unbound.conf")], "unbound",
                              cpu=env.server_cpu)


class Reference(Target):
    key, label, kernel = "ref", "reference XDP (A only)", True
    mixes = ("A", "A+EDNS")

    def start(self, dataset):
        env = self.env
        d = env.pin + "/ref"
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        run(["bpftool", "prog", "loadall", os.path.join(env.bpf_dir, "ref_responder.o"), d + "/prog",
             "pinmaps", d + "/maps"])
        run(["bpftool", "batch", "file", self.data.ref_batch(dataset, d + "/maps/ref_names")],
            timeout=300)
        self.host_xdp = d + "/prog/ref_xdp"
        env.host_xdp(self.host_xdp)

    def stop(self):
        self.env.host_xdp("pass")
        shutil.rmtree(self.env.pin + "/ref", ignore_errors=True)


TARGETS = [Reference, FabdnsXdp, FabdnsTc, FabdnsUser, KnotXdp, KnotSock, Unbound]


class Data:
    """Generated files per data set ("100", "10k") in the state directory."""

    SIZES = {"100": 100, "10k": 10000}

    def __init__(self, state, ttl=5):
        self.dir = os.path.join(state, "data")
        os.makedirs(self.dir, exist_ok=True)
        self.ttl = ttl
        self.queries = {}
        for ds, n in self.SIZES.items():
            gen.write_manifests(self.manifest(ds), n)
            gen.write_zone(self.zone(ds), n, ttl)
            gen.write_unbound_data(self.unbound(ds), n, ttl)
            for mix, (qs, edns) in gen.query_sets(n).items():
                slug = mix.replace("/", "-").replace("+", "-").replace(" ", "-")
                kx = os.path.join(self.dir, "kx-%s-%s.txt" % (ds, slug))
                dp = os.path.join(self.dir, "dp-%s-%s.txt" % (ds, slug))
                gen.write_queries(kx, qs, edns)
                gen.write_queries(dp, qs, False)
                self.queries[(ds, mix)] = (kx, dp, edns)
        self.last = {ds: (gen.name(n - 1), gen.v4(n - 1)) for ds, n in self.SIZES.items()}

    def manifest(self, ds):
        return os.path.join(self.dir, "gs-%s.yaml" % ds)

    def zone(self, ds):
        return os.path.join(self.dir, "global-%s.zone" % ds)

    def unbound(self, ds):
        return os.path.join(self.dir, "unbound-%s.conf" % ds)

    def ref_batch(self, ds, map_pin):
        path = os.path.join(self.dir, "ref-%s.batch" % ds)
        gen.write_ref_batch(path, self.SIZES[ds], map_pin, self.ttl)
        return path


# --------------------------------------------------------------------------------------------
# Load generators


def probe(env, name, expect, qtype="A", timeout=30, interval=0.01):
    out = run(env.cli(["/usr/bin/python3", os.path.join(HERE, "dnsprobe.py"), "--server", SRV_IP,
                       "--name", name, "--type", qtype, "--expect", expect, "--timeout",
                       str(timeout), "--interval", str(interval)]), check=False, timeout=timeout + 30)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False}


KX_TOTAL = re.compile(r"total (queries|replies):\s+(\d+) \((\d+) pps\)")
KX_RCODE = re.compile(r"responded (\w+):\s+(\d+)")


def kxdpgun(env, qfile, duration, qps):
    cmd = env.cli(env.niced(["taskset", "-c", str(env.client_cpu), "kxdpgun", "-F", str(env.client_cpu),
                   "-t", str(duration), "-Q", str(qps), "-I", env.cveth, "-i", qfile, SRV_IP]))
    out = run(cmd, timeout=duration + 30)
    res = {"sent": 0, "replies": 0, "sent_pps": 0, "replies_pps": 0, "rcodes": {}}
    for m in KX_TOTAL.finditer(out):
        if m.group(1) == "queries":
            res["sent"], res["sent_pps"] = int(m.group(2)), int(m.group(3))
        else:
            res["replies"], res["replies_pps"] = int(m.group(2)), int(m.group(3))
    for m in KX_RCODE.finditer(out):
        res["rcodes"][m.group(1)] = int(m.group(2))
    if not res["sent"]:
        raise HarnessError("kxdpgun printed no totals:\n" + out[-1500:])
    res["duration"] = duration
    return res


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def dnsperf(env, dfile, duration, qps, edns, outpath):
    cmd = env.cli(env.niced(["taskset", "-c", str(env.client_cpu), "dnsperf", "-s", SRV_IP, "-d",
                             dfile, "-l", str(duration), "-Q", str(qps), "-c", "1", "-q", "1000",
                             "-t", "1", "-v"] + (["-e"] if edns else [])))
    out = run(cmd, timeout=duration + 30)
    with open(outpath, "w") as f:  # the summary; per-query lines only as percentiles below
        f.write("\n".join(ln for ln in out.splitlines() if not ln.startswith("> ")) + "\n")
    lat = []
    rc = {}
    for line in out.splitlines():
        if line.startswith("> "):
            parts = line.split()
            if len(parts) >= 5:
                try:
                    lat.append(float(parts[-1]))
                    rc[parts[1]] = rc.get(parts[1], 0) + 1
                except ValueError:
                    pass
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    done = re.search(r"Queries completed:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    lat.sort()
    us = lambda v: round(v * 1e6, 1) if v is not None else None  # noqa: E731
    return {"sent": int(sent.group(1)) if sent else 0,
            "completed": int(done.group(1)) if done else 0,
            "lost": int(lost.group(1)) if lost else 0,
            "rcodes": rc, "samples": len(lat),
            "p50_us": us(percentile(lat, 50)), "p90_us": us(percentile(lat, 90)),
            "p99_us": us(percentile(lat, 99)), "p999_us": us(percentile(lat, 99.9)),
            "max_us": us(lat[-1] if lat else None),
            "mean_us": us(statistics.fmean(lat) if lat else None)}


# --------------------------------------------------------------------------------------------
# BPF run-time stats


def prog_stats(ids):
    out = {}
    for i in ids:
        try:
            d = json.loads(run(["bpftool", "prog", "show", "id", str(i), "-j"]))
            out[i] = {"name": d.get("name"), "type": d.get("type"),
                      "run_time_ns": d.get("run_time_ns", 0), "run_cnt": d.get("run_cnt", 0)}
        except (HarnessError, ValueError):
            pass
    return out


def sysctl_get(key):
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


def sysctl_set(key, value):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(value))


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class LoadWatch(threading.Thread):
    """Samples the 1-minute load average every 5 s (the machine is shared)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.wait(5):
            self.samples.append(loadavg()[0])


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, opts, env, outdir):
        self.o = opts
        self.env = env
        self.out = outdir
        self.rate = {}
        self.results = {"throughput": [], "latency": [], "profile": {}, "sync": [], "calibration": [],
                        "meta": {}, "micro": None, "notes": []}

    def wait_ready(self, t, dataset, timeout=60):
        name, addr = self.data.last[dataset]
        if t.proc is not None and t.proc.poll() is not None:
            raise HarnessError("%s exited early; see %s" % (t.label, t.proc.logpath))
        r = probe(self.env, name, addr, timeout=timeout)
        if not r.get("ok"):
            tail = ""
            if t.proc is not None:
                try:
                    tail = open(t.proc.logpath).read()[-2000:]
                except OSError:
                    pass
            raise HarnessError("%s never answered %s (%s)\n%s" % (t.label, name, dataset, tail))
        # targets that attach XDP create a new NAPI kthread: make it threaded and pin it again.
        for ns, dev in ((self.env.srv_ns, self.env.hveth), (self.env.cli_ns, self.env.cveth)):
            run(["ip", "netns", "exec", ns, "sh", "-c",
                 "echo 1 > /sys/class/net/%s/threaded" % dev], check=False)
        self.env.pin_napi()

    def start_target(self, t, dataset):
        env = self.env
        if t.host_xdp in ("pass", "none"):
            env.host_xdp(t.host_xdp)
        env.client_xdp_pass()
        t.start(dataset)
        self.wait_ready(t, dataset)

    def throughput_run(self, t, dataset, mix, rnd, duration, qps, profile_ids=None):
        env = self.env
        kx, _dp, _edns = self.data.queries[(dataset, mix)]
        env.pin_napi()
        meter = CpuMeter(env, t.pids())
        ks0 = t.kernel_stats() if isinstance(t, Fabdns) else None
        ps0 = prog_stats(profile_ids) if profile_ids else None
        c0 = env.counters()
        a = meter.snap()
        res = kxdpgun(env, kx, duration, qps)
        b = meter.snap()
        c1 = env.counters()
        d = lambda side, k: c1[side][k] - c0[side][k]  # noqa: E731
        answers = d("host", "tx") + d("host", "tx_drop")
        ps1 = prog_stats(profile_ids) if profile_ids else None
        ks1 = t.kernel_stats() if isinstance(t, Fabdns) else None
        cpu = CpuMeter.diff(a, b, env.server_cpu)
        server_s = cpu["proc_s"] + cpu["napi_s"]
        rec = {"target": t.key, "label": t.label, "dataset": dataset, "mix": mix, "round": rnd,
               # answers the server side put on the wire, per second (primary figure)
               "qps": answers / duration,
               # of those, handed to the client's ring / parsed by kxdpgun
               "delivered_qps": d("host", "tx") / duration,
               "received_qps": res["replies"] / duration,
               "sent_qps": res["sent"] / duration,
               # queries the server side could not take in (its ring full): saturation
               "ingress_drop_qps": d("client", "tx_drop") / duration,
               "answered_frac": answers / res["sent"] if res["sent"] else 0,
               "rcodes": res["rcodes"], "server_cpu_s": server_s, "proc_cpu_s": cpu["proc_s"],
               "napi_cpu_s": cpu["napi_s"], "server_cpu_busy": server_s / duration,
               "server_cpu_stat_busy": cpu["cpu_busy_frac"],
               "cpu_us_per_answer": server_s / answers * 1e6 if answers else None,
               "load1": loadavg()[0]}
        if (t.proc is not None and t.proc.poll() is not None) or server_s < 0:
            rec["invalid"] = "server exited during the run"
        if ks0 is not None and ks1 is not None:
            ans = ks1.get(0, 0) - ks0.get(0, 0)
            rec["kernel_answered"] = ans
            rec["kernel_frac"] = ans / answers if answers else 0
        if ps0 and ps1:
            progs = {}
            for i, v in ps1.items():
                v0 = ps0.get(i, {"run_time_ns": 0, "run_cnt": 0})
                cnt = v["run_cnt"] - v0["run_cnt"]
                progs[v["name"]] = {"runs": cnt, "ns_per_run": (v["run_time_ns"] - v0["run_time_ns"])
                                    / cnt if cnt else None}
            rec["bpf"] = progs
        return rec

    def latency_run(self, t, dataset, mix, rnd):
        _kx, dp, edns = self.data.queries[(dataset, mix)]
        self.env.client_xdp_pass()
        self.env.pin_napi()
        slug = "%s-%s-%s-r%d" % (t.key, dataset, mix.replace("/", "-").replace(" ", ""), rnd)
        self.env.napi_realtime(True)
        try:
            r = dnsperf(self.env, dp, self.o.lat_duration, self.o.lat_qps, edns,
                        os.path.join(self.out, "logs", "dnsperf-%s.txt" % slug))
        finally:
            self.env.napi_realtime(False)
        r.update({"target": t.key, "label": t.label, "dataset": dataset, "mix": mix, "round": rnd,
                  "rate": self.o.lat_qps})
        if t.proc is not None and t.proc.poll() is not None:
            r["invalid"] = "server exited during the run"
        return r

    def calibrate(self, targets):
        """Offered rate per target. In-kernel paths get kxdpgun's maximum. A socket server
        flooded far beyond its capacity loses its CPU to the NAPI kthread that keeps queueing
        (and dropping) packets for it (receive livelock), and then answers less than it can:
        for these, sweep the offered rate once (A mix) and keep the rate that got the most
        answers. The sweep, including the flood, is reported."""
        self.rate = {}
        for t in targets:
            self.rate[t.key] = self.o.offered
            if not t.user_space or not self.o.sweep:
                continue
            best = None
            try:
                self.start_target(t, "100")
                for q in self.o.sweep + [self.o.offered]:
                    rec = self.throughput_run(t, "100", "A", -1, self.o.duration, q)
                    rec["offered"] = q
                    self.results["calibration"].append(rec)
                    log("  sweep %-12s offered %7d: %8.0f answers/s, %.2f us CPU/answer" % (
                        t.key, q, rec["qps"], rec["cpu_us_per_answer"] or 0))
                    if best is None or rec["qps"] > best[1]:
                        best = (q, rec["qps"])
            finally:
                t.stop()
            self.rate[t.key] = best[0]
        self.results["meta"]["offered_per_target"] = self.rate

    def rounds(self):
        targets = [c(self.env, self.data, self.o) for c in TARGETS if c.key in self.o.targets]
        n = len(targets)
        if not n:
            return
        log("offered-rate sweep of the socket servers")
        self.calibrate(targets)
        for rnd in range(self.o.rounds):
            order = targets[rnd % n:] + targets[:rnd % n]
            log("round %d/%d: %s" % (rnd + 1, self.o.rounds, ", ".join(t.key for t in order)))
            for t in order:
                for dataset in self.o.datasets:
                    mixes = [m for m in (self.o.mixes if dataset == "100" else ["A"]) if m in t.mixes]
                    if not mixes:
                        continue
                    try:
                        self.start_target(t, dataset)
                        for mix in mixes:
                            rec = self.throughput_run(t, dataset, mix, rnd, self.o.duration,
                                                      self.rate[t.key])
                            self.results["throughput"].append(rec)
                            log("  %-12s %-4s %-11s %8.0f answers/s (offered %.0f, delivered %.0f, "
                                "kxdpgun got %.0f), %.2f us CPU/answer, busy %.0f%%%s" % (
                                    t.key, dataset, mix, rec["qps"], rec["sent_qps"],
                                    rec["delivered_qps"], rec["received_qps"],
                                    rec["cpu_us_per_answer"] or 0, 100 * rec["server_cpu_busy"],
                                    ", kernel %.0f%%" % (100 * rec["kernel_frac"])
                                    if "kernel_frac" in rec else ""))
                            self.check_alive(t, dataset, mix, rnd)
                        if dataset == "100":
                            for mix in self.o.lat_mixes:
                                if mix not in t.mixes:
                                    continue
                                r = self.latency_run(t, dataset, mix, rnd)
                                self.check_alive(t, dataset, "latency " + mix, rnd)
                                self.results["latency"].append(r)
                                log("  %-12s latency %-10s p50 %s us p99 %s us p99.9 %s us "
                                    "(%d/%d answered)" % (t.key, mix, r["p50_us"], r["p99_us"],
                                                          r["p999_us"], r["completed"], r["sent"]))
                    finally:
                        t.stop()
                self.save()

    def check_alive(self, t, dataset, what, rnd):
        if t.proc is not None and t.proc.poll() is not None:
            note = ("%s exited with status %s during round %d, %s names, %s; see logs/%s" % (
                t.label, t.proc.returncode, rnd + 1, dataset, what, os.path.basename(t.proc.logpath)))
            if note not in self.results["notes"]:
                self.results["notes"].append(note)
                log(note)

    def profile(self):
        """One pass with kernel.bpf_stats_enabled=1 (ns per program run) and perf sampling of the
        server CPU, A mix, 100 names. Kept out of the timed rounds: both add overhead."""
        env = self.env
        old = sysctl_get("kernel.bpf_stats_enabled")
        env.remember("sysctl", "kernel.bpf_stats_enabled=%s" % old)
        perf_ok = shutil.which("perf") is not None
        targets = [c(env, self.data, self.o) for c in TARGETS if c.key in self.o.targets]
        for t in targets:
            if "A" not in t.mixes:
                continue
            try:
                self.start_target(t, "100")
                ids = t.kernel_progs()
                sysctl_set("kernel.bpf_stats_enabled", 1)
                try:
                    rec = self.throughput_run(t, "100", "A", -1, self.o.duration,
                                              self.rate.get(t.key, self.o.offered), profile_ids=ids)
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
                                             "--", "sleep", str(self.o.duration + 1)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    env.remember("pids", perf.pid)
                    time.sleep(0.3)
                    kxdpgun(env, self.data.queries[("100", "A")][0], self.o.duration,
                            self.rate.get(t.key, self.o.offered))
                    try:
                        perf.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        perf.kill()
                    rep = run(["perf", "report", "-i", pdata, "--stdio", "--no-children",
                               "--sort", "dso,sym", "--percent-limit", "1.5"], check=False,
                              timeout=120)
                    top = [ln.rstrip() for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")]
                    with open(os.path.join(self.out, "logs", "perf-%s.txt" % t.key), "w") as f:
                        f.write(rep)
                    prof["perf_top"] = top[:14]
                    os.unlink(pdata)
                self.results["profile"][t.key] = prof
                log("  profile %-12s %s" % (t.key, json.dumps(prof.get("bpf"))))
            except HarnessError as e:
                self.results["notes"].append("profile of %s failed: %s" % (t.key, str(e)[:300]))
                log("profile of %s failed: %s" % (t.key, e))
            finally:
                t.stop()
        self.save()

    # ----------------------------------------------------------------------------- sync scale
    def sync_scale(self):
        env = self.env
        env.host_xdp("none")
        env.client_xdp_pass()
        sdir = os.path.join(env.state, "scale")
        os.makedirs(sdir, exist_ok=True)
        sources = ["file"] + (["hub"] if self.o.hub else [])
        certs = self.make_certs(sdir) if "hub" in sources else None
        for n in self.o.scale:
            for src in sources:
                try:
                    rec = self.sync_one(n, src, sdir, certs)
                    self.results["sync"].append(rec)
                    log("  sync %-4s %6d services: first answer %.3fs, kernel map %.3fs, "
                        "change->kernel %s s, RSS %.1f MiB, maps %.1f MiB" % (
                            src, n, rec["first_answer_s"] or -1, rec["kernel_sync_s"] or -1,
                            rec["change_s"], rec["rss_kib"] / 1024, rec["map_bytes"] / 2**20))
                except HarnessError as e:
                    self.results["notes"].append("sync %s %d failed: %s" % (src, n, str(e)[:300]))
                    log("sync %s %d failed: %s" % (src, n, e))
                self.save()
        env.host_xdp("pass")

    def make_certs(self, d):
        ossl = "openssl"

        def req(name, cn):
            run([ossl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name),
                 "-subj", "/CN=" + cn])

        def sign(name, ext):
            with open("%s/%s.ext" % (d, name), "w") as f:
                f.write(ext)
            run([ossl, "x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt",
                 "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (d, name),
                 "-days", "2", "-extfile", "%s/%s.ext" % (d, name)])

        run([ossl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "2", "-subj",
             "/CN=fabdns bench CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"])
        req("server", "localhost")
        sign("server", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        req("client", "fabdns-node")
        sign("client", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=clientAuth\n")
        return d

    def map_bytes(self, pin):
        total = 0
        entries = None
        for f in sorted(os.listdir(pin)) if os.path.isdir(pin) else []:
            try:
                d = json.loads(run(["bpftool", "map", "show", "pinned", os.path.join(pin, f), "-j"]))
            except (HarnessError, ValueError):
                continue
            total += d.get("bytes_memlock", 0)
        return total, entries

    def sync_one(self, n, src, sdir, certs):
        env = self.env
        t = FabdnsXdp(env, None, self.o)
        capacity = 65536
        while capacity < n * 8 * 5 // 4:
            capacity *= 2
        k = n // 2
        hub = None
        if src == "file":
            path = os.path.join(sdir, "gs-%d.yaml" % n)
            gen.write_manifests(path, n, gen.scale_endpoints)
            source = "  kind: file\n  file:\n    path: %s" % path
        else:
            path = os.path.join(sdir, "hub-%d.json" % n)
            gen.hub_json(path, n)
            hub = env.start(["/usr/bin/python3", "-u", os.path.join(REPO, "tests", "standins", "hub.py"),
                             "--data", path, "--cert", certs + "/server.crt", "--key",
                             certs + "/server.key", "--client-ca", certs + "/ca.crt"],
                            "hub-%d" % n, cpu=env.client_cpu, nice=False)
            ports = None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and ports is None:
                time.sleep(0.05)
                with open(hub.logpath) as f:
                    m = re.search(r"READY (\d+) (\d+)", f.read())
                if m:
                    ports = (int(m.group(1)), int(m.group(2)))
            if ports is None:
                env.stop(hub)
                raise HarnessError("hub stand-in did not start")
            source = ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
                      "    ca: %s/ca.crt\n    cert: %s/client.crt\n    key: %s/client.key\n"
                      "    interval: %s\n    snapshot: \"\"" % (ports[0], certs, certs, certs,
                                                              self.o.hub_interval))
        cfg = t.config("scale", source=source, capacity=capacity)
        name, addr = gen.name(n - 1), gen.v4(n - 1)
        rec = {"source": src, "services": n, "endpoints_per_service": 3, "capacity": capacity}
        try:
            # The probe polls from before the daemon starts: first answer = start -> dig answers.
            prb = subprocess.Popen(env.cli(["/usr/bin/python3", os.path.join(HERE, "dnsprobe.py"),
                                            "--server", SRV_IP, "--name", name, "--expect", addr,
                                            "--timeout", "180", "--interval", "0.005", "--t0", "0"]),
                                   stdout=subprocess.PIPE, text=True)
            env.remember("pids", prb.pid)
            time.sleep(0.3)
            t0 = time.monotonic()
            t.launch(cfg, "fabdnsd-sync-%s-%d" % (src, n))
            try:
                out, _ = prb.communicate(timeout=200)
            except subprocess.TimeoutExpired:
                prb.kill()
                out = ""
            r = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False}
            rec["first_answer_s"] = r["elapsed"] - t0 if r.get("ok") else None
            # kernel map filled: the daemon's "sync: N services, M kernel answers" log line
            entries, compile_ms = None, None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                with open(t.proc.logpath) as f:
                    m = re.search(r"^(\S+) info sync: %d services, (\d+) kernel answers.* in ([\d.]+) ms"
                                  % n, f.read(), re.M)
                if m:
                    entries, compile_ms = int(m.group(2)), float(m.group(3))
                    break
                if t.proc.poll() is not None:
                    raise HarnessError("fabdnsd exited; see %s" % t.proc.logpath)
                time.sleep(0.02)
            rec["kernel_sync_s"] = (time.monotonic() - t0) if entries is not None else None
            rec["map_entries"], rec["compile_apply_ms"] = entries, compile_ms
            ks0 = t.kernel_stats() or {}
            probe(env, name, addr, timeout=5)
            ks1 = t.kernel_stats() or {}
            rec["kernel_answers_probe"] = ks1.get(0, 0) - ks0.get(0, 0)
            # one change: service k's own-cluster address; time until the kernel answers it
            changes = []
            for i in range(self.o.changes if n < 100000 else 1):
                new = "10.250.%d.%d" % (i, (k % 250) + 1)
                prb = subprocess.Popen(env.cli(["/usr/bin/python3", os.path.join(HERE, "dnsprobe.py"),
                                                "--server", SRV_IP, "--name", gen.name(k), "--expect",
                                                new, "--timeout", "120", "--interval", "0.001",
                                                "--t0", "0"]), stdout=subprocess.PIPE, text=True)
                env.remember("pids", prb.pid)
                if src == "file":
                    tmp = path + ".next"
                    gen.write_manifests(tmp, n, gen.scale_endpoints, changed={k: new})
                    time.sleep(0.3)
                    t1 = time.monotonic()
                    os.replace(tmp, path)
                else:
                    gen.hub_json(path + ".next", n, changed={k: new})
                    time.sleep(0.3)
                    t1 = time.monotonic()
                    os.replace(path + ".next", path)
                try:
                    out, _ = prb.communicate(timeout=150)
                except subprocess.TimeoutExpired:
                    prb.kill()
                    out = ""
                r = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False}
                changes.append(round(r["elapsed"] - t1, 4) if r.get("ok") else None)
                time.sleep(0.5)
            rec["changes_s"] = changes
            ok = [c for c in changes if c is not None]
            rec["change_s"] = round(statistics.median(ok), 4) if ok else None
            # steady state: memory and the daemon's CPU while nothing changes
            cpu0 = task_ns(t.proc.pid)
            time.sleep(self.o.idle_window)
            rec["idle_cpu_frac"] = (task_ns(t.proc.pid) - cpu0) / 1e9 / self.o.idle_window
            with open("/proc/%d/status" % t.proc.pid) as f:
                st = f.read()
            rec["rss_kib"] = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
            rec["hwm_kib"] = int(re.search(r"VmHWM:\s+(\d+)", st).group(1))
            rec["map_bytes"], _ = self.map_bytes(env.pin + "/fabdns")
        finally:
            t.stop()
            if hub:
                env.stop(hub)
        return rec

    # ----------------------------------------------------------------------------- micro
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


def wait_quiet(threshold, max_wait):
    """Waits (bounded) for other work on the machine to calm down; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        if loadavg()[0] < threshold:
            break
        log("load average %.2f >= %.2f: waiting (at most %d s more)" % (
            loadavg()[0], threshold, max_wait - (time.monotonic() - t0)))
        time.sleep(10)
    return round(time.monotonic() - t0, 1)


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
        b.rounds()
        if o.profile:
            log("profile pass (bpf_stats, perf)")
            b.profile()
        if o.scale:
            log("sync scale: %s" % o.scale)
            b.sync_scale()
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
    if not o.smoke and not o.out:
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
