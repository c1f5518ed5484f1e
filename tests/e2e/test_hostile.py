"""The hostile-input matrix: one daemon takes hostile UDP packets, TCP behaviours and signals
while legitimate queries (UDP to the kernel and to user space, TCP) keep being asked, and
fabdnsd --check-config takes hostile config files. Asserts no crash, no hang, every legitimate
query answered; prints how many hostile inputs each surface got.

The TCP counts are bounded so that the server as it is passes them; the starvation cases of
issue 9 (hundreds of abusive connections) belong to the TCP tests."""

import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import e2elib as lib
from conftest import FABDNSD

NGINX = "nginx.default.svc.global"
SUZHOU_A = ["10.234.0.10"]
QTYPE = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16, "AAAA": 28, "AXFR": 252, "IXFR": 251, "ANY": 255}


# --- raw DNS messages ---------------------------------------------------------------------------


def header(qid=0x4242, flags=0x0100, qd=1, an=0, ns=0, ar=0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name=NGINX, qtype=1, qclass=1) -> bytes:
    return lib.wire_name(name) + struct.pack("!HH", qtype, qclass)


def opt(payload=1232, version=0, do=False, options=b"", owner=b"\x00") -> bytes:
    ttl = (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(options)) + options


def query(name=NGINX, qtype=1, qid=0x4242, edns: bytes = b"") -> bytes:
    return header(qid, ar=1 if edns else 0) + question(name, qtype) + edns


def hostile_udp(rng: random.Random) -> list[tuple[str, bytes]]:
    """(kind, packet) pairs."""
    out = []
    for n in range(300):
        out.append(("random", bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))))
    good = query(edns=opt(options=b"\x00\x0a\x00\x08" + bytes(8)))  # with a cookie
    for cut in range(len(good)):
        out.append(("truncated", good[:cut]))
    for n in range(200):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        out.append(("garbage", header(rng.randrange(65536), rng.randrange(65536),
                                      rng.randrange(4), rng.randrange(4), rng.randrange(4),
                                      rng.randrange(4)) + body))
    for size in (513, 1233, 1500, 4096, 9000, 32768, 65000):
        out.append(("oversized", query() + bytes(rng.randrange(256) for _ in range(size))))
        out.append(("oversized", query(edns=opt(payload=65535)) + bytes(size)))
    for name in (NGINX, "nosuch.default.svc.global", "example.com"):
        for rcode in range(16):
            out.append(("response", header(flags=0x8000 | 0x0400 | rcode, an=1) +
                        question(name) + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04" +
                        bytes([10, 0, 0, 1])))
    for opcode in range(1, 16):
        for qtype in (1, 28, 6):
            out.append(("opcode", header(flags=(opcode << 11) | 0x0100) + question(qtype=qtype)))
    editions = [opt(version=v) for v in (1, 2, 255)]
    editions += [opt(payload=p) for p in (0, 1, 511, 512, 65535)]
    editions += [opt(do=True), opt(owner=b"\x01a\x00"), opt(options=b"\x00\x0a\x00\xff"),
                 opt(options=b"\x00\x0a\x00\x02ab"), opt(options=b"\xff\xff\x00\x00"),
                 opt(options=bytes(3)), opt(options=b"\x00\x08\x00\x04\x00\x01\x40\x00")]
    for e in editions:
        out.append(("edns", header(ar=1) + question() + e))
    out.append(("edns", header(ar=2) + question() + opt() + opt()))  # two OPT records
    out.append(("edns", header(an=1) + question() + opt()))  # OPT in the answer section
    out.append(("edns", header(ar=1) + question()))  # ARCOUNT 1, nothing there
    out.append(("edns", header(ar=1) + question() + opt()[:-3]))  # OPT cut short
    for qd in (0, 2, 65535):
        out.append(("question", header(qd=qd) + question()))
    for qclass in (0, 3, 254, 255, 65535):
        out.append(("question", header() + question(qclass=qclass)))
    for qtype in (0, 6, 16, 251, 252, 255, 65535):
        out.append(("question", header() + question(qtype=qtype)))
    out.append(("question", header() + b"\xc0\x0c\x00\x01\x00\x01"))  # pointer to itself
    out.append(("question", header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"))
    out.append(("question", header() + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"))
    out.append(("question", header() + b"\x05nginx"))
    return out


# --- legitimate traffic -------------------------------------------------------------------------


def tcp_ask(ns, port: int, msg: bytes, timeout: float = 3.0):
    s = lib.ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(struct.pack("!H", len(msg)) + msg)
        return read_tcp_message(s)
    except OSError:
        return None
    finally:
        s.close()


def read_exactly(s, n: int):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_tcp_message(s):
    """One length-prefixed message, leaving any that follow in the socket."""
    prefix = read_exactly(s, 2)
    return read_exactly(s, struct.unpack("!H", prefix)[0]) if prefix else None


class Prober:
    """Asks legitimate questions until stopped: UDP for a hot name (the kernel), UDP for a
    name user space answers (NXDOMAIN), and TCP. A UDP question gets three tries of a second,
    as a stub resolver would; a TCP one a single try of three seconds."""

    def __init__(self, ns, port):
        self.ns, self.port = ns, port
        self.asked = {"udp": 0, "tcp": 0}
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def check(self, reply, want_rcode, what):
        if reply is None:
            self.failures.append(f"{time.monotonic():.2f} {what}: no reply")
            return
        h = lib.parse_header(reply)
        if not h.qr or h.rcode != want_rcode:
            self.failures.append(f"{time.monotonic():.2f} {what}: {h}")

    def run(self):
        i = 0
        while not self.stop.is_set():
            qid = i & 0xFFFF
            name, rcode = ((NGINX, 0), ("nosuch.default.svc.global", 3))[i % 2]
            msg = query(name, qid=qid)
            reply = None
            for _ in range(3):
                reply = lib.udp_exchange(self.ns, "127.0.0.1", self.port, msg, timeout=1.0)
                if reply is not None:
                    break
            self.asked["udp"] += 1
            self.check(reply, rcode, f"udp {name}")
            if i % 2 == 0:
                self.asked["tcp"] += 1
                self.check(tcp_ask(self.ns, self.port, query(NGINX, qid=qid)), 0, "tcp")
            i += 1
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


# --- the surfaces -------------------------------------------------------------------------------


def udp_surface(node, rng) -> dict:
    counts: dict = {}
    packets = hostile_udp(rng)
    socks = {}
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        socks[host] = lib.ns_socket(node.ns, fam, socket.SOCK_DGRAM)
    try:
        for n, (kind, pkt) in enumerate(packets):
            host = "::1" if n % 3 == 0 else "127.0.0.1"
            try:
                socks[host].sendto(pkt, (host, node.port))
            except OSError:  # EMSGSIZE for the largest over IPv6 is fine: nothing was sent
                continue
            counts[kind] = counts.get(kind, 0) + 1
            if n % 50 == 0:
                time.sleep(0.01)  # hostile, not a flood: the prober's answers must get through
        # Queries and garbage from the ports of reflection loops (echo, daytime, qotd,
        # chargen, time).
        for port in (7, 13, 17, 19, 37):
            s = lib.ns_socket(node.ns, socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", port))
                for pkt in (query(), query("nosuch.default.svc.global"), b"\x00" * 40,
                            query(qtype=16)):
                    s.sendto(pkt, ("127.0.0.1", node.port))
                    counts["reflection"] = counts.get("reflection", 0) + 1
                # Neither path answers these, not even with an error (SPEC §4).
                s.settimeout(0.5)
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    data = None
                assert data is None, f"a reply went to reflection port {port}: {data!r}"
            finally:
                s.close()
        assert node.daemon.metrics().get("fabdns_reflection_dropped_total", 0) >= 20
    finally:
        for s in socks.values():
            s.close()
    return counts


def tcp_surface(node, rng) -> dict:
    counts: dict = {}
    held = []
    good = query()

    def conn():
        s = lib.ns_socket(node.ns, socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(("127.0.0.1", node.port))
        return s

    def count(kind, n=1):
        counts[kind] = counts.get(kind, 0) + n

    try:
        for _ in range(30):  # connect, close at once
            conn().close()
            count("abrupt close")
        for _ in range(30):  # half a message, then a reset
            s = conn()
            s.sendall(struct.pack("!H", len(good)) + good[:10])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            count("reset mid-message")
        for i in range(40):  # one byte of the length prefix; half of them stay open
            s = conn()
            s.sendall(b"\x00")
            (held.append(s) if i % 2 else s.close())
            count("partial length")
        for _ in range(20):
            s = conn()
            s.sendall(b"\x00\x00")
            s.close()
            count("zero length")
        for i in range(20):  # 65535 announced, a little sent; half stay open
            s = conn()
            s.sendall(b"\xff\xff" + bytes(100))
            (held.append(s) if i % 2 else s.close())
            count("huge length")
        for _ in range(3):  # 65535 announced and sent: garbage of the largest size
            s = conn()
            s.sendall(b"\xff\xff" + bytes(rng.randrange(256) for _ in range(65535)))
            s.close()
            count("huge length")
        for _ in range(30):  # length-prefixed garbage
            s = conn()
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            s.sendall(struct.pack("!H", len(body)) + body)
            s.close()
            count("garbage")
        for _ in range(40):  # idle: connected, nothing sent, left open
            held.append(conn())
            count("idle")
        # Pipelining: 20 queries in one write, every reply read back.
        for c in range(10):
            s = conn()
            ids = list(range(c * 100, c * 100 + 20))
            s.sendall(b"".join(struct.pack("!H", len(query(qid=i))) + query(qid=i)
                               for i in ids))
            got = []
            for _ in ids:
                m = read_tcp_message(s)
                assert m is not None, f"pipelined reply {len(got)} of {len(ids)} missing"
                got.append(lib.parse_header(m).id)
            s.close()
            assert sorted(got) == ids
            count("pipelined", len(ids))

        # Slow bytes: one byte every 40 ms, five clients at once; each gets its answer.
        def slow(qid):
            s = conn()
            try:
                msg = query(qid=qid)
                for b in struct.pack("!H", len(msg)) + msg:
                    s.send(bytes([b]))
                    time.sleep(0.04)
                m = read_tcp_message(s)
                return m is not None and lib.parse_header(m).id == qid
            finally:
                s.close()

        with ThreadPoolExecutor(5) as pool:
            assert all(pool.map(slow, range(5))), "a slow client got no answer"
        count("slow bytes", 5)
    finally:
        for s in held:
            s.close()
    return counts


def signal_surface(node, e2e) -> dict:
    counts: dict = {}
    for _ in range(100):  # a HUP storm
        node.daemon.send(signal.SIGHUP)
        time.sleep(0.005)
    counts["HUP storm"] = 100
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
        for _ in range(10):
            node.daemon.send(sig)
        counts[sig.name] = 10
    time.sleep(0.5)
    assert node.daemon.alive(), node.daemon.log()

    # SIGTERM while a second daemon is still starting (loading its datapath): a clean stop.
    other = e2e.node(start=False)
    for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4):
        other.daemon.start(wait_ready=False)
        pid = other.daemon.pid
        # Once fabdnsd's main() runs (SIGTERM blocked), not while nsenter is still exec'ing.
        assert lib.wait_until(lambda: main_runs(pid), 5), "fabdnsd did not start"
        time.sleep(delay)
        rc = other.daemon.stop(signal.SIGTERM, timeout=10)
        assert rc == 0, f"SIGTERM {delay}s into the start: exit {rc}\n{other.daemon.log()}"
        counts["TERM during load"] = counts.get("TERM during load", 0) + 1
    return counts


def main_runs(pid: int) -> bool:
    """Whether fabdnsd's main() has blocked SIGTERM: SigBlk says so while it starts, and SigIgn
    (SIGUSR1, ignored right after) once it is up: sigtimedwait() unblocks what it waits for while
    it sleeps, and a fast start is up before the first look."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except FileNotFoundError:
        return False
    if fields.get("Name", "").strip() == "nsenter":
        return False
    blocked = int(fields.get("SigBlk", "0"), 16) & (1 << (signal.SIGTERM - 1))
    ignored = int(fields.get("SigIgn", "0"), 16) & (1 << (signal.SIGUSR1 - 1))
    return bool(blocked or ignored)


# --- config files -------------------------------------------------------------------------------


FULL_CONFIG = {
    "node": {"cluster": "beijing", "zone": "beijing", "region": "north"},
    "dns": {"zones": ["global"], "ttl": 5, "listen": ["127.0.0.1:1053"], "upstream": []},
    "source": {
        "kind": "file",
        "file": {"path": "services.yaml"},
        "hub": {"url": "https://hub:3000", "cluster": "beijing", "ca": "ca.crt",
                "cert": "tls.crt", "key": "tls.key", "interval": "5s",
                "snapshot": "last-known.json"},
        "kubernetes": {"server": "http://127.0.0.1:10261", "kubeconfig": "kubeconfig",
                       "allow_token_over_http": False},
    },
    "datapath": {"enabled": True, "pin_path": "/sys/fs/bpf/fabdns", "capacity": 65536,
                 "answer_for": ["127.0.0.1:1053"],
                 "attach": [{"iface": "lo", "mode": "xdp-generic"}], "stale_after": "120s",
                 "detach_on_exit": False, "required": False},
    "metrics": {"listen": "127.0.0.1:9153"},
}


def leaves(cfg, path=""):
    """(dotted key, value) of every key, sections and lists included."""
    for k, v in cfg.items():
        p = f"{path}.{k}" if path else k
        yield p, v
        if isinstance(v, dict):
            yield from leaves(v, p)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, item in enumerate(v):
                for sub, sv in leaves(item):
                    yield f"{p}[{i}].{sub}", sv


def set_key(cfg, key, value):
    cfg = json.loads(json.dumps(cfg))
    parts = key.replace("[", ".[").split(".")
    node = cfg
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    node[last] = value
    return cfg


def hostile_configs(rng, tmp) -> list[tuple[str, str, str, bool]]:
    """(kind, yaml text, key expected in the error, whether an error is required)."""
    out = []
    for key, value in leaves(FULL_CONFIG):
        scalar = not isinstance(value, (dict, list))
        wrong_shape = [{"a": 1}, [1, 2]] if scalar else (["x"] if isinstance(value, dict)
                                                         else [{"a": 1}])
        if isinstance(value, list):
            wrong_shape.append("x" * 70000)
        for v in wrong_shape:
            out.append(("wrong type", json.dumps(set_key(FULL_CONFIG, key, v)), key, True))
        out.append(("unset ${VAR}", json.dumps(set_key(FULL_CONFIG, key,
                                                       "${FABDNS_E2E_UNSET_VARIABLE}")),
                    key, True))
        if scalar:
            for v in ("", "x" * 70000, -1, 2 ** 70, 1.5, "\u202e\x01garbage", "${"):
                out.append(("wrong value", json.dumps(set_key(FULL_CONFIG, key, v)), key,
                            False))
        if isinstance(value, dict):
            out.append(("unknown key", json.dumps(set_key(FULL_CONFIG, key + ".bogus", 1)),
                        key + ".bogus", True))
    text = json.dumps(FULL_CONFIG, indent=2)
    for _ in range(60):
        cut = rng.randrange(len(text))
        out.append(("garbage YAML", text[:cut], "", False))
    for _ in range(40):
        out.append(("garbage YAML", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
                    .decode("latin-1"), "", False))
    out.append(("garbage YAML", "[" * 100000, "", True))  # nesting deeper than any parser stack
    out.append(("garbage YAML", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" +
                "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
                        for i in range(8)), "", True))  # alias bomb: ten to the ninth
    out.append(("garbage YAML", text + "\n---\n" + text, "config", True))  # two documents
    out.append(("garbage YAML", "\t" + text, "", False))
    return out


def config_surface(tmp, rng) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FABDNS_E2E_UNSET_VARIABLE"}
    cases = hostile_configs(rng, tmp)
    counts: dict = {}
    problems = []

    def check(i_case):
        i, (kind, text, key, must_fail) = i_case
        path = tmp / f"hostile-{i}.yaml"
        path.write_text(text, errors="surrogateescape")
        try:
            p = subprocess.run([FABDNSD, "--check-config", "--config", str(path)],
                               capture_output=True, timeout=20, env=env)
        except subprocess.TimeoutExpired:
            return f"{kind} {key}: hang (> 20s)"
        err = p.stderr.decode(errors="replace")
        if p.returncode not in (0, 2):
            return f"{kind} {key}: exit {p.returncode}\n{err[:300]}"
        if must_fail and p.returncode != 2:
            return f"{kind} {key}: accepted"
        if p.returncode == 2:
            if not err.startswith("fabdnsd: config: ") or err.count("\n") != 1:
                return f"{kind} {key}: not one config line: {err[:300]!r}"
            if key and kind != "wrong value" and key not in err:
                return f"{kind} {key}: the key is not named: {err[:300]!r}"
            if key and kind == "wrong value" and not err.startswith(f"fabdnsd: config: {key}"):
                # A value can be refused for another key's sake (e.g. a kind that needs
                # fields), but then that key is named.
                if ": " not in err[len("fabdnsd: config: "):]:
                    return f"{kind} {key}: no key named: {err[:300]!r}"
        return None

    with ThreadPoolExecutor(4) as pool:
        for (kind, *_), problem in zip(cases, pool.map(check, enumerate(cases))):
            counts[kind] = counts.get(kind, 0) + 1
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems[:20])
    return counts


# --- the matrix ---------------------------------------------------------------------------------


def test_hostile_input_matrix(e2e, capsys):
    rng = random.Random(9)
    node = e2e.node()
    tried = {}
    with Prober(node.ns, node.port) as prober:
        for surface, run in (("udp", lambda: udp_surface(node, rng)),
                             ("tcp", lambda: tcp_surface(node, rng)),
                             ("config", lambda: config_surface(e2e.tmp, rng)),
                             ("signals", lambda: signal_surface(node, e2e))):
            t0 = time.monotonic()
            tried[surface] = run()
            tried[surface]["_seconds"] = round(time.monotonic() - t0, 1)
            assert node.daemon.alive(), f"fabdnsd died during the {surface} surface:\n" + \
                node.daemon.log()[-3000:]
        time.sleep(0.5)
    # Still answering, from both paths, after everything.
    assert node.dig(NGINX).addresses() == SUZHOU_A
    assert node.dig(NGINX, "A", "+tcp").addresses() == SUZHOU_A
    t0 = time.monotonic()
    rc = node.daemon.stop(signal.SIGTERM, timeout=5)
    assert rc == 0, f"exit {rc} (None: hung, killed)\n{node.daemon.log()[-3000:]}"
    with capsys.disabled():
        print("\nhostile-input matrix:")
        for surface, counts in tried.items():
            secs = counts.pop("_seconds")
            total = sum(counts.values())
            detail = ", ".join(f"{k} {v}" for k, v in counts.items())
            print(f"  {surface:8s} {total:5d} inputs in {secs:5.1f}s ({detail})")
        print(f"  legitimate queries answered: udp {prober.asked['udp']}, tcp "
              f"{prober.asked['tcp']}, failed {len(prober.failures)}; stop took "
              f"{time.monotonic() - t0:.1f}s; crashes 0, hangs 0")
    assert prober.asked["udp"] > 20 and prober.asked["tcp"] > 10
    assert not prober.failures, prober.failures[:20]
