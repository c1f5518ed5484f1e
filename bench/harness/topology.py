"""The benchmark's topology and the processes in it: two network namespaces joined by one veth
pair, XDP_PASS programs, threaded NAPI pinned to CPUs, and the record of everything made that
bench/harness/cleanup.sh undoes.

The server namespace holds the "host end" (a target answers on 198.18.0.1, an RFC 2544
benchmarking address); the client namespace holds the peer end and the load generators. No
traffic leaves these namespaces. The server's NAPI kthread and server processes run on one CPU,
the load generator and the client's NAPI kthread on the other.
"""
import json
import os
import shutil

from common import CLI_IP, HERE, SRV_IP, HarnessError, log, plumbing, run


class Env:
    def __init__(self, state, server_cpu, client_cpu, nice=0):
        self.state = state
        self.nice = nice
        tag = "%04d" % (os.getpid() % 10000)
        self.tag = tag
        self.srv_ns = "fbb%ss" % tag
        self.cli_ns = "fbb%sc" % tag
        self.srv_netns = self.cli_netns = None  # plumbing.Netns once made
        self.hveth = "fbb%sh" % tag  # host (server) end
        self.cveth = "fbb%sp" % tag  # peer (client) end
        self.pin = "/sys/fs/bpf/fbb%s" % tag
        self.server_cpu = server_cpu
        self.client_cpu = client_cpu
        self.procs = []
        self.bpf_dir = os.path.join(state, "bpf")
        os.makedirs(self.bpf_dir, exist_ok=True)

    # state registry (read by cleanup.sh)
    def remember(self, kind, value):
        with open(os.path.join(self.state, kind), "a") as f:
            f.write("%s\n" % value)

    def srv(self, cmd):
        assert self.srv_netns, "no server namespace yet"
        return plumbing.prefix(self.srv_netns) + cmd

    def cli(self, cmd):
        assert self.cli_netns, "no client namespace yet"
        return plumbing.prefix(self.cli_netns) + cmd

    def build_bpf(self):
        for name in ("xdp_pass", "ref_responder"):
            src = os.path.join(HERE, "bpf", name + ".bpf.c")
            out = os.path.join(self.bpf_dir, name + ".o")
            run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/%s-linux-gnu" % os.uname().machine,
                 "-Wno-unused-command-line-argument", "-c", src, "-o", out], timeout=120)

    def setup(self):
        self.remember("pins", self.pin)
        os.makedirs(self.pin, exist_ok=True)
        self.remember("netns", self.srv_ns)
        self.remember("netns", self.cli_ns)
        try:
            self.srv_netns = plumbing.Netns(self.srv_ns)
            self.cli_netns = plumbing.Netns(self.cli_ns)
        except plumbing.CommandError as e:
            raise HarnessError(str(e))
        run(["ip", "link", "add", self.hveth, "type", "veth", "peer", "name", self.cveth])
        run(["ip", "link", "set", self.hveth, "netns", self.srv_ns])
        run(["ip", "link", "set", self.cveth, "netns", self.cli_ns])
        for ns, dev, ip in ((self.srv_ns, self.hveth, SRV_IP), (self.cli_ns, self.cveth, CLI_IP)):
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % dev])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        hmac = self.mac(self.srv_ns, self.hveth)
        cmac = self.mac(self.cli_ns, self.cveth)
        run(["ip", "-n", self.srv_ns, "neigh", "replace", CLI_IP, "lladdr", cmac, "dev", self.hveth,
             "nud", "permanent"])
        run(["ip", "-n", self.cli_ns, "neigh", "replace", SRV_IP, "lladdr", hmac, "dev", self.cveth,
             "nud", "permanent"])
        run(["bpftool", "prog", "load", os.path.join(self.bpf_dir, "xdp_pass.o"),
             self.pin + "/xdp_pass", "type", "xdp"])
        self.host_xdp("pass")
        self.client_xdp_pass()
        self.threaded()
        self.pin_napi()

    @staticmethod
    def mac(ns, dev):
        out = run(["ip", "-n", ns, "-j", "link", "show", dev])
        return json.loads(out)[0]["address"]

    def host_xdp(self, what):
        """'pass': our XDP_PASS program on the host end; 'none': nothing (a target attaches its
        own); a path: that pinned program."""
        if what == "none":
            run(self.srv(["bpftool", "net", "detach", "xdpdrv", "dev", self.hveth]), check=False)
            run(self.srv(["bpftool", "net", "detach", "xdpgeneric", "dev", self.hveth]), check=False)
            return
        prog = self.pin + "/xdp_pass" if what == "pass" else what
        run(self.srv(["bpftool", "net", "attach", "xdpdrv", "pinned", prog, "dev", self.hveth,
                      "overwrite"]))

    def client_xdp_pass(self):
        run(self.cli(["bpftool", "net", "attach", "xdpdrv", "pinned", self.pin + "/xdp_pass",
                      "dev", self.cveth, "overwrite"]))

    def threaded(self, check=True):
        """Threaded NAPI on both ends (again after a target attached XDP: that makes a new
        NAPI kthread)."""
        for ns, dev in ((self.srv_ns, self.hveth), (self.cli_ns, self.cveth)):
            run(["ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /sys/class/net/%s/threaded" % dev],
                check=check)

    def napi_threads(self, dev):
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("napi/%s-" % dev):
                out.append(int(pid))
        return out

    def pin_napi(self):
        for dev, cpu in ((self.hveth, self.server_cpu), (self.cveth, self.client_cpu)):
            for pid in self.napi_threads(dev):
                try:
                    os.sched_setaffinity(pid, {cpu})
                    os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                except OSError as e:
                    log("cannot pin napi thread %d: %s" % (pid, e))

    def napi_realtime(self, on):
        """SCHED_FIFO for the NAPI kthreads of both ends (latency runs only: at a fixed rate far
        below saturation they use little CPU, and without it their wake-ups queue behind other
        work on a shared machine, which is not the server's latency). Off: SCHED_OTHER + nice."""
        for dev in (self.hveth, self.cveth):
            for pid in self.napi_threads(dev):
                try:
                    if on:
                        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(50))
                    else:
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
                        os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                except OSError as e:
                    log("cannot set the policy of napi thread %d: %s" % (pid, e))

    def niced(self, cmd):
        return (["nice", "-n", str(self.nice)] if self.nice else []) + cmd

    def wrap(self, cpu=None, nice=True):
        """The prefix that pins a command to cpu and nices it (both exec the command)."""
        full = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return self.niced(full) if nice else full

    def counters(self):
        """Packet counters of both veth ends (ip -s link): what the server side sent onto the
        wire (tx packets) and could not hand to the client's ring (tx dropped)."""
        out = {}
        for side, ns, dev in (("host", self.srv_ns, self.hveth), ("client", self.cli_ns, self.cveth)):
            st = json.loads(run(["ip", "-n", ns, "-s", "-j", "link", "show", dev]))[0]["stats64"]
            out[side] = {"tx": st["tx"]["packets"], "tx_drop": st["tx"]["dropped"],
                         "rx": st["rx"]["packets"], "rx_drop": st["rx"]["dropped"]}
        return out

    def logpath(self, name):
        return os.path.join(self.state, "logs", name + ".log")

    def start(self, cmd, name, ns="srv", cpu=None, nice=True):
        """Starts a long-running process in a namespace ("srv", "cli" or None for the host),
        pinned to a CPU; output to a log."""
        full = self.wrap(cpu, nice) + cmd
        full = self.srv(full) if ns == "srv" else self.cli(full) if ns == "cli" else full
        with open(self.logpath(name), "ab") as logf:
            p = plumbing.spawn(full, logf)
        return self.adopt(p, self.logpath(name))

    def adopt(self, p, logpath):
        """Records a process started elsewhere (a plumbing.Daemon's) as one of ours."""
        self.remember("pids", p.pid)
        p.logpath = logpath
        self.procs.append(p)
        return p

    def stop(self, p, wait=10):
        plumbing.terminate(p, wait)
        if p in self.procs:
            self.procs.remove(p)

    def teardown(self):
        for p in list(self.procs):
            try:
                self.stop(p, wait=5)
            except Exception as e:  # keep tearing down
                log("stop: %s" % e)
        for ns in (self.cli_ns, self.srv_ns):
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.pin, ignore_errors=True)

