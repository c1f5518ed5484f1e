"""Load generators and probes, all run in the client namespace: kxdpgun (throughput), dnsperf
(latency at a fixed rate) and dnsprobe.py (readiness and the sync timings)."""
import json
import os
import re
import statistics
import subprocess

from common import HERE, SRV_IP, HarnessError, run


def probe(env, name, expect, qtype="A", timeout=30, interval=0.01):
    out = run(env.cli(["/usr/bin/python3", os.path.join(HERE, "dnsprobe.py"), "--server", SRV_IP,
                       "--name", name, "--type", qtype, "--expect", expect, "--timeout",
                       str(timeout), "--interval", str(interval)]), check=False, timeout=timeout + 30)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False}


def probe_start(env, name, expect, timeout, interval):
    """dnsprobe.py started now and left polling until the server answers name with expect;
    probe_result() reads the (monotonic) time it did."""
    p = subprocess.Popen(env.cli(["/usr/bin/python3", os.path.join(HERE, "dnsprobe.py"),
                                  "--server", SRV_IP, "--name", name, "--expect", expect,
                                  "--timeout", str(timeout), "--interval", str(interval),
                                  "--t0", "0"]), stdout=subprocess.PIPE, text=True)
    env.remember("pids", p.pid)
    return p


def probe_result(p, timeout):
    """The monotonic time at which a probe_start() probe was answered, or None."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out = ""
    r = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False}
    return r["elapsed"] if r.get("ok") else None


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

