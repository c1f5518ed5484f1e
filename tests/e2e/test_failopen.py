"""The accelerator never takes DNS down, and a restarted daemon never lets the kernel contradict
its own user space (SPEC §4); a Kubernetes bearer token never goes over plain http unless the
config says so (source.kubernetes.allow_token_over_http)."""

import json
import os
import subprocess
import time

import pytest

import e2elib as lib

NGINX = "nginx.default.svc.global"
SUZHOU_A = ["10.234.0.10"]
RETRY_S = 5  # fabdnsd retries a failed attach this often


def attached(node, iface: str, mode: str):
    return node.daemon.metrics().get(f'fabdns_datapath_attached{{iface="{iface}",mode="{mode}"}}')


def exit_status(daemon, timeout: float = 10):
    try:
        return daemon.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


# --- fail open ----------------------------------------------------------------------------------


def test_native_xdp_on_lo_leaves_dns_to_user_space(e2e):
    # lo has no driver XDP: the attach fails, and the node keeps answering (ready, user space).
    node = e2e.node(attach=[{"iface": "lo", "mode": "xdp"}])
    assert node.daemon.readyz() == 200
    assert attached(node, "lo", "xdp") == 0
    assert lib.iface_xdp(node.ns, "lo") == ""
    kernel, user = node.daemon.kernel_answers(), node.daemon.user_replies()
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert node.dig(NGINX, "A", "+tcp").addresses() == SUZHOU_A
    assert node.daemon.kernel_answers() == kernel
    assert node.daemon.user_replies() == user + 2
    # Retried, but the same reason is logged once.
    time.sleep(RETRY_S + 1.5)
    log = node.daemon.log()
    assert node.daemon.alive(), log
    assert log.count("cannot attach to lo (xdp)") == 1, log
    assert attached(node, "lo", "xdp") == 0


def test_datapath_required_makes_a_failed_attach_exit_1(e2e):
    node = e2e.node(attach=[{"iface": "lo", "mode": "xdp"}], extra={"datapath": {"required": True}},
                    start=False)
    node.daemon.start(wait_ready=False)
    assert exit_status(node.daemon) == 1, node.daemon.log()
    assert "datapath.required" in node.daemon.log()
    # A failed start leaves no pins of its own behind.
    assert not node.pin.exists() or not any(node.pin.iterdir())


def test_an_interface_that_appears_later_is_attached(e2e):
    v = e2e.veth(create=False)  # planned: names and addresses, no link yet
    port = lib.free_port()
    node = e2e.node(ns=None, port=port, listen=[f"127.0.0.1:{port}"],
                    answer_for=[f"{v.host4}:53"], attach=[{"iface": v.host, "mode": "tc"}])
    assert node.daemon.readyz() == 200
    assert attached(node, v.host, "tc") == 0
    assert node.dig(NGINX).addresses() == SUZHOU_A  # user space meanwhile
    v.make()
    assert lib.wait_until(lambda: attached(node, v.host, "tc") == 1, 2 * RETRY_S + 2), \
        node.daemon.log()
    before = node.daemon.kernel_answers()
    r = lib.dig(v.ns, v.host4, 53, NGINX, "A")  # nothing listens there: only the kernel answers
    assert r.addresses() == SUZHOU_A and "aa" in r.flags, r
    assert node.daemon.kernel_answers() == before + 1
    log = node.daemon.log()
    assert log.count(f"cannot attach to {v.host} (tc)") == 1, log
    assert f"attached to {v.host} (tc) after" in log, log


def test_a_datapath_that_cannot_load_leaves_dns_to_user_space(e2e):
    # Pins outside a BPF filesystem cannot be made: the load fails as a whole.
    pin = e2e.tmp / "not-bpffs"
    node = e2e.node(pin=pin)
    assert node.daemon.readyz() == 200
    assert attached(node, "lo", "xdp-generic") == 0
    assert "fabdns_kernel_answers_total" not in node.daemon.metrics()
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert "cannot load" in node.daemon.log()
    assert lib.iface_xdp(node.ns, "lo") == ""

    strict = e2e.node(pin=e2e.tmp / "not-bpffs-2", extra={"datapath": {"required": True}},
                      start=False)
    strict.daemon.start(wait_ready=False)
    assert exit_status(strict.daemon) == 1, strict.daemon.log()


# --- restart agreement --------------------------------------------------------------------------


def test_restart_against_an_unreachable_source_never_contradicts_the_kernel(e2e):
    node = e2e.node(stale_after="3s")
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert node.daemon.stop() == 0
    stopped = time.monotonic()
    # The same node restarted with a Kubernetes API that is down: no data set arrives.
    cfg = dict(node.config)
    cfg["source"] = {"kind": "kubernetes",
                     "kubernetes": {"server": f"http://127.0.0.1:{lib.free_port(node.ns)}"}}
    node.config_path.write_text(json.dumps(cfg, indent=2) + "\n")
    node.daemon.start(wait_ready=False)
    samples = []
    while time.monotonic() - stopped < 6.5:
        t = time.monotonic() - stopped
        udp = node.dig(NGINX, timeout=1)  # the kernel while fresh, else user space
        tcp = node.dig(NGINX, "A", "+tcp", timeout=1)  # always user space
        samples.append((t, udp, tcp))
        time.sleep(0.1)
    assert node.daemon.alive(), node.daemon.log()
    text = "\n".join(f"{t:.1f}s udp={u.status}{u.addresses()} tcp={p.status}"
                     for t, u, p in samples)
    for t, udp, tcp in samples:
        # Never NXDOMAIN (cached downstream, contradicting the kernel); user space says
        # SERVFAIL until it has data.
        assert udp.status in ("NOERROR", "SERVFAIL"), text
        assert udp.status == "SERVFAIL" or udp.addresses() == SUZHOU_A, text
        assert tcp.status in ("SERVFAIL", "") and (tcp.status or t < 1.5), text
        if t > 3.0 + 1.2:  # stale_after, plus one stamp period and a margin
            assert udp.status == "SERVFAIL", text
    assert any(u.addresses() == SUZHOU_A for t, u, _ in samples if t < 2.0), text
    assert node.kernel_stats()["stale"] >= 1
    assert node.daemon.readyz() == 503  # no data: not ready


# --- no bearer token over plain http ------------------------------------------------------------


@pytest.mark.parametrize("allow", [False, True])
def test_kubeconfig_token_goes_over_plain_http_only_when_allowed(e2e, allow):
    ns = e2e.netns()
    kube = lib.KubeStandin(ns, e2e.tmp)
    e2e.defer(kube.stop)
    kubeconfig = e2e.tmp / "kubeconfig"
    kubeconfig.write_text(
        "current-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://kube.invalid:6443'}}]\n"
        "users: [{name: u, user: {token: s3cret}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
    os.chmod(kubeconfig, 0o600)
    k8s = {"server": f"http://127.0.0.1:{kube.api}", "kubeconfig": str(kubeconfig)}
    if allow:
        k8s["allow_token_over_http"] = True
    node = e2e.node(ns=ns, extra={"source": {"kind": "kubernetes", "kubernetes": k8s}})
    st = kube.state()
    assert st["lists"] >= 1, st
    assert st["last_auth"] == ("Bearer s3cret" if allow else None), st
    log = node.daemon.log()
    if allow:
        assert "bearer token sent over plain http" in log, log
    else:
        assert "without its bearer token over plain http" in log, log
