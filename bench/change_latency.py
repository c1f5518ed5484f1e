#!/usr/bin/python3
"""One changed service, from the source to the kernel map, at scale (issue 10), one command:

    sudo bench/change_latency.py FABDNSD[,FABDNSD...] {file,kubernetes,hub} N [--changes K]
        [--files F] [--capacity C] [--standin PATH] [--interval SECONDS] [--no-snapshot]
        [--cgroup MAX]

Starts fabdnsd (datapath loaded, nothing attached) with N GlobalServices x 3 endpoints
(bench/harness/gen.py's scale set) from a JSON List file (with --files F: a directory of F JSON
List files, the services spread over them in order), from the Kubernetes API stand-in
(tests/standins/kube_apiserver.py, preloaded with --data) or from the hub stand-in
(tests/standins/hub.py over mutual TLS, polled every --interval seconds, default 1, with a
hub.snapshot as deployed unless --no-snapshot), waits for
the first full sync, then changes one service's first address K times: the file holding it
rewritten (atomically, then the clock starts), one MODIFIED event (POST /apply, the clock
starts before it) or the hub's data rewritten (atomically, then the clock starts: the latency
includes the wait for the next poll, up to one interval). Each latency ends when the daemon
logs the sync that followed, which it does after the map holds the batch.
Several daemons (comma-separated binaries, e.g. a baseline and a new build) run side by side,
each with its own copy of the data, and take turns at each change, so machine noise falls on
all alike. Prints the first sync, each change's latency with the daemon's own compile + apply
time, their median, VmRSS/VmHWM at the end, and each daemon's median as a ratio to the first.
Everything it makes is removed."""
import argparse
import copy
import json
import os
import re
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "pylib"))
import gen  # noqa: E402
import plumbing  # noqa: E402
import sources  # noqa: E402
from sources import make_certs, wait_ready  # noqa: E402

SYNC = re.compile(r"sync: (\d+) services.* in ([0-9.]+) ms(?:, engine ([0-9.]+) ms)?")


def wait_for(path, pattern, offset, deadline, daemon):
    while True:
        text = open(path).read()
        m = pattern.search(text, offset)
        if m:
            return m, time.monotonic()
        if daemon.poll() is not None or time.monotonic() > deadline:
            sys.exit("fabdnsd did not sync:\n" + text[-3000:])
        time.sleep(0.002)


class Daemon:
    """One fabdnsd under test with its own data, stand-in, pins and ports."""

    def __init__(self, binary, o, d, index, procs, pins, cgroups):
        self.binary, self.lat = binary, []
        self.d = os.path.join(d, str(index))
        os.mkdir(self.d)
        data = os.path.join(self.d, "hub.json")
        gen.hub_json(data, o.n)
        self.items = json.load(open(data))
        self.control = None
        self.hub = o.source == "hub"
        if o.source == "file":
            for item in self.items:  # as `kubectl get -o json` lists them
                item.pop("apiVersion")
                item.pop("kind")
            if o.files:
                path = os.path.join(self.d, "manifests")
                os.mkdir(path)
                self.paths = [os.path.join(path, "gs-%04d.json" % f) for f in range(o.files)]
            else:
                path = os.path.join(self.d, "gs.json")
                self.paths = [path]
            for f in range(len(self.paths)):
                self.write_file(f)
            source = "  kind: file\n  file:\n    path: %s" % path
        elif o.source == "hub":
            self.paths = [data]
            make_certs(self.d)
            log = open(self.d + "/hub.log", "w")
            procs.append(subprocess.Popen(
                ["/usr/bin/python3", "-u", os.path.join(REPO, "tests/standins/hub.py"), "--data",
                 data, "--cert", self.d + "/server.crt", "--key", self.d + "/server.key",
                 "--client-ca", self.d + "/ca.crt"], stdout=log, stderr=subprocess.STDOUT))
            port, _ = wait_ready(self.d + "/hub.log", procs, "hub stand-in")
            source = ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
                      "    ca: {d}/ca.crt\n    cert: {d}/client.crt\n    key: {d}/client.key\n"
                      "    interval: %dms\n    snapshot: \"%s\""
                      % (port, o.interval * 1000, "" if o.no_snapshot else self.d + "/snapshot.json")
                      ).replace("{d}", self.d)
        else:
            log = open(self.d + "/kube.log", "w")
            procs.append(subprocess.Popen(["/usr/bin/python3", "-u", o.standin, "--data", data],
                                          stdout=log, stderr=subprocess.STDOUT))
            ports = None
            for _ in range(6000):
                time.sleep(0.05)
                m = re.search(r"READY (\d+) (\d+)", open(self.d + "/kube.log").read())
                if m:
                    ports = int(m.group(1)), int(m.group(2))
                    break
            if ports is None:
                sys.exit("Kubernetes API stand-in did not start")
            self.control = "http://127.0.0.1:%d" % ports[1]
            source = "  kind: kubernetes\n  kubernetes:\n    server: http://127.0.0.1:%d" % ports[0]
        # Room for every answer (8 names x A and AAAA per service), so that no sync ranks.
        capacity = o.capacity or 65536
        while not o.capacity and capacity < o.n * 16 * 5 // 4:
            capacity *= 2
        tmpl = string.Template(open(os.path.join(HERE, "harness/templates/fabdns.yaml.in")).read())
        port = 20000 + (os.getpid() % 4000) * 4 + 2 * index
        pin = "/sys/fs/bpf/fabdns-change-%d-%d" % (os.getpid(), index)
        pins.append(pin)
        text = tmpl.substitute(listen="127.0.0.1:%d" % port, source=source,
                               datapath_enabled="true", pin_path=pin, capacity=capacity,
                               attach="    []")
        text = text.replace("127.0.0.1:9153", "127.0.0.1:%d" % (port + 1))
        with open(self.d + "/fabdns.yaml", "w") as f:
            f.write(text)
        self.logpath = self.d + "/fabdnsd.log"
        log = open(self.logpath, "w")
        self.cgroup = sources.Cgroup(o.cgroup, "-%d" % index) if o.cgroup else None
        if self.cgroup:
            cgroups.append(self.cgroup)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "--config", self.d + "/fabdns.yaml", "--log-level",
                                      "info"], stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=self.cgroup.enter if self.cgroup else None)
        procs.append(self.proc)
        first = re.compile(r"sync: %d services.* in ([0-9.]+) ms" % o.n)
        m, t1 = wait_for(self.logpath, first, 0, t0 + 600, self.proc)
        print("%s: %s %d x 3%s: first sync %.2f s after start (compile + apply %.0f ms)"
              % (binary, o.source, o.n, " in %d files" % o.files if o.files else "", t1 - t0,
                 float(m.group(1))))

    def file_of(self, k):
        return k * len(self.paths) // len(self.items)

    def write_file(self, f):
        """Writes file f (the services it holds) atomically."""
        n = len(self.items)
        objs = self.items[(f * n + len(self.paths) - 1) // len(self.paths):
                          ((f + 1) * n + len(self.paths) - 1) // len(self.paths)]
        path = self.paths[f]
        with open(path + ".tmp", "w") as out:
            if self.hub:  # the hub's answer: a bare array, as gen.hub_json writes it
                json.dump(objs, out, separators=(",", ":"))
            else:
                json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, out)
        os.replace(path + ".tmp", path)

    def change(self, c, k):
        obj = copy.deepcopy(self.items[k])
        obj["spec"]["endpoints"][0]["addresses"][0] = "10.254.%d.%d" % (c // 250, c % 250 + 1)
        obj["metadata"]["resourceVersion"] = str(100 + c)
        offset = len(open(self.logpath).read())
        if self.control is None:
            self.items[k] = obj
            self.write_file(self.file_of(k))
            start = time.monotonic()
        else:
            if "apiVersion" not in obj:
                obj = dict(obj, apiVersion="dns.fabedge.io/v1alpha1", kind="GlobalService")
            start = time.monotonic()
            req = urllib.request.Request(self.control + "/apply", data=json.dumps(obj).encode(),
                                         method="POST")
            urllib.request.urlopen(req, timeout=30).read()
        m, end = wait_for(self.logpath, SYNC, offset, start + 120, self.proc)
        self.lat.append((end - start) * 1000)
        print("  %s change %d: %.1f ms to the kernel (daemon: engine %s ms, compile + apply "
              "%.1f ms)" % (self.binary, c + 1, self.lat[-1], m.group(3) or "?",
                            float(m.group(2))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fabdnsd", help="fabdnsd binary, or several separated by commas")
    ap.add_argument("source", choices=["file", "kubernetes", "hub"])
    ap.add_argument("n", type=int)
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--files", type=int, default=0,
                    help="file source: a directory of this many files instead of one file")
    ap.add_argument("--capacity", type=int, default=0, help="answer map capacity")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="hub: the poll interval in seconds (default 1)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="hub: no hub.snapshot (by default one, as deployed)")
    ap.add_argument("--cgroup", type=sources.size_arg,
                    help="each daemon alone in a memory cgroup of this size (as bench/sources.py)")
    ap.add_argument("--standin", default=os.path.join(REPO, "tests/standins/kube_apiserver.py"))
    o = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/change_latency.py: needs root (BPF maps)")
    if o.files and o.source != "file":
        sys.exit("bench/change_latency.py: --files is for the file source")
    d = tempfile.mkdtemp(prefix="fabdns-change-")
    procs, pins, cgroups = [], [], []
    try:
        daemons = [Daemon(b, o, d, i, procs, pins, cgroups) for i, b in enumerate(o.fabdnsd.split(","))]
        time.sleep(2)
        for c in range(o.changes):
            k = (c * 7919) % o.n
            for daemon in daemons:
                daemon.change(c, k)
                time.sleep(1)
        where = " in %d files" % o.files if o.files else ""
        if o.source == "hub":
            where = ", interval %g s (the latency includes the wait for the poll)" % o.interval
        for daemon in daemons:
            rss, hwm = plumbing.memory_kib(daemon.proc.pid)
            med = statistics.median(daemon.lat)
            print("%s: %s %d x 3%s: one change, median %.1f ms of %d (x%.2f of the first); "
                  "RSS %.1f MiB, HWM %.1f MiB"
                  % (daemon.binary, o.source, o.n, where, med, len(daemon.lat),
                     med / statistics.median(daemons[0].lat), rss / 1024, hwm / 1024))
            if daemon.cgroup:
                print("  cgroup (limit %d MiB): peak %.1f MiB, oom_kill %d"
                      % (o.cgroup >> 20, daemon.cgroup.peak() / 2**20, daemon.cgroup.oom_kills()))
    finally:
        for p in reversed(procs):
            plumbing.terminate(p, 30)
        shutil.rmtree(d, ignore_errors=True)
        for pin in pins:
            shutil.rmtree(pin, ignore_errors=True)
        for cgroup in cgroups:
            cgroup.remove()


if __name__ == "__main__":
    main()
