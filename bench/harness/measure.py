"""Measurements: CPU time of the server's tasks and its NAPI kthread, /proc/stat, BPF run-time
stats, map memory, the machine's load, and fabdnsd's own figures from its metrics endpoint."""
import json
import os
import threading
import time

from common import HarnessError, log, plumbing, run


def task_ns(pid):
    return plumbing.cpu_ns(pid)


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


def prog_stats(ids):
    """BPF run-time stats (kernel.bpf_stats_enabled) of the programs `ids`."""
    out = {}
    for i in ids:
        try:
            d = json.loads(run(["bpftool", "prog", "show", "id", str(i), "-j"]))
            out[i] = {"name": d.get("name"), "type": d.get("type"),
                      "run_time_ns": d.get("run_time_ns", 0), "run_cnt": d.get("run_cnt", 0)}
        except (HarnessError, ValueError):
            pass
    return out


def prog_stats_diff(ps0, ps1):
    """{program name: {runs, ns_per_run}} between two prog_stats()."""
    progs = {}
    for i, v in ps1.items():
        v0 = ps0.get(i, {"run_time_ns": 0, "run_cnt": 0})
        cnt = v["run_cnt"] - v0["run_cnt"]
        progs[v["name"]] = {"runs": cnt, "ns_per_run": (v["run_time_ns"] - v0["run_time_ns"])
                            / cnt if cnt else None}
    return progs


def map_bytes(pin):
    """Kernel memory (bytes_memlock) of the maps pinned in directory pin."""
    total = 0
    for f in sorted(os.listdir(pin)) if os.path.isdir(pin) else []:
        try:
            d = json.loads(run(["bpftool", "map", "show", "pinned", os.path.join(pin, f), "-j"]))
        except (HarnessError, ValueError):
            continue
        total += d.get("bytes_memlock", 0)
    return total


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


def daemon_metrics(daemon, timeout=1.0):
    """fabdnsd's /metrics (plumbing.parse_metrics), or None while it does not answer yet."""
    try:
        return daemon.metrics(timeout=timeout)
    except (OSError, ValueError, IndexError, AssertionError):
        return None


def wait_synced(daemon, services, timeout):
    """Polls fabdnsd's metrics until its first data set, of `services` GlobalServices, is in
    the kernel map; returns (monotonic time seen, entries, compile + apply in ms) from
    fabdns_map_entries and fabdns_map_sync_seconds, or None at timeout. Raises HarnessError
    when the daemon exits. (A scrape during a sync waits for it to end: the daemon reports the
    map under the sync's lock, so the poll sees the end of the apply at once.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = daemon_metrics(daemon, timeout=10)
        if m is not None:
            entries = plumbing.metric(m, "fabdns_map_entries")
            # the source counts the set before handing it over; entries stay 0 until it is applied
            if plumbing.metric(m, "fabdns_services") == services and entries:
                return (time.monotonic(), int(entries),
                        plumbing.metric(m, "fabdns_map_sync_seconds") * 1000.0)
        if not daemon.alive():
            raise HarnessError("fabdnsd exited; see %s" % daemon.log_path)
        time.sleep(0.02)
    return None
