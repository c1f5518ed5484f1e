"""`fabdnsctl explain` asks the running fabdnsd (GET /explain on metrics.listen) and so explains
what the daemon serves, whatever its source; with the daemon down it falls back to the config's
sources and the pinned maps, and says so."""

import time

import e2elib as lib

NGINX = "nginx.default.svc.global"

NGINX_OBJECT = {
    "metadata": {"name": "nginx", "namespace": "default"},
    "spec": {"type": "ClusterIP",
             "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
             "endpoints": [
                 {"addresses": ["10.233.0.10"], "cluster": "beijing", "zone": "beijing",
                  "region": "north"},
                 {"addresses": ["10.234.0.10", "fd00:234::10"], "cluster": "shanghai",
                  "zone": "shanghai", "region": "south"}]},
}


def explain(node, ctl, *args, check=True):
    return lib.ns_run(node.ns, [ctl, "--config", str(node.config_path), "explain", *args],
                      check=check)


def field(out: str, label: str) -> str:
    for line in out.splitlines():
        if line.startswith(label + ":"):
            return line[len(label) + 1:].strip()
    raise AssertionError(f"no '{label}:' line in\n{out}")


def test_a_node_fed_by_kubernetes_is_explained_by_its_daemon(e2e, ctl):
    ns = e2e.netns()
    kube = lib.KubeStandin(ns, e2e.tmp)
    e2e.defer(kube.stop)
    kube.apply(NGINX_OBJECT)
    node = e2e.node(ns=ns, extra={"source": {
        "kind": "kubernetes", "kubernetes": {"server": f"http://127.0.0.1:{kube.api}"}}})
    assert lib.wait_until(lambda: node.dig(NGINX).addresses() == ["10.234.0.10"], 10)

    out = explain(node, ctl, NGINX).stdout
    assert field(out, "explained by").startswith(f"fabdnsd (pid {node.daemon.pid})"), out
    assert "1 from kubernetes http://127.0.0.1:" in field(out, "services"), out
    assert field(out, "rcode") == "NOERROR, authoritative", out
    assert field(out, "tier").startswith("region"), out  # suzhou is in shanghai's region
    assert field(out, "in kernel").startswith("yes (same answer"), out
    assert "10.234.0.10" in out.split("answer:")[1], out

    # The kernel's NODATA for a family the name lacks is explained too.
    kube.apply({**NGINX_OBJECT, "spec": {**NGINX_OBJECT["spec"], "endpoints": [
        {"addresses": ["10.234.0.11"], "cluster": "shanghai", "zone": "shanghai",
         "region": "south"}]}})
    assert lib.wait_until(lambda: node.dig(NGINX).addresses() == ["10.234.0.11"], 10)
    out = explain(node, ctl, NGINX, "AAAA").stdout
    assert field(out, "query") == f"{NGINX}. AAAA", out
    assert field(out, "in kernel").startswith("yes (same answer"), out
    assert "SOA" in out.split("authority:")[1], out

    # A name the daemon does not serve: its reason, from the compiler's own filter.
    out = explain(node, ctl, "nope.default.svc.global").stdout
    assert field(out, "rcode") == "NXDOMAIN, authoritative", out
    assert "only NOERROR answers" in field(out, "in kernel"), out

    # The daemon down: fabdnsctl cannot read a Kubernetes API by itself and says why.
    node.daemon.stop()
    r = explain(node, ctl, NGINX, check=False)
    assert r.returncode == 1, r
    assert "explain needs a file source or a hub snapshot" in r.stderr, r


def test_with_the_daemon_down_the_config_and_pins_are_explained_and_said_so(e2e, ctl):
    node = e2e.node(stale_after="60s")
    assert node.dig(NGINX).addresses() == ["10.234.0.10"]
    out = explain(node, ctl, NGINX).stdout
    assert field(out, "explained by").startswith("fabdnsd"), out

    node.daemon.stop()
    time.sleep(0.2)
    out = explain(node, ctl, NGINX).stdout
    by = field(out, "explained by")
    assert by.startswith("fabdnsctl, from the config's sources (fabdnsd not reachable at"), out
    assert "/explain?name=" in by, out
    assert field(out, "in kernel").startswith("yes (same answer"), out  # the pins stay
    assert "10.234.0.10" in out.split("answer:")[1], out
