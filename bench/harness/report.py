"""Turns bench.py's raw results into results.md and PNG plots (matplotlib, Agg)."""
import json
import os
import statistics
import sys

ORDER = ["ref", "fabdns-xdp", "fabdns-tc", "fabdns-user", "knot-xdp", "knot-sock", "unbound"]
COLS = [("100", "A"), ("100", "A+EDNS"), ("100", "AAAA"), ("100", "90/10 miss"), ("10k", "A")]
COL_LABEL = {("100", "A"): "A", ("100", "A+EDNS"): "A + EDNS", ("100", "AAAA"): "AAAA",
             ("100", "90/10 miss"): "90 % hit / 10 % miss", ("10k", "A"): "A, 10k names"}
GOALS = [
    # (label, target, reference target, minimum ratio)
    ("fabdns XDP >= 1.3x Knot AF_XDP", "fabdns-xdp", "knot-xdp", 1.3),
    ("fabdns TC >= 0.60x reference", "fabdns-tc", "ref", 0.60),
    ("fabdns user space >= 1.0x Knot sockets", "fabdns-user", "knot-sock", 1.0),
    ("fabdns kernel/user-space ratio >= 5x", "fabdns-xdp", "fabdns-user", 5.0),
]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def kfmt(q):
    if q is None:
        return "–"
    return "%.0fk" % (q / 1000) if q >= 10000 else "%.1fk" % (q / 1000) if q >= 1000 else "%.0f" % q


def labels(res):
    out = {}
    for r in res["throughput"] + res["latency"]:
        out[r["target"]] = r["label"]
    return out


def group(rows, *keys):
    g = {}
    for r in rows:
        g.setdefault(tuple(r[k] for k in keys), []).append(r)
    return g


def paired_ratio(res, a, b, dataset="100", mix="A"):
    """Median of medians ratio, and the range of per-round ratios (rounds are interleaved)."""
    tp = group(res["throughput"], "target", "dataset", "mix")
    ra = tp.get((a, dataset, mix), [])
    rb = tp.get((b, dataset, mix), [])
    ma, mb = med([r["qps"] for r in ra]), med([r["qps"] for r in rb])
    if not ma or not mb:
        return None, None, None
    byr = {r["round"]: r["qps"] for r in rb}
    per = [r["qps"] / byr[r["round"]] for r in ra if byr.get(r["round"])]
    return ma / mb, (min(per) if per else None), (max(per) if per else None)


def capacity(res, t, dataset="100", mix="A"):
    rs = [r for r in res["throughput"] if r["target"] == t and r["dataset"] == dataset
          and r["mix"] == mix and r.get("cpu_us_per_answer")]
    v = med([1e6 / r["cpu_us_per_answer"] for r in rs])
    return v


def valid(res):
    """A copy of the results without runs during which the server exited."""
    out = dict(res)
    for k in ("throughput", "latency"):
        out[k] = [r for r in res.get(k, []) if not r.get("invalid")]
    return out


def tables(res):
    L = []
    lab = labels(res)
    targets = [t for t in ORDER if t in lab]
    tp = group(res["throughput"], "target", "dataset", "mix")
    cols = [c for c in COLS if any((t,) + c in tp for t in targets)]
    m = res["meta"]

    L.append("## Set-up\n")
    L.append("| | |\n|---|---|")
    for k, v in [("date", m.get("date")), ("kernel", m.get("kernel")),
                 ("CPU", "%s, %s vCPUs, %s GiB" % (m.get("cpu"), m.get("ncpu"), m.get("mem_gib"))),
                 ("CPUs", "server side (NAPI kthread of the host veth, servers) on CPU %s; load "
                  "generator and client NAPI kthread on CPU %s" % (m.get("server_cpu"), m.get("client_cpu"))),
                 ("fabdns", "%s (%s)" % (m.get("fabdnsd"), m.get("git"))),
                 ("others", "%s; %s; %s; dnsperf %s" % (m.get("knotd"), m.get("unbound"),
                                                        m.get("kxdpgun"), m.get("dnsperf"))),
                 ("runs", "%s rounds (targets round-robin), kxdpgun %s s per run offering %s qps; "
                  "dnsperf %s s at %s qps" % (m.get("rounds"), m.get("duration_s"),
                                             m.get("offered_qps"), m.get("lat_duration_s"),
                                             m.get("lat_qps"))),
                 ("load average", "before %s, after %s, 1-min samples during the run: median %s, "
                  "max %s" % (m.get("load_before", ["?"])[0], m.get("load_after", ["?"])[0],
                              med(m.get("load_samples") or []),
                              max(m.get("load_samples") or [0]) or "?")),
                 ("elapsed", "%s s" % m.get("elapsed_s"))]:
        L.append("| %s | %s |" % (k, v))
    L.append("")

    if targets:
        L.append("## Throughput (answered queries per second)\n")
        L.append("Answers per second that the server side put onto the veth (host end: tx packets "
                 "+ tx drops, i.e. replies built, whether or not the client's ring had room); median "
                 "over rounds (min–max). Ratios: median over median, A mix, per-round ratio range "
                 "in brackets. Offered load: in-kernel paths get all kxdpgun can send; socket "
                 "servers get the rate that gave them the most answers in the sweep below.\n")
        hdr = "| target | " + " | ".join(COL_LABEL[c] for c in cols) + " | vs fabdns XDP | vs reference |"
        L.append(hdr)
        L.append("|---" * (len(cols) + 3) + "|")
        for t in targets:
            cells = []
            for c in cols:
                rs = tp.get((t,) + c, [])
                q = [r["qps"] for r in rs]
                if not q:
                    cells.append("n/a")
                    continue
                cell = "%s (%s–%s)" % (kfmt(med(q)), kfmt(min(q)), kfmt(max(q)))
                cells.append(cell)
            rx = paired_ratio(res, t, "fabdns-xdp")
            rr = paired_ratio(res, t, "ref")
            fr = lambda x: "–" if x[0] is None else "%.2fx [%.2f–%.2f]" % x  # noqa: E731
            L.append("| %s | %s | %s | %s |" % (lab[t], " | ".join(cells), fr(rx), fr(rr)))
        L.append("")
        dl = [(r["delivered_qps"] / r["qps"]) for r in res["throughput"] if r.get("qps")]
        rc = [(r["received_qps"] / r["qps"]) for r in res["throughput"] if r.get("qps")]
        off = [r["sent_qps"] for r in res["throughput"]]
        if dl:
            L.append("Offered load: median %s qps. Of the answers, a median %.0f %% reached the "
                     "client's ring and %.0f %% were parsed by kxdpgun (the client vCPU also "
                     "generates the load).\n" % (kfmt(med(off)), 100 * med(dl), 100 * med(rc)))

        cal = res.get("calibration") or []
        if cal:
            L.append("Offered-rate sweep of the socket servers (A mix, once before the rounds): "
                     "answers/s (CPU µs per answer) at each offered rate; the best rate is used in "
                     "the rounds. At the flood rate the NAPI kthread, which shares the server vCPU, "
                     "takes the CPU away from the server (receive livelock).\n")
            rates = sorted({r["offered"] for r in cal})
            L.append("| target | " + " | ".join("offered %s" % kfmt(q) for q in rates) + " |")
            L.append("|---" * (len(rates) + 1) + "|")
            for t in targets:
                rs = {r["offered"]: r for r in cal if r["target"] == t}
                if not rs:
                    continue
                L.append("| %s | %s |" % (lab[t], " | ".join(
                    "%s (%.1f)" % (kfmt(rs[q]["qps"]), rs[q]["cpu_us_per_answer"] or 0)
                    if q in rs else "–" for q in rates)))
            L.append("")

        kernel = [(t, c, med([r.get("kernel_frac") for r in tp.get((t,) + c, [])]))
                  for t in ("fabdns-xdp", "fabdns-tc") for c in cols]
        kernel = [k for k in kernel if k[2] is not None]
        if kernel:
            L.append("Share of fabdns replies sent by the kernel (stats map `answered` / replies): " +
                     "; ".join("%s %s %.0f %%" % (lab.get(t, t), COL_LABEL[c], 100 * f)
                               for t, c, f in kernel) + ".\n")

        L.append("## CPU per answered query (server side)\n")
        L.append("Run time of the server's threads plus the host veth's NAPI kthread during the run "
                 "(schedstat), divided by the answers; median over rounds, in µs. `busy` = that run "
                 "time over the traffic window (1.0 = the server vCPU fully used).\n")
        L.append("| target | " + " | ".join(COL_LABEL[c] for c in cols) +
                 " | busy (A) | answers per server CPU-second (A) |")
        L.append("|---" * (len(cols) + 3) + "|")
        for t in targets:
            cells = []
            for c in cols:
                v = med([r["cpu_us_per_answer"] for r in tp.get((t,) + c, [])])
                cells.append("%.2f" % v if v is not None else "n/a")
            busy = med([r["server_cpu_busy"] for r in tp.get((t, "100", "A"), [])])
            cap = capacity(res, t)
            L.append("| %s | %s | %s | %s |" % (lab[t], " | ".join(cells),
                                               "%.0f %%" % (100 * busy) if busy is not None else "–",
                                               kfmt(cap)))
        L.append("")
        L.append("*answers per server CPU-second* = 10⁶ / (µs per answer): what one fully used "
                 "server vCPU would answer at that cost. It does not depend on how much of the "
                 "CPU the target got on this shared machine, so it ranks the paths more stably "
                 "than raw throughput when other work competes for the CPUs.\n")

    if res["latency"]:
        L.append("## Latency (dnsperf at a fixed rate)\n")
        lt = group(res["latency"], "target", "mix")
        rate = res["latency"][0]["rate"]
        L.append("dnsperf at %s qps (below every target's saturation), one client; percentiles of "
                 "per-query latency from `dnsperf -v`, median over rounds, in µs. During these "
                 "runs the NAPI kthreads of both veth ends run SCHED_FIFO, so that their wake-ups "
                 "do not queue behind unrelated work on the shared CPUs; servers and dnsperf "
                 "stay SCHED_OTHER.\n" % rate)
        L.append("| target | mix | p50 | p90 | p99 | p99.9 | max | answered |")
        L.append("|---|---|---|---|---|---|---|---|")
        for mix in ("A", "A+EDNS", "AAAA", "90/10 miss"):
            for t in targets:
                rs = lt.get((t, mix))
                if not rs:
                    continue
                f = lambda k: "%.0f" % med([r[k] for r in rs]) if med([r[k] for r in rs]) is not None else "–"  # noqa
                ans = sum(r["completed"] for r in rs) / max(1, sum(r["sent"] for r in rs))
                L.append("| %s | %s | %s | %s | %s | %s | %s | %.2f %% |" % (
                    lab[t], mix, f("p50_us"), f("p90_us"), f("p99_us"), f("p999_us"), f("max_us"),
                    100 * ans))
        L.append("")

    goal_rows = []
    for label, a, b, need in GOALS:
        r, lo, hi = paired_ratio(res, a, b)
        if r is None:
            continue
        verdict = lambda x: "–" if x is None else "met" if x >= need else \
            "missed by %.0f %%" % (100 * (1 - x / need))  # noqa: E731
        ca, cb = capacity(res, a), capacity(res, b)
        cr = ca / cb if ca and cb else None
        goal_rows.append((label, r, lo, hi, verdict(r), cr, verdict(cr)))
    if goal_rows:
        L.append("## Goals (A mix, 100 names)\n")
        L.append("Throughput ratio (median over median, per-round range) and the same ratio of "
                 "answers per server CPU-second.\n")
        L.append("| goal | throughput ratio | per-round range | verdict | CPU-normalised ratio "
                 "| verdict |")
        L.append("|---|---|---|---|---|---|")
        for label, r, lo, hi, v, cr, cv in goal_rows:
            L.append("| %s | %.2fx | %.2f–%.2f | %s | %s | %s |" % (
                label, r, lo or 0, hi or 0, v, "%.2fx" % cr if cr else "–", cv))
        L.append("")

    if res.get("bpf_stats"):
        L.append("## bpf_stats: fabdns XDP beside the reference\n")
        L.append("ns per program run (`run_time_ns / run_cnt`, `kernel.bpf_stats_enabled=1`) and "
                 "answers/s under kxdpgun, medians of %d interleaved rounds.\n"
                 % len({r["round"] for r in res["bpf_stats"]["runs"]}))
        L.append("| case | program | ns per run | / reference's, same round | answers/s "
                 "| answered in the kernel |")
        L.append("|---|---|---|---|---|---|")
        for m in res["bpf_stats"]["medians"]:
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                m["case"], m["program"], "%.0f" % m["ns_per_run"] if m["ns_per_run"] else "–",
                "%.2fx" % m["ratio_to_ref"] if m.get("ratio_to_ref") else "–",
                kfmt(m["qps"]), "%.0f %%" % (100 * m["kernel_frac"])
                if m["kernel_frac"] is not None else "–"))
        L.append("")

    if res.get("profile"):
        L.append("## Where the time goes\n")
        L.append("One extra A-mix run per target with `kernel.bpf_stats_enabled=1` (ns per program "
                 "run from `bpftool prog show`; the counters themselves cost a little), then one "
                 "with `perf record -e cpu-clock` on the server's threads and the host end's NAPI "
                 "kthread (no hardware counters in this VM; symbols above 1.5 %).\n")
        L.append("| target | program | ns per run | runs | qps with stats on | CPU µs/answer |")
        L.append("|---|---|---|---|---|---|")
        for t in targets:
            p = res["profile"].get(t)
            if not p:
                continue
            progs = p.get("bpf") or {"–": {"ns_per_run": None, "runs": 0}}
            for name, v in progs.items():
                L.append("| %s | %s | %s | %s | %s | %s |" % (
                    lab[t], name, "%.0f" % v["ns_per_run"] if v.get("ns_per_run") else "–",
                    v.get("runs", 0), kfmt(p.get("qps_with_stats")),
                    "%.2f" % p["cpu_us_per_answer"] if p.get("cpu_us_per_answer") else "–"))
        L.append("")
        for t in targets:
            p = res["profile"].get(t)
            if p and p.get("perf_top"):
                L.append("<details><summary>perf, server CPU, %s</summary>\n\n```" % lab[t])
                L.extend(p["perf_top"])
                L.append("```\n</details>\n")

    if res.get("sync"):
        L.append("## Sync scale\n")
        L.append("GlobalServices with 3 endpoints each (node's own cluster, two others), fabdns XDP "
                 "on the veth. *first answer*: daemon start → the last service answers (client "
                 "namespace, 5 ms polls); *kernel map filled*: start → the daemon's sync log line; "
                 "*change → kernel*: the source rewritten with one service's address changed → "
                 "the kernel answers the new address (1 ms polls, median of the changes); *idle "
                 "CPU*: the daemon's CPU share while nothing changes; map memory = memlock of the "
                 "pinned maps.\n")
        L.append("| source | services | kernel answers | first answer (s) | kernel map filled (s) "
                 "| compile+apply (ms) | change → kernel (s) | idle CPU | RSS (MiB) | map memory (MiB) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        f3 = lambda v: "%.3f" % v if v is not None else "–"  # noqa: E731
        for s in res["sync"]:
            L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %.1f | %.1f |" % (
                s["source"], s["services"], s.get("map_entries"), f3(s.get("first_answer_s")),
                f3(s.get("kernel_sync_s")), "%.0f" % s["compile_apply_ms"]
                if s.get("compile_apply_ms") is not None else "–", f3(s.get("change_s")),
                "%.1f %%" % (100 * s["idle_cpu_frac"]) if s.get("idle_cpu_frac") is not None else "–",
                s.get("rss_kib", 0) / 1024, s.get("map_bytes", 0) / 2**20))
        L.append("")

    mic = res.get("micro")
    if mic is not None:
        L.append("## Micro-benchmarks (bench/micro.sh)\n")
        if not mic.get("present"):
            L.append("bench/micro.sh not present; skipped.\n")
        else:
            if mic.get("rc") not in (0,):
                L.append("bench/micro.sh exited with %s.\n" % mic.get("rc"))
            out = (mic.get("stdout") or "").strip()
            L.append(out if "|" in out else "```\n%s\n```" % out)
            L.append("")

    if res.get("notes"):
        L.append("## Notes\n")
        for n in res["notes"]:
            L.append("- " + n.replace("\n", " "))
        L.append("")
    return "\n".join(L)


def plots(res, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib not available: no plots"]
    made = []
    lab = labels(res)
    targets = [t for t in ORDER if t in lab]
    tp = group(res["throughput"], "target", "dataset", "mix")
    cols = [c for c in COLS if any((t,) + c in tp for t in targets)]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    if cols and targets:
        fig, ax = plt.subplots(figsize=(11, 5))
        w = 0.8 / len(targets)
        for i, t in enumerate(targets):
            xs, ys, lo, hi = [], [], [], []
            for j, c in enumerate(cols):
                q = [r["qps"] / 1000 for r in tp.get((t,) + c, [])]
                if not q:
                    continue
                m = med(q)
                xs.append(j + (i - (len(targets) - 1) / 2) * w)
                ys.append(m)
                lo.append(m - min(q))
                hi.append(max(q) - m)
            ax.bar(xs, ys, w, yerr=[lo, hi], capsize=2, label=lab[t], color=colors[i % len(colors)])
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels([COL_LABEL[c] for c in cols])
        ax.set_ylabel("answered kqps (median, min–max)")
        ax.set_title("Throughput, one server vCPU (kxdpgun over veth)")
        ax.legend(fontsize=8, ncol=2)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "throughput.png"), dpi=110)
        plt.close(fig)
        made.append("throughput.png")

        fig, ax = plt.subplots(figsize=(11, 4.5))
        for i, t in enumerate(targets):
            xs, ys = [], []
            for j, c in enumerate(cols):
                v = med([r["cpu_us_per_answer"] for r in tp.get((t,) + c, [])])
                if v is None:
                    continue
                xs.append(j + (i - (len(targets) - 1) / 2) * w)
                ys.append(v)
            ax.bar(xs, ys, w, label=lab[t], color=colors[i % len(colors)])
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels([COL_LABEL[c] for c in cols])
        ax.set_yscale("log")
        ax.set_ylabel("server CPU µs per answer (log)")
        ax.set_title("CPU cost per answered query")
        ax.legend(fontsize=8, ncol=2)
        ax.grid(axis="y", alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "cpu.png"), dpi=110)
        plt.close(fig)
        made.append("cpu.png")

    if res["latency"]:
        lt = group(res["latency"], "target", "mix")
        mixes = [m for m in ("A", "A+EDNS", "AAAA", "90/10 miss") if any((t, m) in lt for t in targets)]
        fig, axes = plt.subplots(1, len(mixes), figsize=(5.5 * len(mixes), 4.5), squeeze=False)
        pcts = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]
        for ax, mix in zip(axes[0], mixes):
            ts = [t for t in targets if (t, mix) in lt]
            w = 0.8 / len(pcts)
            for i, (k, name) in enumerate(pcts):
                ys = [med([r[k] for r in lt[(t, mix)]]) or 0 for t in ts]
                ax.bar([j + (i - 1) * w for j in range(len(ts))], ys, w, label=name)
            ax.set_xticks(range(len(ts)))
            ax.set_xticklabels([lab[t] for t in ts], rotation=30, ha="right", fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel("µs (log)")
            ax.set_title("Latency, %s, dnsperf %s qps" % (mix, res["latency"][0]["rate"]))
            ax.grid(axis="y", alpha=0.3, which="both")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "latency.png"), dpi=110)
        plt.close(fig)
        made.append("latency.png")

    if res.get("sync"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
        for src in sorted({s["source"] for s in res["sync"]}):
            ss = sorted([s for s in res["sync"] if s["source"] == src], key=lambda s: s["services"])
            n = [s["services"] for s in ss]
            for key, name, style in (("first_answer_s", "first answer", "o-"),
                                     ("kernel_sync_s", "kernel map filled", "s--"),
                                     ("change_s", "change → kernel", "^:")):
                pts = [(x, s.get(key)) for x, s in zip(n, ss) if s.get(key) is not None]
                if pts:
                    a1.plot([p[0] for p in pts], [p[1] for p in pts], style,
                            label="%s (%s)" % (name, src))
            a2.plot(n, [s.get("rss_kib", 0) / 1024 for s in ss], "o-", label="daemon RSS (%s)" % src)
            if src == "file":
                a2.plot(n, [s.get("map_bytes", 0) / 2**20 for s in ss], "s--", label="BPF maps (memlock)")
        for a in (a1, a2):
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel("GlobalServices (3 endpoints each)")
            a.grid(alpha=0.3, which="both")
            a.legend(fontsize=8)
        a1.set_ylabel("seconds")
        a1.set_title("Sync: time to answer")
        a2.set_ylabel("MiB")
        a2.set_title("Sync: memory")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "sync.png"), dpi=110)
        plt.close(fig)
        made.append("sync.png")
    return made


def write(res, outdir):
    notes = ["a run of %s (%s, %s, round %s) is left out: %s" % (
        r["label"], r["dataset"], r["mix"], r["round"] + 1, r["invalid"])
        for k in ("throughput", "latency") for r in res.get(k, []) if r.get("invalid")]
    res = valid(res)
    res["notes"] = list(res.get("notes", [])) + notes
    made = plots(res, outdir)
    md = ["# fabdns benchmark results\n"]
    imgs = [m for m in made if m.endswith(".png")]
    if imgs:
        md.append(" ".join("![%s](%s)" % (i[:-4], i) for i in imgs) + "\n")
    else:
        md.extend("- " + m for m in made)
    md.append(tables(res))
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(md))
    return os.path.join(outdir, "results.md")


if __name__ == "__main__":
    d = sys.argv[1]
    with open(os.path.join(d, "raw.json")) as f:
        print(write(json.load(f), d))
