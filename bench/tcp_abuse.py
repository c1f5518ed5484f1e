#!/usr/bin/env python3
"""TCP abuse scenario: legitimate TCP and UDP latency and fabdnsd's RSS while hostile TCP clients
hold the resolver (pipelining without reading, one byte now and then, idle), and after they leave.

    bench/tcp_abuse.py --fabdnsd build/daemon/app/fabdnsd [--per-kind 300] [--seconds 6]

Starts its own fabdnsd (user space only, loopback, a free port) and prints one table. Each probe
is a fresh TCP connection (or one UDP datagram) asking an in-zone A name, given 2 s to answer.
"""
import argparse
import json
import multiprocessing as mp
import random
import resource
import selectors
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "pylib"))
from plumbing import Daemon, free_port, memory_kib  # noqa: E402
QNAME = "nginx.default.svc.global"
PROBE_TIMEOUT = 2.0


def query(qid: int, name: str = QNAME) -> bytes:
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


def abusers(addr, per_kind: int, ready, stop) -> None:
    """Runs in its own process so that the probes in the parent are not slowed by it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    pipeline = b"".join(struct.pack("!H", len(q)) + q for q in (query(i) for i in range(256)))
    pipeliners, drippers, idlers = [], [], []
    for kind, group in (("pipe", pipeliners), ("drip", drippers), ("idle", idlers)):
        for _ in range(per_kind):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing anyway
            try:
                s.connect(addr)
            except OSError:
                s.close()
                continue
            s.setblocking(False)
            group.append(s)
    for s in pipeliners:
        sel.register(s, selectors.EVENT_WRITE)
    ready.set()
    next_drip = time.monotonic()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.2):
            try:
                key.fileobj.send(pipeline)  # never reads a reply
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(key.fileobj)
        if time.monotonic() >= next_drip:
            # One byte of a length prefix every second on each dripping connection: a message
            # that never completes.
            for s in drippers:
                try:
                    s.send(b"\0")
                except OSError:
                    pass
            next_drip = time.monotonic() + 1.0
    for s in pipeliners + drippers + idlers:
        s.close()


def probe_tcp(addr, qid: int):
    t0 = time.monotonic()
    try:
        with socket.create_connection(addr, timeout=PROBE_TIMEOUT) as s:
            q = query(qid)
            s.sendall(struct.pack("!H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                left = PROBE_TIMEOUT - (time.monotonic() - t0)
                if left <= 0:
                    return None
                s.settimeout(left)
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
            if struct.unpack("!H", buf[2:4])[0] != qid:
                return None
    except OSError:
        return None
    return time.monotonic() - t0


def probe_udp(addr, qid: int):
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(PROBE_TIMEOUT)
        s.sendto(query(qid), addr)
        try:
            while True:
                data = s.recv(4096)
                if struct.unpack("!H", data[:2])[0] == qid:
                    return time.monotonic() - t0
        except OSError:
            return None


def probe_round(addr, seconds: float) -> dict:
    tcp, udp = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tcp.append(probe_tcp(addr, random.randrange(65536)))
        udp.append(probe_udp(addr, random.randrange(65536)))
        time.sleep(0.1)
    return {"tcp": tcp, "udp": udp}


def summary(samples) -> str:
    ok = [s * 1000 for s in samples if s is not None]
    if not ok:
        return f"0/{len(samples)} answered"
    return (f"{len(ok)}/{len(samples)} answered, p50 {statistics.median(ok):.1f} ms, "
            f"max {max(ok):.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fabdnsd", default=str(REPO / "build/daemon/app/fabdnsd"))
    ap.add_argument("--per-kind", type=int, default=300, help="abusive clients of each kind")
    ap.add_argument("--seconds", type=float, default=6.0, help="probing time under abuse")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="fabdns-tcp-abuse-"))
    port, mport = free_port(), free_port()
    (tmp / "services.yaml").write_text((REPO / "examples/globalservices.yaml").read_text())
    cfg = {
        "node": {"cluster": "beijing", "zone": "beijing", "region": "north"},
        "dns": {"zones": ["global"], "ttl": 5, "listen": [f"127.0.0.1:{port}"]},
        "source": {"kind": "file", "file": {"path": str(tmp / "services.yaml")}},
        "datapath": {"enabled": False},
        "metrics": {"listen": f"127.0.0.1:{mport}"},
    }
    (tmp / "config.yaml").write_text(json.dumps(cfg))
    # The daemon gets the soft limit a shell would give it, so that raising it is its own job.
    daemon = Daemon(args.fabdnsd, tmp / "config.yaml", None, tmp / "fabdnsd.log",
                    ("127.0.0.1", mport), wrap=["prlimit", f"--nofile={min(soft, 1024)}:{hard}"])
    daemon.start(wait_ready=False)
    addr = ("127.0.0.1", port)
    try:
        for _ in range(100):
            if probe_udp(addr, 1) is not None:
                break
            time.sleep(0.1)
        else:
            print("fabdnsd did not answer; log in", tmp / "fabdnsd.log", file=sys.stderr)
            return 1
        base = probe_round(addr, 1.0)
        rss_idle = memory_kib(daemon.pid)

        ready, stop = mp.Event(), mp.Event()
        proc = mp.Process(target=abusers, args=(addr, args.per_kind, ready, stop))
        proc.start()
        ready.wait(60)
        time.sleep(1.0)
        under = probe_round(addr, args.seconds)
        rss_abuse = memory_kib(daemon.pid)
        stop.set()
        proc.join(30)
        time.sleep(0.5)
        after = probe_round(addr, 2.0)
        rss_after = memory_kib(daemon.pid)
        alive = daemon.alive()
    finally:
        daemon.stop(signal.SIGTERM, timeout=10)

    print(f"TCP abuse: {args.per_kind} pipelining without reading, {args.per_kind} dripping one "
          f"byte/s, {args.per_kind} idle; probes: fresh TCP connection / UDP, "
          f"{PROBE_TIMEOUT:.0f} s timeout")
    for name, r in (("before abuse", base), ("under abuse", under),
                    ("0.5 s after abusers left", after)):
        print(f"  {name:26} TCP {summary(r['tcp'])}; UDP {summary(r['udp'])}")
    print(f"  fabdnsd RSS: idle {rss_idle[0] / 1024:.1f} MiB, under abuse "
          f"{rss_abuse[0] / 1024:.1f} MiB, after {rss_after[0] / 1024:.1f} MiB, "
          f"peak {rss_after[1] / 1024:.1f} MiB; still running: {alive}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "before": base, "under": under, "after": after,
            "rss_kib": {"idle": rss_idle, "abuse": rss_abuse, "after": rss_after}}))
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
