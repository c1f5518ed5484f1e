"""Fixtures of fabdns's end-to-end tests: the binaries under test, and `e2e`, a per-test
environment that creates namespaces, veth pairs, daemons and upstreams and removes all of
them afterwards, whatever the outcome (LIFO, each step on its own).

Binaries: $FABDNSD (required) and $FABDNSCTL (optional; tests that need it skip without it).
When unset, the usual build directories of the source tree are searched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Callable, Optional

import pytest

import e2elib as lib

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _find_binary(env: str, rel: str) -> Optional[str]:
    if os.environ.get(env):
        return os.environ[env]
    for build in ("build-e2e", "build"):
        p = REPO / build / rel
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


FABDNSD = _find_binary("FABDNSD", "daemon/app/fabdnsd")
FABDNSCTL = _find_binary("FABDNSCTL", "daemon/ctl/fabdnsctl")
if FABDNSCTL and not os.access(FABDNSCTL, os.X_OK):
    FABDNSCTL = None  # optional: pins and counters are then read with bpftool


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "unprivileged: runs without root (touches no namespace or BPF)")
    # CTest stops a test that runs too long with SIGTERM: turn it into the KeyboardInterrupt
    # pytest unwinds from, so every finalizer still removes what its test made.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)


def _missing_tools() -> list[str]:
    return [t for t in ("ip", "nsenter", "dig", "bpftool", "tc") if not shutil.which(t)]


@pytest.fixture(autouse=True)
def _requirements(request):
    if not FABDNSD or not os.access(FABDNSD, os.X_OK):
        pytest.skip(f"fabdnsd not found (set FABDNSD; looked for {FABDNSD or 'build*/'})")
    if request.node.get_closest_marker("unprivileged"):
        return
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces and loads BPF programs")
    missing = _missing_tools()
    if missing:
        pytest.skip("missing tools: " + ", ".join(missing))
    if not lib.BPFFS.is_dir() or not os.path.ismount(lib.BPFFS):
        pytest.skip(f"no BPF filesystem mounted at {lib.BPFFS}")


@pytest.fixture(scope="session", autouse=True)
def _sweep_leftovers():
    """Removes what an earlier run of this suite left behind when it was killed outright
    (its pid is in every name): daemons in its namespaces, its namespaces, host veth ends and
    pins. Objects of live runs, and anything not named like ours, are left alone."""
    if os.geteuid() != 0:
        yield
        return
    dead = lambda pid: int(pid) != lib.PID and not lib.pid_alive(int(pid))  # noqa: E731
    runs = set()
    for d in ([lib.NETNS_DIR] if lib.NETNS_DIR.is_dir() else []) + [lib.BPFFS]:
        for entry in d.iterdir():
            m = lib.NETNS_RE.match(entry.name) or lib.PIN_RE.match(entry.name)
            if m and dead(m.group(1)):
                runs.add(int(m.group(1)))
    for run_pid in runs:
        for p in lib.processes_of_run(run_pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if lib.NETNS_DIR.is_dir():
        for entry in lib.NETNS_DIR.iterdir():
            m = lib.NETNS_RE.match(entry.name)
            if m and dead(m.group(1)):
                pids = lib.run(["ip", "netns", "pids", entry.name], check=False).stdout.split()
                for p in pids:
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                lib.run(["ip", "netns", "del", entry.name], check=False)
    for entry in lib.BPFFS.iterdir():
        m = lib.PIN_RE.match(entry.name)
        if m and dead(m.group(1)):
            lib.remove_datapath(entry, FABDNSCTL)
    for line in lib.run(["ip", "-o", "link", "show"]).stdout.splitlines():
        m = lib.VETH_RE.match(line)
        if m and dead(m.group(2)):
            lib.run(["ip", "link", "del", m.group(1)], check=False)
    yield


def example_manifests() -> str:
    return (EXAMPLES / "globalservices.yaml").read_text()


def headless_manifest(name: str, pods: int, cluster: str = "suzhou") -> str:
    """A Headless GlobalService with `pods` pods (10.250.<i/250>.<i%250+1>) in one cluster."""
    eps = "\n".join(
        f"""    - addresses: ["10.250.{i // 250}.{i % 250 + 1}"]
      hostname: {name}-{i}
      cluster: {cluster}
      zone: {cluster}
      region: south""" for i in range(pods))
    return f"""apiVersion: dns.fabedge.io/v1alpha1
kind: GlobalService
metadata:
  name: {name}
  namespace: default
spec:
  type: Headless
  ports:
    - name: http
      protocol: TCP
      port: 8080
  endpoints:
{eps}
"""


class Node:
    """One fabdnsd with its files: config, manifest, log, pins; `ns` is where it runs."""

    def __init__(self, daemon: lib.Daemon, ns: Optional[lib.Netns], port: int, pin: Path,
                 manifest: Path, config: dict, config_path: Path):
        self.daemon, self.ns, self.port, self.pin = daemon, ns, port, pin
        self.manifest, self.config, self.config_path = manifest, config, config_path

    def dig(self, name: str, qtype: str = "A", *opts: str, server: str = "127.0.0.1",
            timeout: int = 2) -> lib.DigResult:
        return lib.dig(self.ns, server, self.port, name, qtype, *opts, timeout=timeout)

    def kernel_stats(self) -> dict:
        return lib.kernel_stats(self.pin, FABDNSCTL)


class Env:
    """What one test made, torn down in reverse order of creation."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self._cleanups: list[Callable[[], None]] = []

    def defer(self, fn: Callable[[], None]) -> None:
        self._cleanups.append(fn)

    def close(self) -> None:
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning; report at the end
                errors.append(e)
        if errors:
            raise errors[0]

    # -- resources ---------------------------------------------------------------------------

    def netns(self) -> lib.Netns:
        ns = lib.Netns(lib.Counter.next())
        self.defer(ns.delete)
        return ns

    def veth(self, ns: Optional[lib.Netns] = None, create: bool = True) -> lib.Veth:
        """A veth pair; with create=False only planned (names, addresses): v.make() later."""
        ns = ns or self.netns()
        v = lib.Veth.plan(ns, lib.Counter.next())
        self.defer(v.delete)
        return v.make() if create else v

    def pin_path(self) -> Path:
        return lib.BPFFS / f"fdns-e2e-{lib.PID}-{lib.Counter.next()}"

    def xdp_pass_object(self) -> Path:
        """A BPF object whose XDP program passes everything (for the far end of a veth)."""
        if not shutil.which("clang"):
            pytest.skip("clang not found: needed to build an XDP_PASS program")
        src = self.tmp / "xdp_pass.c"
        obj = self.tmp / "xdp_pass.o"
        src.write_text('#include <linux/bpf.h>\n'
                       '__attribute__((section("xdp"), used)) int xdp_pass(struct xdp_md *c)'
                       ' { return XDP_PASS; }\n'
                       'char _license[] __attribute__((section("license"), used)) = "GPL";\n')
        lib.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                 "-c", str(src), "-o", str(obj)])
        return obj

    def unbound(self, ns: Optional[lib.Netns]) -> lib.Unbound:
        if not shutil.which("unbound"):
            pytest.skip("unbound not installed")
        d = self.tmp / f"unbound-{lib.Counter.next()}"
        d.mkdir()
        u = lib.Unbound(ns, lib.free_port(ns), d)
        self.defer(u.stop)
        return u.start()

    def node(self, *, ns: Optional[lib.Netns] | str = "new", cluster: str = "suzhou",
             zone: Optional[str] = None, region: Optional[str] = None,
             listen: Optional[list[str]] = None, port: Optional[int] = None,
             answer_for: Optional[list[str]] = None, attach: Optional[list[dict]] = None,
             upstream: Optional[list[str]] = None, stale_after: Optional[str] = None,
             detach_on_exit: Optional[bool] = None, manifests: Optional[str] = None,
             pin: Optional[Path] = None, extra: Optional[dict] = None,
             start: bool = True) -> Node:
        """A fabdnsd, by default inside a fresh namespace with the datapath on that namespace's
        `lo` in xdp-generic mode and the resolver on 127.0.0.1 and ::1 at a free port. The
        manifest file defaults to examples/globalservices.yaml."""
        if ns == "new":
            ns = self.netns()
        n = lib.Counter.next()
        port = port or lib.free_port(ns)
        if listen is None:
            listen = [f"127.0.0.1:{port}", f"[::1]:{port}"]
        metrics_port = lib.free_port(ns)
        pin = pin or self.pin_path()
        manifest = self.tmp / f"services-{n}.yaml"
        manifest.write_text(example_manifests() if manifests is None else manifests)
        cfg: dict = {
            "node": {"cluster": cluster, "zone": zone or cluster,
                     "region": region or ("north" if cluster == "beijing" else "south")},
            "dns": {"zones": ["global"], "ttl": 5, "listen": listen,
                    "upstream": upstream or []},
            "source": {"kind": "file", "file": {"path": str(manifest)}},
            "datapath": {"enabled": True, "pin_path": str(pin),
                         "attach": [{"iface": "lo", "mode": "xdp-generic"}]
                         if attach is None else attach},
            "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        }
        if answer_for is not None:
            cfg["datapath"]["answer_for"] = answer_for
        if stale_after is not None:
            cfg["datapath"]["stale_after"] = stale_after
        if detach_on_exit is not None:
            cfg["datapath"]["detach_on_exit"] = detach_on_exit
        for section, values in (extra or {}).items():
            cfg.setdefault(section, {}).update(values)
        cfg_path = self.tmp / f"fabdnsd-{n}.yaml"
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is YAML
        return self.start_node(cfg_path, cfg, ns, port, pin, manifest, start=start)

    def start_node(self, cfg_path: Path, cfg: dict, ns: Optional[lib.Netns], port: int,
                   pin: Path, manifest: Path, start: bool = True) -> Node:
        host, _, mport = cfg["metrics"]["listen"].rpartition(":")
        log = self.tmp / f"{cfg_path.stem}.log"
        d = lib.Daemon(FABDNSD, cfg_path, ns, log, (host, int(mport)))
        node = Node(d, ns, port, pin, manifest, cfg, cfg_path)

        def stop():
            try:
                d.stop(signal.SIGTERM, timeout=5)
            finally:
                lib.remove_datapath(pin, FABDNSCTL, ns)
                text = d.log()
                if text:
                    print(f"--- {log.name} ---\n{text[-6000:]}")

        # Registered before the start, so a daemon that fails half-way is cleaned up too.
        self.defer(stop)
        if start:
            d.start()
        return node


@pytest.fixture
def e2e(tmp_path):
    env = Env(tmp_path)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def ctl():
    if not FABDNSCTL:
        pytest.skip("fabdnsctl not built (set FABDNSCTL)")
    return FABDNSCTL
