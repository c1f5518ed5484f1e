"""The in-kernel path end to end (SPEC §4): fabdnsd attaches its datapath to an interface,
a client in another namespace asks with dig, and the kernel answers for an address where
nothing listens. Then: detaching leaves no trace.

Topology of the veth tests: fabdnsd runs on the host with its resolver on 127.0.0.1:<free>;
`answer_for` names 10.200.<x>.1:53 and [fd00:200:<x>::1]:53 on the host end of a veth pair,
where no socket is bound, so every reply the client gets was built by the kernel.
"""

import json
import signal

import e2elib as lib

NGINX = "nginx.default.svc.global"
# A suzhou node (region south) gets shanghai's endpoints: same region, nearest tier.
SUZHOU_A = ["10.234.0.10"]
SUZHOU_AAAA = ["fd00:234::10"]


def veth_node(e2e, mode, **kw):
    v = e2e.veth()
    port = lib.free_port()
    node = e2e.node(ns=None, port=port, listen=[f"127.0.0.1:{port}"],
                    answer_for=[f"{v.host4}:53", f"[{v.host6}]:53"],
                    attach=[{"iface": v.host, "mode": mode}], **kw)
    return v, node


def check_kernel_answers(v, node):
    before = node.daemon.kernel_answers()
    for server, qtype, want in ((v.host4, "A", SUZHOU_A), (v.host6, "AAAA", SUZHOU_AAAA),
                                (v.host4, "AAAA", SUZHOU_AAAA), (v.host6, "A", SUZHOU_A)):
        r = lib.dig(v.ns, server, 53, NGINX, qtype)
        assert r.status == "NOERROR", f"{qtype} via {server}:\n{r}"
        assert r.addresses(qtype) == want, r
        assert "aa" in r.flags and r.transport == "UDP", r
        assert all(rec.ttl == 5 for rec in r.answer), r
    assert node.daemon.kernel_answers() >= before + 4

    # The resolver, asked on its own address, gives the same records.
    u = lib.dig(None, "127.0.0.1", node.port, NGINX, "A")
    k = lib.dig(v.ns, v.host4, 53, NGINX, "A")
    assert [(r.name, r.ttl, r.rtype, r.rdata) for r in u.answer] == \
        [(r.name, r.ttl, r.rtype, r.rdata) for r in k.answer]
    assert u.flags == k.flags and u.edns == k.edns

    # A name the kernel does not hold is passed to the stack, where nothing listens on :53.
    misses = node.daemon.metrics().get('fabdns_kernel_pass_total{reason="miss"}', 0)
    r = lib.dig(v.ns, v.host4, 53, "nosuch.default.svc.global", "A", timeout=1)
    assert r.rc != 0 and not r.status, r
    assert node.daemon.metrics()['fabdns_kernel_pass_total{reason="miss"}'] == misses + 1


def test_tc_on_veth_answers_v4_and_v6_in_kernel(e2e):
    v, node = veth_node(e2e, "tc")
    check_kernel_answers(v, node)


def test_tc_stats_through_fabdnsctl(e2e, ctl):
    v, node = veth_node(e2e, "tc")
    before = node.kernel_stats()["answered"]
    for _ in range(3):
        assert lib.dig(v.ns, v.host4, 53, NGINX, "A").addresses() == SUZHOU_A
    out = lib.run([ctl, "--pin-path", str(node.pin), "--metrics",
                   "%s:%d" % node.daemon.metrics_addr, "stats"]).stdout
    assert "answered" in out, out
    assert node.kernel_stats()["answered"] == before + 3


def test_native_xdp_on_veth_with_xdp_pass_on_the_peer(e2e):
    # KERNEL-FACTS: XDP_TX on a veth is dropped unless the peer has an XDP program too.
    v = e2e.veth()
    obj = e2e.xdp_pass_object()
    lib.run(["ip", "-n", v.ns.name, "link", "set", "dev", v.peer, "xdpdrv", "obj", str(obj),
             "sec", "xdp"])
    port = lib.free_port()
    node = e2e.node(ns=None, port=port, listen=[f"127.0.0.1:{port}"],
                    answer_for=[f"{v.host4}:53", f"[{v.host6}]:53"],
                    attach=[{"iface": v.host, "mode": "xdp"}])
    assert "xdp" in lib.iface_xdp(None, v.host)
    check_kernel_answers(v, node)


def test_xdp_generic_on_lo_answers_while_the_resolver_listens(e2e):
    node = e2e.node()  # own namespace, lo in xdp-generic, resolver on 127.0.0.1 and ::1
    assert "xdpgeneric" in lib.iface_xdp(node.ns, "lo")
    kernel, user = node.daemon.kernel_answers(), node.daemon.user_replies()
    assert node.dig(NGINX, "A").addresses() == SUZHOU_A
    assert node.dig(NGINX, "AAAA", server="::1").addresses() == SUZHOU_AAAA
    assert node.daemon.kernel_answers() == kernel + 2
    assert node.daemon.user_replies() == user, "the resolver answered a hot name"
    # Over TCP the same names go to the resolver.
    assert node.dig(NGINX, "A", "+tcp").addresses() == SUZHOU_A
    assert node.daemon.user_replies() == user + 1
    assert node.daemon.kernel_answers() == kernel + 2


# --- detaching -------------------------------------------------------------------------------


def attachments(node, ifaces):
    """For each pinned link of node: (iface, link id, prog id)."""
    out = []
    for iface in ifaces:
        info = lib.link_info(node.pin / f"link_{iface}")
        assert info, f"no pinned link for {iface} under {node.pin}"
        out.append((iface, info["id"], info["prog_id"]))
    return out


def assert_no_trace(ns, iface, link_id, prog_id):
    assert lib.iface_xdp(ns, iface) == "", f"{iface} still has XDP"
    assert lib.tc_ingress(ns, iface) == "", f"{iface} still has tc filters"
    net = lib.bpftool_net(ns, iface)
    for kind in ("xdp", "tc", "tcx"):
        assert not net.get(kind), f"bpftool net show dev {iface}: {net}"
    assert not lib.link_exists(link_id), f"link {link_id} ({iface}) still exists"
    assert not lib.prog_exists(prog_id), f"program {prog_id} ({iface}) still loaded"


def two_veth_node(e2e, **kw):
    ns = e2e.netns()
    v1, v2 = e2e.veth(ns), e2e.veth(ns)
    port = lib.free_port()
    node = e2e.node(ns=None, port=port, listen=[f"127.0.0.1:{port}"],
                    answer_for=[f"{v1.host4}:53", f"{v2.host4}:53"],
                    attach=[{"iface": v1.host, "mode": "tc"},
                            {"iface": v2.host, "mode": "xdp-generic"}], **kw)
    return v1, v2, node


def test_sigterm_with_detach_on_exit_leaves_no_trace(e2e):
    v1, v2, node = two_veth_node(e2e, detach_on_exit=True)
    for v in (v1, v2):
        assert lib.dig(v.ns, v.host4, 53, NGINX).addresses() == SUZHOU_A
    links = attachments(node, [v1.host, v2.host])
    assert node.daemon.stop(signal.SIGTERM, timeout=5) == 0, node.daemon.log()
    for iface, link_id, prog_id in links:
        assert_no_trace(None, iface, link_id, prog_id)
    assert not node.pin.exists(), sorted(p.name for p in node.pin.iterdir())
    # Nothing answers for the veth addresses any more.
    assert lib.dig(v1.ns, v1.host4, 53, NGINX, timeout=1).rc != 0


def test_fabdnsctl_detach_leaves_no_trace(e2e, ctl):
    v1, v2, node = two_veth_node(e2e, detach_on_exit=False)
    (i1, l1, p1), (i2, l2, p2) = attachments(node, [v1.host, v2.host])

    # One interface while the daemon runs: the other keeps answering.
    lib.run([ctl, "--pin-path", str(node.pin), "detach", v1.host])
    assert not lib.link_exists(l1)
    assert lib.iface_xdp(None, v1.host) == "" and lib.tc_ingress(None, v1.host) == ""
    assert not (node.pin / f"link_{v1.host}").exists()
    assert lib.dig(v1.ns, v1.host4, 53, NGINX, timeout=1).rc != 0
    assert lib.dig(v2.ns, v2.host4, 53, NGINX).addresses() == SUZHOU_A

    # SIGTERM without detach_on_exit: the rest stays attached and answering from the pins.
    assert node.daemon.stop(signal.SIGTERM, timeout=5) == 0, node.daemon.log()
    assert "xdpgeneric" in lib.iface_xdp(None, v2.host)
    assert (node.pin / f"link_{v2.host}").exists()
    assert lib.dig(v2.ns, v2.host4, 53, NGINX).addresses() == SUZHOU_A

    # detach --all while no daemon runs removes the rest, pins and directory included.
    lib.run([ctl, "--pin-path", str(node.pin), "detach", "--all"])
    assert_no_trace(None, i1, l1, p1)
    assert_no_trace(None, i2, l2, p2)
    assert not node.pin.exists()
    assert lib.dig(v2.ns, v2.host4, 53, NGINX, timeout=1).rc != 0


def test_restart_detaches_interfaces_dropped_from_the_config(e2e):
    v1, v2, node = two_veth_node(e2e, detach_on_exit=False)
    (i1, l1, p1), _ = attachments(node, [v1.host, v2.host])
    assert node.daemon.stop(signal.SIGTERM, timeout=5) == 0, node.daemon.log()
    # The next daemon's config lists only the second interface: the first one, attached by
    # the earlier daemon and still pinned, must not keep answering.
    cfg = json.loads(node.config_path.read_text())
    cfg["datapath"]["attach"] = [a for a in cfg["datapath"]["attach"] if a["iface"] == v2.host]
    node.config_path.write_text(json.dumps(cfg, indent=2) + "\n")
    node.daemon.start()
    assert_no_trace(None, i1, l1, p1)
    assert not (node.pin / f"link_{v1.host}").exists()
    assert lib.dig(v2.ns, v2.host4, 53, NGINX).addresses() == SUZHOU_A


# --- wildcard addresses ----------------------------------------------------------------------


def test_wildcard_answer_for_answers_only_local_addresses(e2e):
    v = e2e.veth()
    port = lib.free_port(None, "0.0.0.0")
    node = e2e.node(ns=None, port=port, listen=[f"0.0.0.0:{port}", f"[::]:{port}"],
                    attach=[{"iface": v.host, "mode": "tc"}])
    # Local addresses: answered in the kernel.
    kernel = node.daemon.kernel_answers()
    assert lib.dig(v.ns, v.host4, port, NGINX).addresses() == SUZHOU_A
    assert lib.dig(v.ns, v.host6, port, NGINX).addresses() == SUZHOU_A
    assert node.daemon.kernel_answers() == kernel + 2
    # Addresses of no one, sent to the host's end of the veth (static neighbour entries, so
    # the frames stay on this veth): a socket on 0.0.0.0 never sees them, and neither should
    # the kernel answer them in the resolver's place.
    mac = lib.run(["cat", f"/sys/class/net/{v.host}/address"]).stdout.strip()
    other4, other6 = f"10.200.{v.x}.77", f"fd00:200:{v.x}::77"
    lib.run(["ip", "-n", v.ns.name, "neigh", "add", other4, "lladdr", mac, "dev", v.peer])
    lib.run(["ip", "-n", v.ns.name, "-6", "neigh", "add", other6, "lladdr", mac, "dev", v.peer])
    kernel = node.daemon.kernel_answers()
    for other in (other4, other6):
        r = lib.dig(v.ns, other, port, NGINX, timeout=1)
        assert r.rc != 0 and not r.answer, f"the kernel answered as {other}:\n{r}"
    assert node.daemon.kernel_answers() == kernel
