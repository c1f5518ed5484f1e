#!/usr/bin/python3
"""Memory and idle CPU of fabdnsd per source at scale (SPEC §5a), one command:

    sudo bench/sources.py FABDNSD {file,hub,kubernetes} N [--cgroup MAX] [--capacity C]
                          [--heaptrack OUT] [--snapshot] [--format {json,yaml}]
                          [--interval SECONDS] [--idle SECONDS]

N GlobalServices x 3 endpoints (bench/harness/gen.py's scale set), from a JSON List file (or,
with --format yaml, a multi-document YAML manifest file), from tests/standins/hub.py over mutual
TLS (polled every second, or every --interval seconds) or from tests/standins/kube_apiserver.py
(list in pages + watch, plain HTTP); the datapath is loaded with nothing attached, its answer
table sized to C entries (default 65536, the shipped default). Prints the time to the first
answer (a UDP query for the last service) and to the first full sync, VmRSS and VmHWM 3 s after
it, the daemon's CPU share over the next 5 s (--idle; at least 4 hub intervals; over capacity
after the one ranking the first queries cause), the kernel memory of the pinned maps (memlock)
and the daemon's log line of the first sync.

With --cgroup MAX (bytes, or with a K/M/G suffix) the daemon runs alone in a fresh memory cgroup
limited to MAX without swap: cgroup v2 (/sys/fs/cgroup/fabdns-bench-<pid>: memory.max,
memory.swap.max 0) where the memory controller is on the v2 hierarchy, else a v1 child of this
process's memory cgroup (memory.limit_in_bytes = memory.memsw.limit_in_bytes); the BPF maps it
creates are charged there too. Prints the cgroup's peak and its OOM kills (memory.events
oom_kill, v1: memory.oom_control), and fails when the daemon was OOM-killed. With --heaptrack
the daemon runs under heaptrack and the profile is written to OUT (heaptrack_print).
With --snapshot (hub) the daemon starts with a snapshot, as a
restart does: the hub's answer written where `hub.snapshot` points, so the first answer comes
from it and the hub's own answer, the same bytes, is compared and not decoded again.
Everything it makes is removed."""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "pylib"))
import gen  # noqa: E402
import plumbing  # noqa: E402


def make_certs(d):
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "2", "-subj", "/CN=bench ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
         "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (("server", "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name), "-subj",
             "/CN=" + name)
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" + ext)
        ossl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt", "-CAkey",
             d + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (d, name), "-days", "2",
             "-extfile", "%s/%s.ext" % (d, name))


def size_arg(text):
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("not a size: " + text)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


class Cgroup:
    """A fresh memory cgroup for the daemon alone (see the module's docstring)."""

    def __init__(self, limit, tag=""):
        name = "fabdns-bench-%d%s" % (os.getpid(), tag)
        v2 = "/sys/fs/cgroup"
        ctl = v2 + "/cgroup.subtree_control"  # what a child of the v2 root gets
        if os.path.exists(ctl) and "memory" in open(ctl).read().split():
            self.v2, self.path = True, os.path.join(v2, name)
            os.mkdir(self.path)
            self.write("memory.max", limit)
            self.write("memory.swap.max", 0)
        else:
            own = next(line.split(":", 2)[2].strip() for line in open("/proc/self/cgroup")
                       if line.split(":")[1] == "memory")
            self.v2, self.path = False, os.path.join("/sys/fs/cgroup/memory" + own, name)
            os.mkdir(self.path)
            self.write("memory.limit_in_bytes", limit)
            try:  # no swap (absent when swap accounting is off)
                self.write("memory.memsw.limit_in_bytes", limit)
            except OSError:
                pass

    def write(self, key, value):
        with open(os.path.join(self.path, key), "w") as f:
            f.write(str(value))

    def read(self, key):
        return open(os.path.join(self.path, key)).read()

    def enter(self):  # runs in the child before exec
        self.write("cgroup.procs", os.getpid())

    def peak(self):
        key = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        return int(self.read(key)) if os.path.exists(os.path.join(self.path, key)) else -1

    def usage(self):
        return int(self.read("memory.current" if self.v2 else "memory.usage_in_bytes"))

    def oom_kills(self):
        text = self.read("memory.events" if self.v2 else "memory.oom_control")
        m = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:  # processes still leaving
                time.sleep(0.1)


def dns_query(port, name):
    """True when 127.0.0.1:port answers an A query for name with NOERROR and an answer."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    msg = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(msg, ("127.0.0.1", port))
            reply = s.recv(4096)
        except OSError:
            return False
    return len(reply) >= 12 and reply[3] & 0xF == 0 and struct.unpack(">H", reply[6:8])[0] > 0


def wait_ready(log_path, procs, what):
    for _ in range(600):
        time.sleep(0.05)
        m = re.search(r"READY (\d+) (\d+)", open(log_path).read())
        if m:
            return int(m.group(1)), int(m.group(2))
        if procs[-1].poll() is not None:
            break
    sys.exit(what + " did not start:\n" + open(log_path).read()[-2000:])


def map_memlock(pin):
    """Kernel memory of the pinned maps (bpftool's memlock), bytes."""
    total = 0
    for f in sorted(os.listdir(pin)) if os.path.isdir(pin) else []:
        r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", os.path.join(pin, f)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            total += json.loads(r.stdout).get("bytes_memlock", 0)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fabdnsd")
    ap.add_argument("source", choices=["file", "hub", "kubernetes"])
    ap.add_argument("n", type=int)
    ap.add_argument("--capacity", type=int, default=65536,
                    help="datapath.capacity (answer table entries), default 65536")
    ap.add_argument("--cgroup", type=size_arg, metavar="MAX",
                    help="run the daemon in a memory cgroup limited to MAX (e.g. 256M)")
    ap.add_argument("--heaptrack", metavar="OUT")
    ap.add_argument("--snapshot", action="store_true",
                    help="hub: start from a snapshot of the hub's answer (a restart)")
    ap.add_argument("--format", choices=["json", "yaml"], default="json",
                    help="the file source's manifest: one JSON List (default) or one YAML "
                         "document per service")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="hub: the poll interval in seconds (default 1; the shipped default is 5)")
    ap.add_argument("--idle", type=float,
                    help="seconds over which idle CPU is measured (default 5, or 4 hub intervals "
                         "when longer)")
    o = ap.parse_args()
    idle = o.idle or max(5.0, 4 * o.interval if o.source == "hub" else 0)
    if os.geteuid() != 0:
        sys.exit("bench/sources.py: needs root (BPF maps)")
    d = tempfile.mkdtemp(prefix="fabdns-sources-")
    pin = "/sys/fs/bpf/fabdns-sources-%d" % os.getpid()
    procs = []
    cgroup = None
    try:
        data = os.path.join(d, "hub.json")
        gen.hub_json(data, o.n)
        if o.source == "file" and o.format == "yaml":
            path = os.path.join(d, "gs.yaml")
            gen.write_manifests(path, o.n, endpoints=gen.scale_endpoints)
            source = "  kind: file\n  file:\n    path: %s" % path
        elif o.source == "file":
            items = json.load(open(data))
            for item in items:  # as `kubectl get -o json` lists them
                item.pop("apiVersion")
                item.pop("kind")
            path = os.path.join(d, "gs.json")
            with open(path, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
            del items
            source = "  kind: file\n  file:\n    path: %s" % path
        elif o.source == "kubernetes":
            log = open(d + "/kube.log", "w")
            procs.append(subprocess.Popen(
                ["/usr/bin/python3", "-u", os.path.join(REPO, "tests/standins/kube_apiserver.py"),
                 "--data", data], stdout=log, stderr=subprocess.STDOUT))
            api, _ = wait_ready(d + "/kube.log", procs, "Kubernetes API stand-in")
            source = "  kind: kubernetes\n  kubernetes:\n    server: http://127.0.0.1:%d" % api
        else:
            make_certs(d)
            log = open(d + "/hub.log", "w")
            procs.append(subprocess.Popen(
                ["/usr/bin/python3", "-u", os.path.join(REPO, "tests/standins/hub.py"), "--data",
                 data, "--cert", d + "/server.crt", "--key", d + "/server.key", "--client-ca",
                 d + "/ca.crt"], stdout=log, stderr=subprocess.STDOUT))
            port, _ = wait_ready(d + "/hub.log", procs, "hub stand-in")
            snapshot = ""
            if o.snapshot:  # what the previous daemon wrote: the hub's answer, byte for byte
                snapshot = d + "/snapshot.json"
                shutil.copyfile(data, snapshot)
            source = ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
                      "    ca: {d}/ca.crt\n    cert: {d}/client.crt\n    key: {d}/client.key\n"
                      "    interval: %dms\n    snapshot: \"%s\""
                      % (port, o.interval * 1000, snapshot)).replace("{d}", d)
        tmpl = string.Template(open(os.path.join(HERE, "harness/templates/fabdns.yaml.in")).read())
        port = 20000 + os.getpid() % 20000
        text = tmpl.substitute(listen="127.0.0.1:%d" % port, source=source,
                               datapath_enabled="true", pin_path=pin, capacity=o.capacity,
                               attach="    []")
        text = text.replace("127.0.0.1:9153", "127.0.0.1:%d" % (port + 1))
        with open(d + "/fabdns.yaml", "w") as f:
            f.write(text)
        cmd = [o.fabdnsd, "--config", d + "/fabdns.yaml", "--log-level", "info"]
        if o.heaptrack:
            cmd = ["heaptrack", "-o", o.heaptrack] + cmd
        if o.cgroup:
            cgroup = Cgroup(o.cgroup)
        log = open(d + "/fabdnsd.log", "w")
        t0 = time.monotonic()
        daemon = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=cgroup.enter if cgroup else None)
        procs.append(daemon)
        probe = gen.name(o.n - 1)
        first_answer = None
        while not re.search(r"sync: %d services" % o.n, open(d + "/fabdnsd.log").read()):
            if daemon.poll() is not None or time.monotonic() - t0 > 600:
                oom = " (OOM kills in the cgroup: %d)" % cgroup.oom_kills() if cgroup else ""
                sys.exit("fabdnsd did not sync%s:\n%s" % (
                    oom, open(d + "/fabdnsd.log").read()[-3000:]))
            if first_answer is None and dns_query(port, probe):
                first_answer = time.monotonic() - t0
            else:
                time.sleep(0.05)
        first_sync = time.monotonic() - t0
        if first_answer is None:
            first_answer = first_sync if dns_query(port, probe) else float("nan")
        sync_line = re.search(r"sync: %d services.*" % o.n, open(d + "/fabdnsd.log").read())
        time.sleep(3)
        if re.search(r"[1-9]\d* over capacity", sync_line.group(0)):
            # Over capacity, the queries above (answered in user space) make the daemon rank
            # again once, on its next 30 s tick: not idle work, so it is left out of the window.
            deadline = time.monotonic() + 40
            while "ranked again" not in open(d + "/fabdnsd.log").read():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(1)
        pid = daemon.pid
        if o.heaptrack:  # heaptrack runs the daemon as its child,
            # alongside its interpreter and compressor: pick the child running fabdnsd.
            exe = os.path.realpath(o.fabdnsd)
            kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True).stdout.split()
            pid = next((int(k) for k in kids
                        if os.path.realpath("/proc/%s/exe" % k) == exe), pid)
        c0 = plumbing.cpu_ns(pid)
        time.sleep(idle)
        cpu = (plumbing.cpu_ns(pid) - c0) / 1e9 / idle
        rss, hwm = plumbing.memory_kib(pid)
        maps = map_memlock(pin)
        print("%s%s %d x 3: first answer %.2f s, first sync %.2f s, RSS %.1f MiB, HWM %.1f MiB, "
              "idle CPU %.2f %% (%.0f s%s), maps (memlock, capacity %d) %.1f MiB"
              % (o.source, " (%s)" % o.format if o.source == "file" else "", o.n, first_answer,
                 first_sync, rss / 1024, hwm / 1024, cpu * 100, idle,
                 ", interval %g s" % o.interval if o.source == "hub" else "", o.capacity,
                 maps / 2**20))
        print("  " + sync_line.group(0))  # the compiler's own account of the first sync
        if cgroup:
            print("  cgroup %s (limit %.0f MiB): now %.1f MiB, peak %.1f MiB, oom_kill %d"
                  % (cgroup.path, o.cgroup / 2**20, cgroup.usage() / 2**20,
                     cgroup.peak() / 2**20, cgroup.oom_kills()))
        if o.heaptrack:
            # The daemon itself must end cleanly for heaptrack to finish its profile.
            os.kill(pid, signal.SIGTERM)
            daemon.wait(120)
    finally:
        for p in reversed(procs):
            plumbing.terminate(p, 30)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(pin, ignore_errors=True)
        if cgroup:
            kills = cgroup.oom_kills()
            cgroup.remove()
            if kills:
                sys.exit("fabdnsd was OOM-killed in its cgroup (%d)" % kills)


if __name__ == "__main__":
    main()
