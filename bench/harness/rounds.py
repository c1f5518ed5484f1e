"""The timed rounds: an offered-rate sweep of the socket servers, then interleaved rounds of
throughput (kxdpgun: answers/s and server CPU per answer) and latency (dnsperf at a fixed rate)
for every target, data set and query mix. Each function takes the run (bench.Bench)."""
import os

from common import HarnessError, log
from load import dnsperf, kxdpgun, probe
from measure import CpuMeter, loadavg, prog_stats, prog_stats_diff
from targets import TARGETS


def wait_ready(bench, t, dataset, timeout=60):
    name, addr = bench.data.last[dataset]
    if t.proc is not None and t.proc.poll() is not None:
        raise HarnessError("%s exited early; see %s" % (t.label, t.proc.logpath))
    r = probe(bench.env, name, addr, timeout=timeout)
    if not r.get("ok"):
        tail = ""
        if t.proc is not None:
            try:
                tail = open(t.proc.logpath).read()[-2000:]
            except OSError:
                pass
        raise HarnessError("%s never answered %s (%s)\n%s" % (t.label, name, dataset, tail))
    # targets that attach XDP create a new NAPI kthread: make it threaded and pin it again.
    bench.env.threaded(check=False)
    bench.env.pin_napi()


def start_target(bench, t, dataset):
    env = bench.env
    if t.host_xdp in ("pass", "none"):
        env.host_xdp(t.host_xdp)
    env.client_xdp_pass()
    t.start(dataset)
    wait_ready(bench, t, dataset)


def throughput_run(bench, t, dataset, mix, rnd, duration, qps, profile_ids=None):
    env = bench.env
    kx, _dp, _edns = bench.data.queries[(dataset, mix)]
    env.pin_napi()
    meter = CpuMeter(env, t.pids())
    ks0 = t.kernel_answers()
    ps0 = prog_stats(profile_ids) if profile_ids else None
    c0 = env.counters()
    a = meter.snap()
    res = kxdpgun(env, kx, duration, qps)
    b = meter.snap()
    c1 = env.counters()
    d = lambda side, k: c1[side][k] - c0[side][k]  # noqa: E731
    answers = d("host", "tx") + d("host", "tx_drop")
    ps1 = prog_stats(profile_ids) if profile_ids else None
    ks1 = t.kernel_answers()
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
        ans = int(ks1 - ks0)
        rec["kernel_answered"] = ans
        rec["kernel_frac"] = ans / answers if answers else 0
    if ps0 and ps1:
        rec["bpf"] = prog_stats_diff(ps0, ps1)
    return rec


def latency_run(bench, t, dataset, mix, rnd):
    _kx, dp, edns = bench.data.queries[(dataset, mix)]
    bench.env.client_xdp_pass()
    bench.env.pin_napi()
    slug = "%s-%s-%s-r%d" % (t.key, dataset, mix.replace("/", "-").replace(" ", ""), rnd)
    bench.env.napi_realtime(True)
    try:
        r = dnsperf(bench.env, dp, bench.o.lat_duration, bench.o.lat_qps, edns,
                    os.path.join(bench.out, "logs", "dnsperf-%s.txt" % slug))
    finally:
        bench.env.napi_realtime(False)
    r.update({"target": t.key, "label": t.label, "dataset": dataset, "mix": mix, "round": rnd,
              "rate": bench.o.lat_qps})
    if t.proc is not None and t.proc.poll() is not None:
        r["invalid"] = "server exited during the run"
    return r


def calibrate(bench, targets):
    """Offered rate per target. In-kernel paths get kxdpgun's maximum. A socket server
    flooded far beyond its capacity loses its CPU to the NAPI kthread that keeps queueing
    (and dropping) packets for it (receive livelock), and then answers less than it can:
    for these, sweep the offered rate once (A mix) and keep the rate that got the most
    answers. The sweep, including the flood, is reported."""
    bench.rate = {}
    for t in targets:
        bench.rate[t.key] = bench.o.offered
        if not t.user_space or not bench.o.sweep:
            continue
        best = None
        try:
            start_target(bench, t, "100")
            for q in bench.o.sweep + [bench.o.offered]:
                rec = throughput_run(bench, t, "100", "A", -1, bench.o.duration, q)
                rec["offered"] = q
                bench.results["calibration"].append(rec)
                log("  sweep %-12s offered %7d: %8.0f answers/s, %.2f us CPU/answer" % (
                    t.key, q, rec["qps"], rec["cpu_us_per_answer"] or 0))
                if best is None or rec["qps"] > best[1]:
                    best = (q, rec["qps"])
        finally:
            t.stop()
        bench.rate[t.key] = best[0]
    bench.results["meta"]["offered_per_target"] = bench.rate


def rounds(bench):
    targets = [c(bench.env, bench.data, bench.o) for c in TARGETS if c.key in bench.o.targets]
    n = len(targets)
    if not n:
        return
    log("offered-rate sweep of the socket servers")
    calibrate(bench, targets)
    for rnd in range(bench.o.rounds):
        order = targets[rnd % n:] + targets[:rnd % n]
        log("round %d/%d: %s" % (rnd + 1, bench.o.rounds, ", ".join(t.key for t in order)))
        for t in order:
            for dataset in bench.o.datasets:
                mixes = [m for m in (bench.o.mixes if dataset == "100" else ["A"]) if m in t.mixes]
                if not mixes:
                    continue
                try:
                    start_target(bench, t, dataset)
                    for mix in mixes:
                        rec = throughput_run(bench, t, dataset, mix, rnd, bench.o.duration,
                                             bench.rate[t.key])
                        bench.results["throughput"].append(rec)
                        log("  %-12s %-4s %-11s %8.0f answers/s (offered %.0f, delivered %.0f, "
                            "kxdpgun got %.0f), %.2f us CPU/answer, busy %.0f%%%s" % (
                                t.key, dataset, mix, rec["qps"], rec["sent_qps"],
                                rec["delivered_qps"], rec["received_qps"],
                                rec["cpu_us_per_answer"] or 0, 100 * rec["server_cpu_busy"],
                                ", kernel %.0f%%" % (100 * rec["kernel_frac"])
                                if "kernel_frac" in rec else ""))
                        check_alive(bench, t, dataset, mix, rnd)
                    if dataset == "100":
                        for mix in bench.o.lat_mixes:
                            if mix not in t.mixes:
                                continue
                            r = latency_run(bench, t, dataset, mix, rnd)
                            check_alive(bench, t, dataset, "latency " + mix, rnd)
                            bench.results["latency"].append(r)
                            log("  %-12s latency %-10s p50 %s us p99 %s us p99.9 %s us "
                                "(%d/%d answered)" % (t.key, mix, r["p50_us"], r["p99_us"],
                                                      r["p999_us"], r["completed"], r["sent"]))
                finally:
                    t.stop()
            bench.save()


def check_alive(bench, t, dataset, what, rnd):
    if t.proc is not None and t.proc.poll() is not None:
        note = ("%s exited with status %s during round %d, %s names, %s; see logs/%s" % (
            t.label, t.proc.returncode, rnd + 1, dataset, what, os.path.basename(t.proc.logpath)))
        if note not in bench.results["notes"]:
            bench.results["notes"].append(note)
            log(note)

