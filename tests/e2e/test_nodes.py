"""The example node configs (examples/config-suzhou.yaml, examples/config-beijing.yaml) as
shipped, two daemons at once: each answers for its place in the topology (SPEC §3). Each node
runs in its own network namespace, as on two machines: both configs attach `lo`, and one
interface holds one XDP program. Only pin_path is changed, to a per-test directory."""

import re
import shutil

import e2elib as lib
from conftest import EXAMPLES, FABDNSCTL, FABDNSD

NGINX = "nginx.default.svc.global"


def example_node(e2e, name):
    ns = e2e.netns()
    pin = e2e.pin_path()
    cfg_path = e2e.tmp / f"config-{name}.yaml"
    text = (EXAMPLES / f"config-{name}.yaml").read_text()
    text, n = re.subn(r"(?m)^(\s*pin_path:).*$", rf"\1 {pin}", text)
    assert n == 1
    cfg_path.write_text(text)
    # source.file.path is relative to the config's directory.
    shutil.copy(EXAMPLES / "globalservices.yaml", e2e.tmp / "globalservices.yaml")
    port = int(re.search(r'listen: \["127\.0\.0\.1:(\d+)"\]', text).group(1))
    metrics = re.search(r"(?m)^metrics:\n\s+listen: (\S+)", text).group(1)
    cfg = {"metrics": {"listen": metrics}}
    return e2e.start_node(cfg_path, cfg, ns, port, pin, e2e.tmp / "globalservices.yaml")


def test_beijing_and_suzhou_nodes_answer_for_their_place(e2e):
    suzhou = example_node(e2e, "suzhou")
    beijing = example_node(e2e, "beijing")
    assert suzhou.port == 1053 and beijing.port == 1054
    cases = [
        # Own cluster first (beijing), else the same region (suzhou -> shanghai).
        (NGINX, "A", ["10.234.0.10"], ["10.233.0.10"]),
        ("nginx.default.global", "A", ["10.234.0.10"], ["10.233.0.10"]),
        ("mysql.default.svc.global", "A", ["10.234.0.20"], ["10.233.0.20"]),
        # AAAA: the first tier with an IPv6 address wins, even past a nearer IPv4-only one.
        (NGINX, "AAAA", ["fd00:234::10"], ["fd00:234::10"]),
        # Cluster-scoped names are the same everywhere.
        ("shanghai.nginx.default.svc.global", "A", ["10.234.0.10"], ["10.234.0.10"]),
        ("nginx.default.beijing.global", "A", ["10.233.0.10"], ["10.233.0.10"]),
        ("web.default.svc.global", "A", ["10.243.1.5", "10.243.2.7"],
         ["10.243.1.5", "10.243.2.7"]),
    ]
    before = {n: n.daemon.kernel_answers() for n in (suzhou, beijing)}
    kernel_queries = 0
    for name, qtype, want_suzhou, want_beijing in cases:
        for node, want in ((suzhou, want_suzhou), (beijing, want_beijing)):
            for opts in ((), ("+tcp",)):
                r = node.dig(name, qtype, *opts)
                assert r.status == "NOERROR" and r.addresses(qtype) == want, r
        kernel_queries += 1
    # The UDP queries above were all answered in the kernel of their own node.
    for node in (suzhou, beijing):
        assert node.daemon.kernel_answers() - before[node] == kernel_queries
        assert node.kernel_stats()["answered"] >= kernel_queries


def test_a_second_daemon_does_not_take_over_an_interface(e2e):
    suzhou = example_node(e2e, "suzhou")
    beijing = example_node(e2e, "beijing")  # same tmp dir, own namespace
    # A third daemon in suzhou's namespace, with beijing's config asking for XDP on lo, which
    # suzhou's XDP program holds.
    pin = e2e.pin_path()
    text = beijing.config_path.read_text().replace(str(beijing.pin), str(pin))
    text = text.replace("mode: tc", "mode: xdp-generic")
    e2e.defer(lambda: lib.remove_datapath(pin, FABDNSCTL, suzhou.ns))
    # With datapath.required it refuses to start.
    cfg_path = e2e.tmp / "config-beijing-required.yaml"
    cfg_path.write_text(text.replace("  enabled: true\n", "  enabled: true\n  required: true\n"))
    p = lib.ns_run(suzhou.ns, [FABDNSD, "--config", str(cfg_path)], check=False,
                   timeout=20)
    assert p.returncode == 1, p
    assert "lo" in p.stderr + p.stdout and "XDP program" in p.stderr + p.stdout, p
    # Without it, it serves in user space and leaves the interface alone (SPEC §4).
    cfg_path = e2e.tmp / "config-beijing-2.yaml"
    cfg_path.write_text(text)
    third = e2e.start_node(cfg_path, {"metrics": {"listen": "127.0.0.1:9154"}}, suzhou.ns,
                           1054, pin, e2e.tmp / "globalservices.yaml")
    assert third.daemon.metrics()['fabdns_datapath_attached{iface="lo",mode="xdp-generic"}'] == 0
    assert "XDP program" in third.daemon.log()
    assert third.dig(NGINX).addresses() == ["10.233.0.10"]  # beijing's answer, from user space
    # The first one is untouched.
    assert suzhou.dig(NGINX).addresses() == ["10.234.0.10"]
    assert "xdpgeneric" in lib.iface_xdp(suzhou.ns, "lo")
