#!/usr/bin/env python3
"""Polls a DNS server until a name answers with an expected address; prints one JSON line.

Run inside the client namespace by the harness. Every poll sends one UDP query and waits at most
--interval for its reply; the loop is bounded by --timeout. Times are CLOCK_MONOTONIC seconds
(shared by all network namespaces), so --t0 may come from the process that started the daemon.

  dnsprobe.py --server 198.18.0.1 --name svc1.default.svc.global --type A --expect 10.96.0.1 \
      --timeout 60 --t0 12345.678
  -> {"ok": true, "elapsed": 0.412, "polls": 83, "answer": ["10.96.0.1"]}
"""
import argparse
import json
import random
import socket
import struct
import sys
import time

TYPES = {"A": 1, "AAAA": 28}


def query(qname, qtype, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", TYPES[qtype], 1)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n
        if n == 0:
            return off


def answers(msg, qtype):
    qd, an = struct.unpack("!HH", msg[4:8])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    out = []
    for _ in range(an):
        off = skip_name(msg, off)
        t, _c, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rd = msg[off:off + rdlen]
        off += rdlen
        if t == 1 and qtype == "A":
            out.append(socket.inet_ntop(socket.AF_INET, rd))
        elif t == 28 and qtype == "AAAA":
            out.append(socket.inet_ntop(socket.AF_INET6, rd))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--name", required=True)
    ap.add_argument("--type", default="A", choices=sorted(TYPES))
    ap.add_argument("--expect", default="", help="address that must be in the answer ('' = any)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=0.002)
    ap.add_argument("--t0", type=float, default=None, help="CLOCK_MONOTONIC origin of 'elapsed'")
    a = ap.parse_args()

    t0 = a.t0 if a.t0 is not None else time.monotonic()
    deadline = time.monotonic() + a.timeout
    s = socket.socket(socket.AF_INET6 if ":" in a.server else socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((a.server, a.port))
    polls = 0
    last = []
    while time.monotonic() < deadline:
        polls += 1
        qid = random.randrange(65536)
        sent = time.monotonic()
        try:
            s.send(query(a.name, a.type, qid))
        except OSError:
            time.sleep(a.interval)
            continue
        s.settimeout(a.interval)
        try:
            while True:
                msg = s.recv(4096)
                if len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                    break
            now = time.monotonic()
            try:
                last = answers(msg, a.type)
            except (IndexError, struct.error):
                last = []
            if last and (not a.expect or a.expect in last):
                print(json.dumps({"ok": True, "elapsed": round(now - t0, 6), "polls": polls,
                                  "answer": last}))
                return 0
        except (socket.timeout, ConnectionRefusedError, OSError):
            pass
        rest = a.interval - (time.monotonic() - sent)
        if rest > 0:
            time.sleep(rest)
    print(json.dumps({"ok": False, "elapsed": round(time.monotonic() - t0, 6), "polls": polls,
                      "answer": last}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
