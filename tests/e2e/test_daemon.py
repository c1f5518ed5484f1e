"""fabdnsd as a whole, asked by real dig (SPEC §1-§5): each test runs its own daemon inside its
own network namespace, with the datapath on that namespace's `lo` (xdp-generic) and the
resolver on 127.0.0.1 and ::1, so hot A/AAAA queries over UDP are answered by the kernel and
everything else by user space, and both are checked where it matters."""

import os
import random
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

import e2elib as lib
from conftest import example_manifests, headless_manifest

NGINX = "nginx.default.svc.global"
SUZHOU_A = ["10.234.0.10"]


def soa_in_authority(r):
    return [rec for rec in r.authority if rec.rtype == "SOA"]


def test_udp_and_tcp_give_the_same_answer(e2e):
    node = e2e.node()
    udp, tcp = node.dig(NGINX), node.dig(NGINX, "A", "+tcp")
    assert udp.transport == "UDP" and tcp.transport == "TCP"
    for r in (udp, tcp):
        assert r.status == "NOERROR" and "aa" in r.flags and r.addresses() == SUZHOU_A, r
    # Every naming form of SPEC §3.
    for name, want in (("nginx.default.global", SUZHOU_A),
                       ("beijing.nginx.default.svc.global", ["10.233.0.10"]),
                       ("nginx.default.beijing.global", ["10.233.0.10"]),
                       ("web-1.beijing.web.default.svc.global", ["10.243.2.7"]),
                       ("web.default.svc.global", ["10.243.1.5", "10.243.2.7"])):
        for opts in ((), ("+tcp",)):
            r = node.dig(name, "A", *opts)
            assert r.status == "NOERROR" and r.addresses("A") == want, r


def test_edns_payload_size_and_do_bit(e2e):
    node = e2e.node()
    # Kernel-answered (A over UDP) and user-space answered (TCP, a pod name) alike.
    for name, opts in ((NGINX, ()), (NGINX, ("+tcp",)),
                       ("web-0.beijing.web.default.svc.global", ())):
        r = node.dig(name, "A", "+bufsize=1232", *opts)
        assert r.edns and r.edns["udp"] == 1232 and "do" not in r.edns["flags"], r
        r = node.dig(name, "A", "+bufsize=4096", "+dnssec", *opts)
        assert r.edns and r.edns["udp"] == 1232 and "do" in r.edns["flags"], r
        assert r.status == "NOERROR" and r.answer, r
        r = node.dig(name, "A", "+noedns", *opts)
        assert r.edns is None and r.status == "NOERROR", r
    # Unknown EDNS version: BADVERS, with an OPT back.
    r = node.dig(NGINX, "A", "+edns=1", "+noednsneg")
    assert r.status == "BADVERS" and r.edns is not None, r
    # A cookie is ignored, not refused.
    r = node.dig(NGINX, "A", "+cookie")
    assert r.status == "NOERROR" and r.addresses() == SUZHOU_A, r


def comparable(r):
    return (r.status, sorted(r.flags), r.edns and (r.edns["version"], sorted(r.edns["flags"]),
                                                   r.edns["udp"]),
            r.question, sorted((x.name, x.ttl, x.rclass, x.rtype, x.rdata) for x in r.answer),
            sorted((x.name, x.rtype) for x in r.authority))


def test_kernel_and_resolver_give_the_same_reply(e2e):
    """UDP hits come from the kernel, TCP always from user space: same reply, bit for bit as
    dig shows it (SPEC §4: same rcode, flags, records, TTL, OPT)."""
    node = e2e.node()
    kernel = node.daemon.kernel_answers()
    names = [NGINX, "NGINX.Default.Global", "shanghai.nginx.default.svc.global",
             "nginx.default.beijing.global", "mysql.default.svc.global", "web.default.svc.global"]
    for name in names:
        for qtype in ("A", "AAAA"):
            for opts in ((), ("+noedns",), ("+dnssec",), ("+bufsize=512",), ("+cdflag",),
                         ("+norec",)):
                udp = node.dig(name, qtype, *opts)
                tcp = node.dig(name, qtype, "+tcp", *opts)
                assert udp.transport == "UDP" and tcp.transport == "TCP"
                assert comparable(udp) == comparable(tcp), f"{udp}\n{tcp}"
    # Most of those UDP queries were kernel hits (mysql's AAAA NODATA included).
    assert node.daemon.kernel_answers() - kernel >= len(names) * 6

def test_0x20_mixed_case_is_kept(e2e):
    node = e2e.node()
    name = "NgInX.DeFaULt.sVc.GlObAl"
    for qtype, opts in (("A", ()), ("AAAA", ()), ("A", ("+tcp",)), ("TXT", ())):
        r = node.dig(name, qtype, *opts)
        assert r.question and r.question[0].split()[0] == name + ".", r
        for rec in r.answer:
            assert rec.name == name + ".", r
        if qtype != "TXT":
            assert r.answer, r


def test_nxdomain_and_nodata_carry_the_soa(e2e):
    node = e2e.node()
    cases = [
        ("nosuch.default.svc.global", "A", "NXDOMAIN"),
        ("nosuch.default.svc.global", "A+tcp", "NXDOMAIN"),
        ("web-9.beijing.web.default.svc.global", "A", "NXDOMAIN"),
        ("pod.beijing.nginx.default.svc.global", "A", "NXDOMAIN"),  # hostname on ClusterIP
        ("mysql.default.svc.global", "AAAA", "NOERROR"),  # exists, no IPv6
        (NGINX, "TXT", "NOERROR"),
        ("default.svc.global", "A", "NOERROR"),  # empty non-terminal
    ]
    for name, qtype, status in cases:
        opts = ("+tcp",) if qtype.endswith("+tcp") else ()
        r = node.dig(name, qtype.replace("+tcp", ""), *opts)
        assert r.status == status and not r.answer, r
        assert "aa" in r.flags, r
        soa = soa_in_authority(r)
        assert len(soa) == 1 and soa[0].name.lower() == "global.", r
    # The apex answers SOA and NS.
    for qtype in ("SOA", "NS"):
        r = node.dig("global", qtype)
        assert r.status == "NOERROR" and [x.rtype for x in r.answer] == [qtype], r
    # Outside every zone without an upstream: REFUSED.
    r = node.dig("www.example.test", "A")
    assert r.status == "REFUSED", r


def test_truncation_over_udp_and_whole_over_tcp(e2e):
    node = e2e.node(manifests=example_manifests() + "---\n" + headless_manifest("big", 60))
    name = "big.default.svc.global"
    r = node.dig(name, "A", "+noedns", "+ignore")
    assert r.status == "NOERROR" and "tc" in r.flags, r
    r = node.dig(name, "A", "+tcp")
    assert "tc" not in r.flags and len(r.addresses("A")) == 60, r
    # With EDNS the 60 records fit in 1232 bytes.
    r = node.dig(name, "A", "+bufsize=1232", "+ignore")
    assert "tc" not in r.flags and len(r.addresses("A")) == 60, r
    assert node.daemon.metrics()["fabdns_truncated_total"] >= 1
    # One pod of the 60.
    assert node.dig("big-59.suzhou.big.default.svc.global").addresses() == ["10.250.0.60"]


def test_forwards_outside_names_to_unbound(e2e):
    ns = e2e.netns()
    upstream = e2e.unbound(ns)
    node = e2e.node(ns=ns, upstream=[f"127.0.0.1:{upstream.port}"])
    for opts in ((), ("+tcp",)):
        r = node.dig("www.example.test", "A", *opts)
        assert r.status == "NOERROR" and r.addresses() == ["192.0.2.7"], r
        r = node.dig("WWW.Example.TEST", "AAAA", *opts)
        assert r.status == "NOERROR" and r.addresses() == ["2001:db8::7"], r
        r = node.dig("nope.example.test", "A", *opts)
        assert r.status == "NXDOMAIN", r
    assert node.daemon.metrics()["fabdns_forwarded_total"] >= 6
    # The zone itself is still answered locally.
    assert node.dig(NGINX).addresses() == SUZHOU_A


def write_atomically(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.rename(tmp, path)


def answers_everywhere(node, want, timeout):
    """Waits until both the kernel (UDP) and user space (TCP) answer NGINX A with want."""
    def both():
        return node.dig(NGINX, timeout=1).addresses() == want and \
            node.dig(NGINX, "A", "+tcp", timeout=1).addresses() == want
    return lib.wait_until(both, timeout, interval=0.05)


def test_manifest_edits_apply_without_restart(e2e):
    node = e2e.node()
    pid = node.daemon.pid
    text = example_manifests()
    assert "10.234.0.10" in text
    # Edited in place, as `vi`/`sed -i`-less tools do.
    t0 = time.monotonic()
    node.manifest.write_text(text.replace('"10.234.0.10"', '"10.234.0.99"'))
    assert answers_everywhere(node, ["10.234.0.99"], 1.0), node.daemon.log()
    elapsed = time.monotonic() - t0
    before = node.daemon.kernel_answers()
    assert node.dig(NGINX).addresses() == ["10.234.0.99"]
    assert node.daemon.kernel_answers() == before + 1, "the new answer is not in the kernel"
    # Replaced by rename, as editors and ConfigMap updates do.
    write_atomically(node.manifest, text.replace('"10.234.0.10"', '"10.234.0.42"'))
    assert answers_everywhere(node, ["10.234.0.42"], 1.0), node.daemon.log()
    assert node.daemon.alive() and node.daemon.pid == pid
    print(f"in-place edit visible after {elapsed:.3f}s")


def test_configmap_volume_update_applies(e2e, tmp_path):
    """A Kubernetes ConfigMap volume: services.yaml -> ..data/services.yaml, ..data -> a
    timestamped directory; an update swaps the ..data symlink atomically."""
    vol = tmp_path / "configmap"
    vol.mkdir()
    (vol / "..2026_01").mkdir()
    (vol / "..2026_01" / "services.yaml").write_text(example_manifests())
    os.symlink("..2026_01", vol / "..data")
    os.symlink("..data/services.yaml", vol / "services.yaml")
    node = e2e.node(extra={"source": {"kind": "file",
                                      "file": {"path": str(vol / "services.yaml")}}})
    assert node.dig(NGINX).addresses() == SUZHOU_A
    (vol / "..2026_02").mkdir()
    (vol / "..2026_02" / "services.yaml").write_text(
        example_manifests().replace('"10.234.0.10"', '"10.234.0.77"'))
    os.symlink("..2026_02", vol / "..data_tmp")
    os.rename(vol / "..data_tmp", vol / "..data")
    assert answers_everywhere(node, ["10.234.0.77"], 1.0), node.daemon.log()


def test_directory_source_picks_up_new_files(e2e, tmp_path):
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "examples.yaml").write_text(example_manifests())
    node = e2e.node(extra={"source": {"kind": "file", "file": {"path": str(d)}}})
    assert node.dig("big.default.svc.global", timeout=1).status == "NXDOMAIN"
    write_atomically(d / "big.yaml", headless_manifest("big", 3))
    name = "big.default.svc.global"
    assert lib.wait_until(
        lambda: node.dig(name, timeout=1).addresses() == ["10.250.0.1", "10.250.0.2",
                                                          "10.250.0.3"], 1.0), node.daemon.log()
    kernel = node.daemon.kernel_answers()
    assert node.dig(name).addresses() == ["10.250.0.1", "10.250.0.2", "10.250.0.3"]
    assert node.daemon.kernel_answers() == kernel + 1
    # Removing the file removes the service, from the kernel too.
    (d / "big.yaml").unlink()
    assert lib.wait_until(lambda: node.dig(name, timeout=1).status == "NXDOMAIN", 1.0)
    assert node.dig(NGINX).addresses() == SUZHOU_A

@pytest.mark.parametrize("bad", ["nginx: [unclosed\n", ",\n", "{},\n", "---\n,\n"],
                         ids=["syntax", "comma", "map-comma", "doc-comma"])
def test_yaml_error_keeps_the_old_answers(e2e, bad):
    node = e2e.node()
    failures = node.daemon.metrics().get('fabdns_sync_failures_total{source="file"}', 0)
    node.manifest.write_text(bad)
    assert lib.wait_until(
        lambda: node.daemon.metrics().get('fabdns_sync_failures_total{source="file"}', 0)
        > failures, 3), node.daemon.log()
    for opts in ((), ("+tcp",)):
        assert node.dig(NGINX, "A", *opts).addresses() == SUZHOU_A
    assert node.daemon.alive()
    # A good file afterwards is taken.
    write_atomically(node.manifest, example_manifests().replace('"10.234.0.10"', '"10.234.0.7"'))
    assert answers_everywhere(node, ["10.234.0.7"], 2.0), node.daemon.log()


def test_malformed_packets_then_a_good_query(e2e):
    node = e2e.node()
    rng = random.Random(1234)
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = lib.ns_socket(node.ns, fam, socket.SOCK_DGRAM)
        try:
            for size in list(range(0, 40)) + [rng.randrange(40, 1500) for _ in range(200)]:
                s.sendto(bytes(rng.randrange(256) for _ in range(size)), (host, node.port))
            # A query with a wrong question count, and one whose name runs off the end.
            s.sendto(lib.build_query(NGINX)[:12] + b"\x05ab", (host, node.port))
        finally:
            s.close()
    # Garbage over TCP: a length prefix with random bytes, then a connection cut short.
    for size in (0, 1, 2, 7, 300):
        c = lib.ns_socket(node.ns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            c.settimeout(2)
            c.connect(("127.0.0.1", node.port))
            c.sendall(bytes(rng.randrange(256) for _ in range(size)))
        finally:
            c.close()
    # A readable header with a broken question: FORMERR, same id.
    reply = lib.udp_exchange(node.ns, "127.0.0.1", node.port,
                             lib.build_query(NGINX, qid=0xBEEF)[:20])
    assert reply is not None
    h = lib.parse_header(reply)
    assert h.id == 0xBEEF and h.qr and h.rcode == 1, h
    assert node.daemon.alive(), node.daemon.log()
    for opts in ((), ("+tcp",), ("+noedns",)):
        r = node.dig("web-1.beijing.web.default.svc.global", "A", *opts)
        assert r.addresses() == ["10.243.2.7"], r
    assert node.dig(NGINX).addresses() == SUZHOU_A


def query_loop(ns, port, stop, results, names=(NGINX,), qtypes=("A", "AAAA")):
    """Queries over UDP until stop is set; records (ok, detail) per query. One second per try,
    no retry: a gap in service shows as a failure."""
    i = 0
    while not stop.is_set():
        name, qtype = names[i % len(names)], qtypes[i % len(qtypes)]
        qid = i & 0xFFFF
        reply = lib.udp_exchange(ns, "127.0.0.1", port, lib.build_query(name, qtype, qid=qid),
                                 timeout=1.0)
        ok = reply is not None and lib.parse_header(reply).rcode == 0 and \
            lib.parse_header(reply).an >= 1
        results.append((ok, f"{time.monotonic():.3f} {name} {qtype}: "
                            f"{lib.parse_header(reply) if reply else 'no reply'}"))
        i += 1
        time.sleep(0.01)


def test_sighup_keeps_serving(e2e):
    node = e2e.node()
    stop, results = threading.Event(), []
    t = threading.Thread(target=query_loop, args=(node.ns, node.port, stop, results))
    t.start()
    try:
        for _ in range(3):
            time.sleep(0.3)
            node.daemon.send(signal.SIGHUP)
        time.sleep(0.5)
        r = node.dig("web-0.beijing.web.default.svc.global", "A", "+tcp")
        assert r.addresses() == ["10.243.1.5"], r
    finally:
        stop.set()
        t.join()
    assert node.daemon.alive(), node.daemon.log()
    assert "SIGHUP" in node.daemon.log()
    failed = [d for ok, d in results if not ok]
    assert results and not failed, failed


def test_bad_config_on_sighup_keeps_the_running_one(e2e):
    node = e2e.node()
    text = node.config_path.read_text()
    node.config_path.write_text(text.replace('"ttl": 5', '"ttl": -1'))
    node.daemon.send(signal.SIGHUP)
    assert lib.wait_until(lambda: "dns.ttl" in node.daemon.log(), 3), node.daemon.log()
    assert node.daemon.alive()
    r = node.dig("nginx.default.svc.global", "A", "+tcp")
    assert r.addresses() == ["10.234.0.10"] and r.answer[0].ttl == 5, r


def test_sigterm_then_restart_has_no_gap(e2e):
    node = e2e.node()
    stop, results = threading.Event(), []
    t = threading.Thread(target=query_loop, args=(node.ns, node.port, stop, results))
    t.start()
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        assert node.daemon.stop(signal.SIGTERM, timeout=5) == 0, node.daemon.log()
        assert time.monotonic() - t0 < 5
        # No daemon: the kernel keeps answering the hot names from the pins.
        kernel = node.kernel_stats()["answered"]
        time.sleep(0.5)
        assert node.kernel_stats()["answered"] > kernel
        assert node.dig(NGINX, timeout=1).addresses() == SUZHOU_A
        # ...while what needs user space goes unanswered.
        assert node.dig(NGINX, "A", "+tcp", timeout=1).rc != 0
        # The manifest changes while no daemon runs; the next daemon adopts the pinned maps
        # and links, and brings them up to date.
        write_atomically(node.manifest,
                         example_manifests().replace('"10.234.0.10"', '"10.234.0.33"'))
        node.daemon.start()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    failed = [d for ok, d in results if not ok]
    assert len(results) > 20 and not failed, failed
    assert answers_everywhere(node, ["10.234.0.33"], 1.0), node.daemon.log()
    kernel = node.daemon.kernel_answers()
    assert node.dig(NGINX).addresses() == ["10.234.0.33"]
    assert node.daemon.kernel_answers() == kernel + 1
    assert "xdpgeneric" in lib.iface_xdp(node.ns, "lo")


def test_kernel_stops_answering_when_the_daemon_is_gone(e2e):
    node = e2e.node(stale_after="2s")
    assert node.dig(NGINX).addresses() == SUZHOU_A
    node.daemon.stop(signal.SIGKILL)
    killed = time.monotonic()
    # Fresh for up to 2 s after the last stamp (stamped at least once a second).
    assert node.dig(NGINX, timeout=1).addresses() == SUZHOU_A
    assert node.kernel_stats()["stale"] == 0
    time.sleep(max(0.0, killed + 2.5 - time.monotonic()))
    # Stale: passed to the stack, where nobody listens any more.
    r = node.dig(NGINX, timeout=1)
    assert r.rc != 0 and not r.answer, r
    stale = node.kernel_stats()["stale"]
    assert stale >= 1
    # A new daemon stamps again and the kernel answers again.
    node.daemon.start()
    answered = node.kernel_stats()["answered"]
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert node.kernel_stats()["answered"] == answered + 1
    assert node.kernel_stats()["stale"] == stale


def test_metrics_health_and_readiness(e2e):
    node = e2e.node()
    node.dig(NGINX)
    node.dig(NGINX, "A", "+tcp")
    host, port = node.daemon.metrics_addr
    for path in ("/healthz", "/readyz"):
        r = lib.http_get(node.ns, host, port, path)
        assert r.status == 200, (path, r)
    r = lib.http_get(node.ns, host, port, "/metrics")
    assert r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"), r
    m = lib.parse_metrics(r.body)
    assert m["fabdns_kernel_answers_total"] >= 1
    assert m['fabdns_queries_total{path="user",proto="tcp",rcode="NOERROR"}'] >= 1
    assert m['fabdns_sync_healthy{source="file"}'] == 1
    assert m['fabdns_services{source="file"}'] == 3
    assert lib.http_get(node.ns, host, port, "/nope").status == 404


def test_ready_only_once_the_first_data_set_is_answered(e2e):
    # Behind a readiness probe (NodeLocal DNSCache forwards `global` here), ready means names
    # are answered: not before the first data set, whatever else is up.
    node = e2e.node(start=False)
    node.manifest.unlink()
    node.daemon.start(wait_ready=False)
    assert lib.wait_until(lambda: node.daemon.readyz() is not None, 10), node.daemon.log()
    host, port = node.daemon.metrics_addr
    r = lib.http_get(node.ns, host, port, "/readyz")
    assert r.status == 503, r
    assert "waiting for the first data set from file " + str(node.manifest) in r.body, r
    assert node.dig(NGINX).status == "SERVFAIL"  # up, but nothing to answer from yet
    assert node.dig(NGINX, "A", "+tcp").status == "SERVFAIL"
    assert node.daemon.readyz() == 503

    node.manifest.write_text(example_manifests())
    assert lib.wait_until(lambda: node.daemon.readyz() == 200, 5), node.daemon.log()
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert node.dig(NGINX, "A", "+tcp").addresses() == SUZHOU_A
    # A source that fails later keeps the node ready: the last good set is still answered.
    node.manifest.write_text("kind: [broken\n")
    assert lib.wait_until(lambda: node.daemon.metrics().get('fabdns_sync_healthy{source="file"}')
                          == 0, 5), node.daemon.log()
    assert node.daemon.readyz() == 200
    assert node.dig(NGINX, "A", "+tcp").addresses() == SUZHOU_A


V6ONLY_MANIFEST = """apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata:
  name: ipv6db
  namespace: default
spec:
  type: ClusterIP
  ports:
    - name: db
      protocol: TCP
      port: 5432
  endpoints:
    - addresses: ["fd00:234::77"]
      cluster: suzhou
      zone: suzhou
      region: south
"""


def getaddrinfo_in(ns, name: str) -> list[tuple[int, str]]:
    """glibc getaddrinfo(AF_UNSPEC) inside ns, which sends A and AAAA together to the server of
    /etc/netns/<ns>/resolv.conf (bind-mounted over /etc/resolv.conf by `ip netns exec`)."""
    code = ("import socket, sys\n"
            "try:\n"
            "    r = socket.getaddrinfo(sys.argv[1], 80, socket.AF_UNSPEC, socket.SOCK_DGRAM)\n"
            "except socket.gaierror:\n"
            "    r = []\n"
            "for fam, _, _, _, sa in r:\n"
            "    print(int(fam), sa[0])\n")
    p = lib.run(["ip", "netns", "exec", ns.name, "python3", "-c", code, name], timeout=20)
    return sorted((int(f), a) for f, a in (line.split() for line in p.stdout.splitlines()))


def test_getaddrinfo_pairs_come_from_the_kernel_while_the_daemon_is_stopped(e2e):
    """SPEC §4: a pod's resolver asks A and AAAA together; for an IPv4-only (mysql) and an
    IPv6-only (ipv6db) service both halves, the address and the other family's NODATA, are
    answered in the kernel: with the daemon SIGSTOPped every lookup still completes, the
    kernel counts two answers per lookup, and the answers equal user space's over TCP."""
    ns = e2e.netns()
    node = e2e.node(ns=ns, port=53,
                    manifests=example_manifests() + "---\n" + V6ONLY_MANIFEST)
    conf = Path("/etc/netns") / ns.name
    conf.mkdir(parents=True, exist_ok=True)
    e2e.defer(lambda: shutil.rmtree(conf, ignore_errors=True))
    # One try, short timeout: anything left to the stopped daemon shows as a missing family.
    (conf / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    names = ["mysql.default.svc.global", "ipv6db.default.svc.global"]
    assert answers_everywhere(node, ["10.234.0.10"], 5.0), node.daemon.log()

    before = node.kernel_stats()
    node.daemon.send(signal.SIGSTOP)
    try:
        got = {}
        for _ in range(3):
            for name in names:
                got.setdefault(name, []).append(getaddrinfo_in(ns, name))
        udp = {(name, qtype): node.dig(name, qtype, "+noedns", timeout=1)
               for name in names for qtype in ("A", "AAAA")}
        after = node.kernel_stats()
    finally:
        node.daemon.send(signal.SIGCONT)
    # 3 lookups x 2 names x (A + AAAA), and the 4 dig queries: all answered in the kernel.
    assert after["answered"] - before["answered"] == len(names) * 3 * 2 + 4, (before, after)
    assert after["miss"] == before["miss"], (before, after)

    # The same answers from user space (TCP), once the daemon runs again.
    for name in names:
        want = sorted((socket.AF_INET if q == "A" else socket.AF_INET6, a)
                      for q in ("A", "AAAA") for a in node.dig(name, q, "+tcp").addresses(q))
        assert len(want) == 1, want  # one family only
        assert got[name] == [want] * 3, (name, got[name])
    for (name, qtype), r in udp.items():
        tcp = node.dig(name, qtype, "+noedns", "+tcp")
        assert r.transport == "UDP" and tcp.transport == "TCP"
        assert comparable(r) == comparable(tcp), f"{r}\n{tcp}"
        assert [x.rdata for x in r.authority] == [x.rdata for x in tcp.authority], f"{r}\n{tcp}"
        assert r.status == "NOERROR" and "aa" in r.flags, r
        want_nodata = (qtype == "AAAA") == name.startswith("mysql")
        assert bool(soa_in_authority(r)) == want_nodata and bool(r.answer) != want_nodata, r
