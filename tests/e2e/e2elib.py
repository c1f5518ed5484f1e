"""Building blocks of fabdns's end-to-end tests.

Network namespaces and veth pairs, fabdnsd as a process (on the host or inside a namespace),
`dig` and a parser for its output, raw DNS over sockets created inside a namespace, HTTP to the
metrics server, the kernel's counters and BPF pins, and a real `unbound` as an upstream. The
plumbing shared with bench/ (commands, processes, namespaces, HTTP, the daemon) is
tests/pylib/plumbing.py, re-exported here.

Every object a test creates carries the pytest process id in its name (netns `fdns-<pid>-<n>`,
host veth `fdh<pid>v<n>`, pins `/sys/fs/bpf/fdns-e2e-<pid>-<n>`), so parallel runs and other
users of the machine are never touched, and leftovers of a killed run can be recognised.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
import plumbing  # noqa: E402
# Re-exported: the tests reach all of their plumbing through e2elib.
from plumbing import (NETNS_DIR, free_port, http_get, http_post, ns_run,  # noqa: E402,F401
                      ns_socket, parse_metrics, pid_alive, prefix, run, terminate, wait_until)

BPFFS = Path("/sys/fs/bpf")
PID = os.getpid()

# Name patterns of everything the suite creates; group 1 is the pytest pid that made it.
NETNS_RE = re.compile(r"^fdns-(\d+)-\d+$")
PIN_RE = re.compile(r"^fdns-e2e-(\d+)-\d+$")
VETH_RE = re.compile(r"^\d+: (fdh(\d+)v\d+)[@:]")

# Set in the environment of every long-running process the suite starts (daemons, unbound),
# so that the processes of a run that was killed outright can be found and stopped.
RUN_ENV = "FABDNS_E2E_RUN"


def spawn(cmd: list[str], out) -> subprocess.Popen:
    return plumbing.spawn(cmd, out, {RUN_ENV: str(PID)})


def processes_of_run(pid: int) -> list[int]:
    """Processes started by the run whose pytest pid is pid (found by RUN_ENV)."""
    return plumbing.processes_with_env(RUN_ENV, str(pid))


class Counter:
    """Hands out the per-run numbers that make names unique within one pytest process."""

    _n = 0
    _lock = threading.Lock()

    @classmethod
    def next(cls) -> int:
        with cls._lock:
            cls._n += 1
            return cls._n


# --- namespaces and sockets -------------------------------------------------------------------


class Netns(plumbing.Netns):
    """A network namespace `fdns-<pid>-<n>` with its loopback up. None stands for the host."""

    def __init__(self, n: int):
        super().__init__(f"fdns-{PID}-{n}")


@dataclass
class Veth:
    """A veth pair: `host` end in the host namespace with 10.200.<x>.1/24 and fd00:200:<x>::1/64,
    `peer` end inside ns with .2 / ::2."""

    ns: Netns
    host: str
    peer: str
    x: int

    @property
    def host4(self) -> str:
        return f"10.200.{self.x}.1"

    @property
    def peer4(self) -> str:
        return f"10.200.{self.x}.2"

    @property
    def host6(self) -> str:
        return f"fd00:200:{self.x}::1"

    @property
    def peer6(self) -> str:
        return f"fd00:200:{self.x}::2"

    @staticmethod
    def create(ns: Netns, n: int) -> "Veth":
        return Veth.plan(ns, n).make()

    @staticmethod
    def plan(ns: Netns, n: int) -> "Veth":
        """The names and addresses of a pair, not created yet (make() does)."""
        host, peer = f"fdh{PID}v{n}", f"fdp{PID}v{n}"
        # A subnet nobody on the host routes yet.
        routes = (run(["ip", "-4", "route", "show"]).stdout +
                  run(["ip", "-6", "route", "show"]).stdout)
        x = (PID * 7 + n) % 250 + 1
        for _ in range(250):
            if f"10.200.{x}." not in routes and f"fd00:200:{x}::" not in routes:
                break
            x = x % 250 + 1
        return Veth(ns, host, peer, x)

    def make(self) -> "Veth":
        v, host, peer, ns = self, self.host, self.peer, self.ns
        run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns.name])
        run(["ip", "addr", "add", f"{v.host4}/24", "dev", host])
        run(["ip", "addr", "add", f"{v.host6}/64", "dev", host, "nodad"])
        run(["ip", "link", "set", host, "up"])
        run(["ip", "-n", ns.name, "addr", "add", f"{v.peer4}/24", "dev", peer])
        run(["ip", "-n", ns.name, "addr", "add", f"{v.peer6}/64", "dev", peer, "nodad"])
        run(["ip", "-n", ns.name, "link", "set", peer, "up"])
        return v

    def delete(self) -> None:
        # Deleting one end removes the pair; the peer also goes with its namespace.
        if Path(f"/sys/class/net/{self.host}").exists():
            run(["ip", "link", "del", self.host], check=False)


# --- DNS: dig and raw messages ----------------------------------------------------------------


@dataclass
class Record:
    name: str
    ttl: int
    rclass: str
    rtype: str
    rdata: str


@dataclass
class DigResult:
    """What dig printed, parsed. `rc` 0 means a reply was received."""

    rc: int
    text: str
    status: str = ""
    id: int = -1
    flags: set = field(default_factory=set)
    counts: dict = field(default_factory=dict)
    edns: Optional[dict] = None  # {"version": int, "flags": set, "udp": int}
    question: list = field(default_factory=list)  # raw question lines, case kept
    answer: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    additional: list = field(default_factory=list)
    transport: str = ""  # "UDP" or "TCP", from the SERVER line

    def addresses(self, rtype: Optional[str] = None) -> list[str]:
        return sorted(r.rdata for r in self.answer if rtype is None or r.rtype == rtype)

    def __str__(self) -> str:
        return self.text


_SECTION = {
    ";; QUESTION SECTION:": "question",
    ";; ANSWER SECTION:": "answer",
    ";; AUTHORITY SECTION:": "authority",
    ";; ADDITIONAL SECTION:": "additional",
}


def parse_dig(rc: int, text: str) -> DigResult:
    r = DigResult(rc=rc, text=text)
    section = None
    for line in text.splitlines():
        if m := re.match(r";; ->>HEADER<<- opcode: \w+, status: (\w+), id: (\d+)", line):
            r.status, r.id = m.group(1), int(m.group(2))
            continue
        if m := re.match(r";; flags:([^;]*);(.*)", line):
            r.flags = set(m.group(1).split())
            for k, v in re.findall(r"(\w+): (\d+)", m.group(2)):
                r.counts[k] = int(v)
            continue
        if m := re.match(r"; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)", line):
            r.edns = {"version": int(m.group(1)), "flags": set(m.group(2).split()),
                      "udp": int(m.group(3))}
            continue
        if m := re.match(r";; SERVER: .*\((\w+)\)", line):
            r.transport = m.group(1)
            continue
        if line in _SECTION:
            section = _SECTION[line]
            continue
        if not line.strip():
            section = None
            continue
        if section == "question":
            r.question.append(line.lstrip(";"))
        elif section in ("answer", "authority", "additional"):
            parts = line.split(None, 4)
            if len(parts) == 5:
                getattr(r, section).append(
                    Record(parts[0], int(parts[1]), parts[2], parts[3], parts[4]))
    return r


def dig(ns: Optional[Netns], server: str, port: int, name: str, qtype: str = "A",
        *opts: str, timeout: int = 2) -> DigResult:
    """Runs dig inside ns: one try, `timeout` seconds, full output parsed. No retries, so a
    lost packet shows as a failure instead of being hidden."""
    cmd = prefix(ns) + ["dig", f"@{server}", "-p", str(port), name, qtype,
                        "+tries=1", f"+time={timeout}", *opts]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 3 + 10)
    return parse_dig(p.returncode, p.stdout + p.stderr)


QTYPES = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16, "AAAA": 28, "OPT": 41}


def wire_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(name: str, qtype: str = "A", qid: int = 0x1234, rd: bool = True,
                edns: Optional[int] = None) -> bytes:
    """A QUERY message; edns: the UDP payload size of an OPT record, None for no OPT."""
    flags = 0x0100 if rd else 0
    arcount = 1 if edns is not None else 0
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    msg += wire_name(name) + struct.pack("!HH", QTYPES[qtype], 1)
    if edns is not None:
        msg += b"\0" + struct.pack("!HHIH", QTYPES["OPT"], edns, 0, 0)
    return msg


@dataclass
class Header:
    id: int
    qr: bool
    aa: bool
    tc: bool
    rcode: int
    qd: int
    an: int
    ns: int
    ar: int


def parse_header(msg: bytes) -> Header:
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    return Header(qid, bool(flags & 0x8000), bool(flags & 0x0400), bool(flags & 0x0200),
                  flags & 0xF, qd, an, ns, ar)


def udp_exchange(ns: Optional[Netns], server: str, port: int, msg: bytes,
                 timeout: float = 1.0) -> Optional[bytes]:
    """Sends msg over UDP from inside ns; the reply, or None after timeout (or when the port
    is closed)."""
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = ns_socket(ns, fam, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((server, port))
        s.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65535)
            if data[:2] == msg[:2]:
                return data
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


# --- the daemon ---------------------------------------------------------------------------------


class Daemon(plumbing.Daemon):
    """plumbing.Daemon marked with RUN_ENV, so that a killed run's daemons can be found."""

    def __init__(self, binary: str, config: Path, ns: Optional[Netns], log: Path,
                 metrics: Optional[tuple[str, int]]):
        super().__init__(binary, config, ns, log, metrics, env={RUN_ENV: str(PID)})


# --- BPF pins and counters -------------------------------------------------------------------

STAT_NAMES = ["answered", "not_dns", "not_for_us", "fragment", "ipv6_ext", "malformed",
              "not_query", "qclass", "qtype", "name", "too_long", "edns", "miss", "collision",
              "too_big", "stale", "resize", "group_mac", "bad_address", "v4_mapped", "reflection"]


def kernel_stats(pin_path: Path, ctl: Optional[str] = None) -> dict:
    """The kernel's counters from the pinned stats map, summed over CPUs: through
    `fabdnsctl stats --json` when the tool exists, else straight from bpftool."""
    if ctl:
        p = run([ctl, "--pin-path", str(pin_path), "--metrics", "", "stats", "--json"])
        return {k: int(v) for k, v in json.loads(p.stdout)["kernel"]["counters"].items()}
    p = run(["bpftool", "-j", "map", "dump", "pinned", str(pin_path / "stats")])
    out = {}
    for entry in json.loads(p.stdout):
        key = entry.get("key")
        values = entry.get("values")
        if "formatted" in entry:
            key, values = entry["formatted"]["key"], entry["formatted"]["values"]
        if isinstance(key, list):  # raw little-endian bytes
            key = int.from_bytes(bytes(int(b, 16) for b in key), "little")
        total = 0
        for v in values:
            val = v["value"]
            if isinstance(val, list):
                val = int.from_bytes(bytes(int(b, 16) for b in val), "little")
            total += int(val)
        if int(key) < len(STAT_NAMES):
            out[STAT_NAMES[int(key)]] = total
    return out


def link_pins(pin_path: Path) -> list[Path]:
    return sorted(pin_path.glob("link_*")) if pin_path.is_dir() else []


def link_info(pin: Path) -> Optional[dict]:
    p = run(["bpftool", "-j", "link", "show", "pinned", str(pin)], check=False)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def link_exists(link_id: int) -> bool:
    return run(["bpftool", "link", "show", "id", str(link_id)], check=False).returncode == 0


def prog_exists(prog_id: int) -> bool:
    return run(["bpftool", "prog", "show", "id", str(prog_id)], check=False).returncode == 0


def remove_datapath(pin_path: Path, ctl: Optional[str], ns: Optional[Netns] = None) -> None:
    """Detaches every link pinned under pin_path and removes the pins: with `fabdnsctl detach
    --all` when there is one, else with bpftool and rm -rf. Safe to call when nothing is left."""
    if not pin_path.exists():
        return
    if ctl:
        ns_run(ns, [ctl, "--pin-path", str(pin_path), "detach", "--all"], check=False)
    for pin in link_pins(pin_path):
        run(["bpftool", "link", "detach", "pinned", str(pin)], check=False)
    shutil.rmtree(pin_path, ignore_errors=True)


def iface_xdp(ns: Optional[Netns], iface: str) -> str:
    """The XDP part of `ip link show` for iface ("" when none is attached)."""
    out = ns_run(ns, ["ip", "-d", "link", "show", "dev", iface]).stdout
    return "\n".join(line for line in out.splitlines()
                     if re.search(r"\bxdp(generic|drv|offload)?\b|prog/xdp", line))


def tc_ingress(ns: Optional[Netns], iface: str) -> str:
    return ns_run(ns, ["tc", "filter", "show", "dev", iface, "ingress"], check=False).stdout.strip()


def bpftool_net(ns: Optional[Netns], iface: str) -> dict:
    """`bpftool net show dev iface` as JSON: xdp, tc and (newer bpftool) tcx entries."""
    out = ns_run(ns, ["bpftool", "-j", "net", "show", "dev", iface]).stdout
    data = json.loads(out)
    return data[0] if isinstance(data, list) and data else data


# --- unbound as an upstream -----------------------------------------------------------------


class Unbound:
    """A real unbound on 127.0.0.1:<port> inside ns, authoritative for example.test."""

    def __init__(self, ns: Optional[Netns], port: int, workdir: Path):
        self.ns, self.port, self.dir = ns, port, workdir
        self.conf = workdir / "unbound.conf"
        self.log_path = workdir / "unbound.log"
        self.conf.write_text(f"""server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: "{self.log_path}"
    verbosity: 1
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    local-zone: "example.test." static
    local-data: "example.test. 300 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 30"
    local-data: "www.example.test. 300 IN A 192.0.2.7"
    local-data: "www.example.test. 300 IN AAAA 2001:db8::7"
remote-control:
    control-enable: no
""")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Unbound":
        with open(self.dir / "unbound.out", "ab") as out:
            self.proc = spawn(prefix(self.ns) + ["unbound", "-d", "-c", str(self.conf)], out)
        ok = wait_until(lambda: self.proc.poll() is None and
                        dig(self.ns, "127.0.0.1", self.port, "www.example.test", "A",
                            timeout=1).status == "NOERROR", timeout=10, interval=0.1)
        if not ok:
            raise AssertionError("unbound did not start:\n" +
                                 (self.dir / "unbound.out").read_text(errors="replace"))
        return self

    def stop(self) -> None:
        if self.proc:
            terminate(self.proc)


STANDINS = Path(__file__).resolve().parents[1] / "standins"


class KubeStandin:
    """tests/standins/kube_apiserver.py inside ns (plain http), any token accepted."""

    def __init__(self, ns, tmp):
        self.ns = ns
        self.log = open(tmp / "kube-standin.log", "wb")
        self.proc = subprocess.Popen(
            prefix(ns) + [sys.executable, str(STANDINS / "kube_apiserver.py")],
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode().split()
        assert line and line[0] == "READY", line
        self.api, self.control = int(line[1]), int(line[2])

    def state(self) -> dict:
        r = http_get(self.ns, "127.0.0.1", self.control, "/state")
        assert r.status == 200, r
        return json.loads(r.body)

    def apply(self, obj: dict) -> None:
        r = http_post(self.ns, "127.0.0.1", self.control, "/apply", json.dumps(obj).encode())
        assert r.status == 200 and "event" in json.loads(r.body), r

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()
