#!/usr/bin/python3
"""One changed service, from the source to the kernel map, at scale (issue 10), one command:

    sudo bench/change_latency.py FABDNSD {file,kubernetes} N [--changes K] [--capacity C] [--standin PATH]

Starts fabdnsd (datapath loaded, nothing attached) with N GlobalServices x 3 endpoints
(bench/harness/gen.py's scale set) from a JSON List file or from the Kubernetes API stand-in
(tests/standins/kube_apiserver.py, preloaded with --data), waits for the first full sync, then
changes one service's first address K times: the file rewritten (atomically, then the clock
starts) or one MODIFIED event (POST /apply, the clock starts before it). Each latency ends when
the daemon logs the sync that followed, which it does after the map holds the batch. Prints
the first sync, each change's latency with the daemon's own compile + apply time, their median,
and VmRSS/VmHWM at the end. Everything it makes is removed."""
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fabdnsd")
    ap.add_argument("source", choices=["file", "kubernetes"])
    ap.add_argument("n", type=int)
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--capacity", type=int, default=0, help="answer map capacity")
    ap.add_argument("--standin", default=os.path.join(REPO, "tests/standins/kube_apiserver.py"))
    o = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/change_latency.py: needs root (BPF maps)")
    d = tempfile.mkdtemp(prefix="fabdns-change-")
    pin = "/sys/fs/bpf/fabdns-change-%d" % os.getpid()
    procs = []
    try:
        data = os.path.join(d, "hub.json")
        gen.hub_json(data, o.n)
        items = json.load(open(data))
        path = os.path.join(d, "gs.json")
        control = None
        if o.source == "file":
            for item in items:  # as `kubectl get -o json` lists them
                item.pop("apiVersion")
                item.pop("kind")

            def write(objs):
                with open(path + ".tmp", "w") as f:
                    json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, f)
                os.replace(path + ".tmp", path)

            write(items)
            source = "  kind: file\n  file:\n    path: %s" % path
        else:
            log = open(d + "/kube.log", "w")
            procs.append(subprocess.Popen(["/usr/bin/python3", "-u", o.standin, "--data", data],
                                          stdout=log, stderr=subprocess.STDOUT))
            ports = None
            for _ in range(6000):
                time.sleep(0.05)
                m = re.search(r"READY (\d+) (\d+)", open(d + "/kube.log").read())
                if m:
                    ports = int(m.group(1)), int(m.group(2))
                    break
            if ports is None:
                sys.exit("Kubernetes API stand-in did not start")
            control = "http://127.0.0.1:%d" % ports[1]
            source = "  kind: kubernetes\n  kubernetes:\n    server: http://127.0.0.1:%d" % ports[0]
        # Room for every answer (8 names x A and AAAA per service), so that no sync ranks.
        capacity = o.capacity or 65536
        while not o.capacity and capacity < o.n * 16 * 5 // 4:
            capacity *= 2
        tmpl = string.Template(open(os.path.join(HERE, "harness/templates/fabdns.yaml.in")).read())
        port = 20000 + os.getpid() % 20000
        text = tmpl.substitute(listen="127.0.0.1:%d" % port, source=source,
                               datapath_enabled="true", pin_path=pin, capacity=capacity,
                               attach="    []")
        text = text.replace("127.0.0.1:9153", "127.0.0.1:%d" % (port + 1))
        with open(d + "/fabdns.yaml", "w") as f:
            f.write(text)
        logpath = d + "/fabdnsd.log"
        log = open(logpath, "w")
        t0 = time.monotonic()
        daemon = subprocess.Popen([o.fabdnsd, "--config", d + "/fabdns.yaml", "--log-level",
                                   "info"], stdout=log, stderr=subprocess.STDOUT)
        procs.append(daemon)
        first = re.compile(r"sync: %d services.* in ([0-9.]+) ms" % o.n)
        m, t1 = wait_for(logpath, first, 0, t0 + 600, daemon)
        print("%s %d x 3: first sync %.2f s after start (compile + apply %.0f ms)"
              % (o.source, o.n, t1 - t0, float(m.group(1))))
        time.sleep(2)
        lat = []
        for c in range(o.changes):
            k = (c * 7919) % o.n
            obj = copy.deepcopy(items[k])
            obj["spec"]["endpoints"][0]["addresses"][0] = "10.254.%d.%d" % (c // 250, c % 250 + 1)
            obj["metadata"]["resourceVersion"] = str(100 + c)
            offset = len(open(logpath).read())
            if o.source == "file":
                items[k] = obj
                write(items)
                start = time.monotonic()
            else:
                if "apiVersion" not in obj:
                    obj = dict(obj, apiVersion="dns.fabedge.io/v1alpha1", kind="GlobalService")
                start = time.monotonic()
                req = urllib.request.Request(control + "/apply", data=json.dumps(obj).encode(),
                                             method="POST")
                urllib.request.urlopen(req, timeout=30).read()
            m, end = wait_for(logpath, SYNC, offset, start + 120, daemon)
            lat.append((end - start) * 1000)
            print("  change %d: %.1f ms to the kernel (daemon: engine %s ms, compile + apply "
                  "%.1f ms)" % (c + 1, lat[-1], m.group(3) or "?", float(m.group(2))))
            time.sleep(1)
        rss, hwm = plumbing.memory_kib(daemon.pid)
        print("%s %d x 3: one change, median %.1f ms of %d; RSS %.1f MiB, HWM %.1f MiB"
              % (o.source, o.n, statistics.median(lat), len(lat), rss / 1024, hwm / 1024))
    finally:
        for p in reversed(procs):
            plumbing.terminate(p, 30)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(pin, ignore_errors=True)


if __name__ == "__main__":
    main()
