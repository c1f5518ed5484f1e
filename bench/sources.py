#!/usr/bin/python3
"""Memory and idle CPU of fabdnsd per source at scale (SPEC §5a), one command:

    sudo bench/sources.py FABDNSD {file,hub} N [--heaptrack OUT]

N GlobalServices x 3 endpoints (bench/harness/gen.py's scale set), from a JSON List file or from
tests/standins/hub.py over mutual TLS (interval 1s); the datapath is loaded with nothing
attached. Prints the time to the first full sync, VmRSS and VmHWM 3 s after it, the daemon's
CPU share over the next 5 s, and the daemon's log line of the first sync. With --heaptrack the
daemon runs under heaptrack and the profile is written to OUT (read it with heaptrack_print).
Everything it makes is removed."""
import argparse
import json
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
import gen  # noqa: E402


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


def ticks(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fabdnsd")
    ap.add_argument("source", choices=["file", "hub"])
    ap.add_argument("n", type=int)
    ap.add_argument("--heaptrack", metavar="OUT")
    o = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/sources.py: needs root (BPF maps)")
    d = tempfile.mkdtemp(prefix="fabdns-sources-")
    pin = "/sys/fs/bpf/fabdns-sources-%d" % os.getpid()
    procs = []
    try:
        data = os.path.join(d, "hub.json")
        gen.hub_json(data, o.n)
        if o.source == "file":
            items = json.load(open(data))
            for item in items:  # as `kubectl get -o json` lists them
                item.pop("apiVersion")
                item.pop("kind")
            path = os.path.join(d, "gs.json")
            with open(path, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
            source = "  kind: file\n  file:\n    path: %s" % path
        else:
            make_certs(d)
            log = open(d + "/hub.log", "w")
            procs.append(subprocess.Popen(
                ["/usr/bin/python3", "-u", os.path.join(REPO, "tests/standins/hub.py"), "--data",
                 data, "--cert", d + "/server.crt", "--key", d + "/server.key", "--client-ca",
                 d + "/ca.crt"], stdout=log, stderr=subprocess.STDOUT))
            port = None
            for _ in range(300):
                time.sleep(0.05)
                m = re.search(r"READY (\d+)", open(d + "/hub.log").read())
                if m:
                    port = int(m.group(1))
                    break
            if port is None:
                sys.exit("hub stand-in did not start")
            source = ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
                      "    ca: {d}/ca.crt\n    cert: {d}/client.crt\n    key: {d}/client.key\n"
                      "    interval: 1s\n    snapshot: \"\"" % port).replace("{d}", d)
        capacity = 65536
        while capacity < o.n * 8 * 5 // 4:
            capacity *= 2
        tmpl = string.Template(open(os.path.join(HERE, "harness/templates/fabdns.yaml.in")).read())
        port = 20000 + os.getpid() % 20000
        text = tmpl.substitute(listen="127.0.0.1:%d" % port, source=source,
                               datapath_enabled="true", pin_path=pin, capacity=capacity,
                               attach="    []")
        text = text.replace("127.0.0.1:9153", "127.0.0.1:%d" % (port + 1))
        with open(d + "/fabdns.yaml", "w") as f:
            f.write(text)
        cmd = [o.fabdnsd, "--config", d + "/fabdns.yaml", "--log-level", "info"]
        if o.heaptrack:
            cmd = ["heaptrack", "-o", o.heaptrack] + cmd
        log = open(d + "/fabdnsd.log", "w")
        t0 = time.monotonic()
        daemon = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        procs.append(daemon)
        while not re.search(r"sync: %d services" % o.n, open(d + "/fabdnsd.log").read()):
            if daemon.poll() is not None or time.monotonic() - t0 > 600:
                sys.exit("fabdnsd did not sync:\n" + open(d + "/fabdnsd.log").read()[-3000:])
            time.sleep(0.05)
        first_sync = time.monotonic() - t0
        sync_line = re.search(r"sync: %d services.*" % o.n, open(d + "/fabdnsd.log").read())
        time.sleep(3)
        pid = daemon.pid
        if o.heaptrack:  # heaptrack runs the daemon as its child,
            # alongside its interpreter and compressor: pick the child running fabdnsd.
            exe = os.path.realpath(o.fabdnsd)
            kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True).stdout.split()
            pid = next((int(k) for k in kids
                        if os.path.realpath("/proc/%s/exe" % k) == exe), pid)
        c0 = ticks(pid)
        time.sleep(5)
        cpu = (ticks(pid) - c0) / os.sysconf("SC_CLK_TCK") / 5
        st = open("/proc/%d/status" % pid).read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
        hwm = int(re.search(r"VmHWM:\s+(\d+)", st).group(1))
        print("%s %d x 3: first sync %.2f s, RSS %.1f MiB, HWM %.1f MiB, idle CPU %.2f %%"
              % (o.source, o.n, first_sync, rss / 1024, hwm / 1024, cpu * 100))
        print("  " + sync_line.group(0))  # the compiler's own account of the first sync
        if o.heaptrack:
            # The daemon itself must end cleanly for heaptrack to finish its profile.
            os.kill(pid, signal.SIGTERM)
            daemon.wait(120)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(pin, ignore_errors=True)


if __name__ == "__main__":
    main()
