"""Processes, namespaces and fabdnsd for tests/e2e and bench/: one copy under tests/, beside
the stand-ins both start already, since test support owns it and bench only reuses it.

Nothing here names what it creates: callers choose the names (the e2e suite puts its pytest pid
in them, the benchmark its own tag) and clean up after themselves.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

NETNS_DIR = Path("/run/netns")

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# --- commands and processes -------------------------------------------------------------------


class CommandError(RuntimeError):
    """A command exited non-zero; the message carries its output."""


def run(cmd: list[str], check: bool = True, timeout: float = 30,
        **kw) -> subprocess.CompletedProcess:
    """Runs a command, capturing text output; raises CommandError with the output when check
    fails (subprocess.TimeoutExpired when it outlives timeout)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise CommandError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def spawn(cmd: list[str], out, env: Optional[dict] = None) -> subprocess.Popen:
    """A long-running process with stdout and stderr to out; env is added to ours."""
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def processes_with_env(key: str, value: str) -> list[int]:
    """Processes whose environment holds key=value (how a killed run's leftovers are found)."""
    marker = f"{key}={value}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in env.split(b"\0"):
            out.append(int(entry.name))
    return out


def terminate(proc: subprocess.Popen, timeout: float = 5) -> None:
    """SIGTERM, then SIGKILL if proc has not exited within timeout; waits for it either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pid_alive(pid: int) -> bool:
    """True while pid runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls cond until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of pid in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_ns(pid: int) -> int:
    """CPU time of all of pid's threads so far, in ns (schedstat: exact, not in ticks)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


# --- namespaces and sockets -------------------------------------------------------------------


class Netns:
    """A network namespace named `name`, created with its loopback up. None stands for the
    host wherever a namespace is asked for."""

    def __init__(self, name: str):
        self.name = name
        run(["ip", "netns", "add", self.name])
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    def delete(self) -> None:
        # Processes still inside keep the namespace alive; the caller has stopped its own.
        run(["ip", "netns", "del", self.name], check=False)


def prefix(ns: Optional[Netns]) -> list[str]:
    """Command prefix that runs a program in ns (network only: /sys/fs/bpf stays visible).
    nsenter execs the program, so a process started this way has the program's own pid."""
    return ["nsenter", f"--net={ns.path}"] if ns else []


def ns_run(ns: Optional[Netns], cmd: list[str], check: bool = True, timeout: float = 30):
    return run(prefix(ns) + cmd, check=check, timeout=timeout)


def ns_socket(ns: Optional[Netns], family: int, type_: int) -> socket.socket:
    """A socket created inside ns. A socket keeps the namespace it was made in, so only the
    creation happens on a helper thread that has switched namespace (setns(2) is per thread)."""
    if ns is None:
        return socket.socket(family, type_)
    result: dict = {}

    def make():
        try:
            fd = os.open(ns.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            result["sock"] = socket.socket(family, type_)
        except BaseException as e:  # handed to the caller
            result["error"] = e

    t = threading.Thread(target=make)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


def free_port(ns: Optional[Netns] = None, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host inside ns (found by binding port 0)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        t = ns_socket(ns, fam, socket.SOCK_STREAM)
        u = ns_socket(ns, fam, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            try:
                u.bind((host, port))
            except OSError:
                continue
            return port
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


# --- HTTP and the metrics text ----------------------------------------------------------------


@dataclass
class HttpReply:
    status: int
    headers: dict
    body: str


def http_get(ns: Optional[Netns], host: str, port: int, path: str,
             timeout: float = 2.0) -> HttpReply:
    return http_request(ns, host, port, "GET", path, timeout=timeout)


def http_post(ns: Optional[Netns], host: str, port: int, path: str, body: bytes,
              timeout: float = 2.0) -> HttpReply:
    return http_request(ns, host, port, "POST", path, body, timeout)


def http_request(ns: Optional[Netns], host: str, port: int, method: str, path: str,
                 body: bytes = b"", timeout: float = 2.0) -> HttpReply:
    s = ns_socket(ns, socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return HttpReply(status, headers, body.decode(errors="replace"))


def parse_metrics(text: str) -> dict:
    """Prometheus text to {'name{label="v",...}': value} plus bare names for unlabelled ones."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def metric(metrics: dict, name: str) -> Optional[float]:
    """The value of metric `name` summed over its label sets; None when the daemon did not
    report it (e.g. the kernel's figures without a datapath)."""
    vals = [v for k, v in metrics.items() if k == name or k.startswith(name + "{")]
    return sum(vals) if vals else None


# --- the daemon ---------------------------------------------------------------------------------


class Daemon:
    """fabdnsd run from a config file, on the host or inside a namespace. `wrap` is a command
    prefix that execs the daemon (taskset, nice, prlimit), so the process id stays the daemon's
    own and signals reach it directly; `env` is added to the daemon's environment."""

    def __init__(self, binary: str, config: Path, ns: Optional[Netns], log: Path,
                 metrics: Optional[tuple[str, int]], wrap: Sequence[str] = (),
                 args: Sequence[str] = (), env: Optional[dict] = None):
        self.binary, self.config, self.ns, self.log_path = binary, config, ns, Path(log)
        self.metrics_addr = metrics
        self.wrap, self.args, self.env = list(wrap), list(args), env
        self.proc: Optional[subprocess.Popen] = None

    def start(self, wait_ready: bool = True, timeout: float = 15) -> "Daemon":
        with open(self.log_path, "ab") as log:
            self.proc = spawn(prefix(self.ns) + self.wrap +
                              [self.binary, "--config", str(self.config)] + self.args,
                              log, self.env)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def readyz(self) -> Optional[int]:
        try:
            host, port = self.metrics_addr
            return http_get(self.ns, host, port, "/readyz", timeout=1).status
        except (OSError, ValueError, IndexError):
            return None

    def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"fabdnsd exited {self.proc.returncode} while starting:\n"
                                     f"{self.log()}")
            if self.metrics_addr is None or self.readyz() == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"fabdnsd not ready after {timeout}s:\n{self.log()}")

    def send(self, sig: int) -> None:
        assert self.proc
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5) -> Optional[int]:
        """Sends sig and waits; returns the exit status, or None if it had to be killed."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def metrics(self, timeout: float = 2.0) -> dict:
        """GET /metrics, parsed (parse_metrics); raises OSError while nobody listens."""
        host, port = self.metrics_addr
        r = http_get(self.ns, host, port, "/metrics", timeout=timeout)
        assert r.status == 200, r
        return parse_metrics(r.body)

    def kernel_answers(self) -> float:
        return self.metrics().get("fabdns_kernel_answers_total", 0.0)

    def user_replies(self) -> float:
        return sum(v for k, v in self.metrics().items()
                   if k.startswith("fabdns_queries_total{") and 'path="user"' in k)
