"""The sync-scale phase: fabdnsd (XDP) fed 1k/10k/100k GlobalServices from a file and from the
hub stand-in. Per size and source: time to the first answer, to the full kernel map (seen on
the daemon's metrics endpoint, with its own compile + apply time), from one change to the
kernel answering it, and memory and idle CPU in the steady state."""
import os
import statistics
import time

import gen
import hub_standin
from common import HarnessError, log, plumbing
from load import probe, probe_result, probe_start
from measure import map_bytes, wait_synced
from targets import FabdnsXdp


def sync_scale(bench):
    env = bench.env
    env.host_xdp("none")
    env.client_xdp_pass()
    sdir = os.path.join(env.state, "scale")
    os.makedirs(sdir, exist_ok=True)
    sources = ["file"] + (["hub"] if bench.o.hub else [])
    certs = hub_standin.make_certs(sdir) if "hub" in sources else None
    for n in bench.o.scale:
        for src in sources:
            try:
                rec = sync_one(bench, n, src, sdir, certs)
                bench.results["sync"].append(rec)
                log("  sync %-4s %6d services: first answer %.3fs, kernel map %.3fs, "
                    "change->kernel %s s, RSS %.1f MiB, maps %.1f MiB" % (
                        src, n, rec["first_answer_s"] or -1, rec["kernel_sync_s"] or -1,
                        rec["change_s"], rec["rss_kib"] / 1024, rec["map_bytes"] / 2**20))
            except HarnessError as e:
                bench.results["notes"].append("sync %s %d failed: %s" % (src, n, str(e)[:300]))
                log("sync %s %d failed: %s" % (src, n, e))
            bench.save()
    env.host_xdp("pass")


def sync_one(bench, n, src, sdir, certs):
    env = bench.env
    t = FabdnsXdp(env, None, bench.o)
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
        hub, source = hub_standin.start(env, path, certs, "hub-%d" % n, bench.o.hub_interval)
    cfg = t.config("scale", source=source, capacity=capacity)
    name, addr = gen.name(n - 1), gen.v4(n - 1)
    rec = {"source": src, "services": n, "endpoints_per_service": 3, "capacity": capacity}
    try:
        # The probe polls from before the daemon starts: first answer = start -> dig answers.
        prb = probe_start(env, name, addr, timeout=180, interval=0.005)
        time.sleep(0.3)
        t0 = time.monotonic()
        t.launch(cfg, "fabdnsd-sync-%s-%d" % (src, n))
        answered = probe_result(prb, timeout=200)
        rec["first_answer_s"] = answered - t0 if answered is not None else None
        # kernel map filled: the daemon's metrics say it applied all n services
        synced = wait_synced(t.daemon, n, timeout=180)
        rec["kernel_sync_s"] = synced[0] - t0 if synced else None
        rec["map_entries"], rec["compile_apply_ms"] = synced[1:] if synced else (None, None)
        ks0 = t.kernel_answers() or 0
        probe(env, name, addr, timeout=5)
        ks1 = t.kernel_answers() or 0
        rec["kernel_answers_probe"] = int(ks1 - ks0)
        # one change: service k's own-cluster address; time until the kernel answers it
        changes = []
        for i in range(bench.o.changes if n < 100000 else 1):
            new = "10.250.%d.%d" % (i, (k % 250) + 1)
            prb = probe_start(env, gen.name(k), new, timeout=120, interval=0.001)
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
            answered = probe_result(prb, timeout=150)
            changes.append(round(answered - t1, 4) if answered is not None else None)
            time.sleep(0.5)
        rec["changes_s"] = changes
        ok = [c for c in changes if c is not None]
        rec["change_s"] = round(statistics.median(ok), 4) if ok else None
        # steady state: memory and the daemon's CPU while nothing changes
        cpu0 = plumbing.cpu_ns(t.proc.pid)
        time.sleep(bench.o.idle_window)
        rec["idle_cpu_frac"] = (plumbing.cpu_ns(t.proc.pid) - cpu0) / 1e9 / bench.o.idle_window
        rec["rss_kib"], rec["hwm_kib"] = plumbing.memory_kib(t.proc.pid)
        rec["map_bytes"] = map_bytes(env.pin + "/fabdns")
    finally:
        t.stop()
        if hub:
            env.stop(hub)
    return rec
