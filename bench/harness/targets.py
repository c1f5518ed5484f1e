"""The servers under test, each started and stopped in the server namespace: fabdns (XDP, TC,
user space), Knot DNS (AF_XDP, sockets), unbound and the reference XDP responder."""
import json
import os
import shutil
import string

from common import HERE, METRICS, PORT, SRV_IP, HarnessError, plumbing, run
from measure import daemon_metrics


class Target:
    key = ""
    label = ""
    host_xdp = "pass"
    kernel = False  # answers in the kernel (has a BPF program to profile)
    user_space = False  # answers from a socket: its peak is found by a rate sweep
    mixes = ("A", "A+EDNS", "AAAA", "90/10 miss")

    def __init__(self, env, data, opts):
        self.env = env
        self.data = data
        self.opts = opts
        self.proc = None

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def start(self, dataset):
        raise NotImplementedError

    def stop(self):
        if self.proc:
            self.env.stop(self.proc)
            self.proc = None

    def kernel_answers(self):
        """Queries answered in the kernel so far, None where the target does not report it."""
        return None

    def kernel_progs(self):
        """ids of the BPF programs answering on the host end (for bpf_stats)."""
        out = []
        try:
            info = json.loads(run(self.env.srv(["bpftool", "net", "show", "dev", self.env.hveth,
                                                "-j"])))
            for section in info:
                for x in section.get("xdp", []) + section.get("tc", []) + section.get("tcx", []):
                    pid = x.get("id", x.get("prog_id"))
                    if pid is not None:
                        out.append(pid)
        except (HarnessError, ValueError):
            pass
        return out


class Fabdns(Target):
    mode = None  # "xdp" | "tc" | None (user space only)

    def __init__(self, env, data, opts):
        super().__init__(env, data, opts)
        self.daemon = None  # plumbing.Daemon while running

    def kernel_progs(self):
        """fabdns attaches through pinned links (tcx for tc, which bpftool 7.1's `net show`
        does not list): the program ids come from <pin_path>/link_<iface>."""
        link = "%s/fabdns/link_%s" % (self.env.pin, self.env.hveth)
        if os.path.exists(link):
            try:
                d = json.loads(run(["bpftool", "link", "show", "pinned", link, "-j"]))
                return [d["prog_id"]] + [i for i in super().kernel_progs() if i != d["prog_id"]]
            except (HarnessError, ValueError, KeyError):
                pass
        return super().kernel_progs()

    def config(self, dataset, source=None, capacity=262144):
        env = self.env
        tmpl = string.Template(open(os.path.join(HERE, "templates", "fabdns.yaml.in")).read())
        if source is None:
            source = "  kind: file\n  file:\n    path: %s" % self.data.manifest(dataset)
        attach = ("    - iface: %s\n      mode: %s" % (env.hveth, self.mode)) if self.mode else "    []"
        text = tmpl.substitute(listen="%s:%d" % (SRV_IP, PORT), source=source,
                               datapath_enabled="true" if self.mode else "false",
                               pin_path=env.pin + "/fabdns", capacity=capacity, attach=attach)
        path = os.path.join(env.state, "fabdns-%s.yaml" % (self.mode or "user"))
        with open(path, "w") as f:
            f.write(text)
        return path

    def launch(self, cfg, logname=None):
        """Starts fabdnsd on the server CPU and returns at once (readiness is the caller's)."""
        env = self.env
        logpath = env.logpath(logname or "fabdnsd-%s" % (self.mode or "user"))
        self.daemon = plumbing.Daemon(self.opts.fabdnsd, cfg, env.srv_netns, logpath, METRICS,
                                      wrap=env.wrap(env.server_cpu), args=["--log-level", "info"])
        self.proc = env.adopt(self.daemon.start(wait_ready=False).proc, logpath)
        return self.proc

    def start(self, dataset):
        self.launch(self.config(dataset))

    def stop(self):
        super().stop()
        self.daemon = None
        shutil.rmtree(self.env.pin + "/fabdns", ignore_errors=True)

    def kernel_answers(self):
        """fabdns_kernel_answers_total from the daemon's metrics (the kernel's stats map)."""
        if not self.mode or self.daemon is None:
            return None
        m = daemon_metrics(self.daemon)
        return plumbing.metric(m, "fabdns_kernel_answers_total") if m is not None else None


class FabdnsXdp(Fabdns):
    key, label, mode, host_xdp, kernel = "fabdns-xdp", "fabdns XDP", "xdp", "none", True


class FabdnsTc(Fabdns):
    key, label, mode, host_xdp, kernel = "fabdns-tc", "fabdns TC", "tc", "pass", True


class FabdnsUser(Fabdns):
    key, label, mode, host_xdp, user_space = "fabdns-user", "fabdns user space", None, "pass", True


class Knot(Target):
    xdp = False

    def start(self, dataset):
        env = self.env
        d = os.path.join(env.state, "knot-%s" % ("xdp" if self.xdp else "sock"))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "db"))
        shutil.copy(self.data.zone(dataset), os.path.join(d, "global.zone"))
        tmpl = string.Template(open(os.path.join(HERE, "templates", "knot.conf.in")).read())
        xdp = ("xdp:\n    listen: %s@%d\n    udp: on\n    tcp: off\n" % (env.hveth, PORT)
               if self.xdp else "")
        listen = "127.0.0.1@%d" % PORT if self.xdp else "%s@%d" % (SRV_IP, PORT)
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(tmpl.substitute(dir=d, listen=listen, xdp=xdp))
        self.proc = env.start(["knotd", "-c", os.path.join(d, "knot.conf")],
                              "knotd-%s" % ("xdp" if self.xdp else "sock"), cpu=env.server_cpu)


class KnotSock(Knot):
    key, label, host_xdp, user_space = "knot-sock", "Knot sockets", "pass", True


class KnotXdp(Knot):
    key, label, host_xdp, xdp, kernel = "knot-xdp", "Knot AF_XDP", "none", True, False


class Unbound(Target):
    key, label, host_xdp, user_space = "unbound", "unbound", "pass", True

    def start(self, dataset):
        env = self.env
        d = os.path.join(env.state, "unbound")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(self.data.unbound(dataset), os.path.join(d, "local-data.conf"))
        tmpl = string.Template(open(os.path.join(HERE, "templates", "unbound.conf.in")).read())
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write(tmpl.substitute(dir=d, listen_ip=SRV_IP))
        self.proc = env.start(["unbound", "-d", "-c", os.path.join(d, "unbound.conf")], "unbound",
                              cpu=env.server_cpu)


class Reference(Target):
    key, label, kernel = "ref", "reference XDP (A only)", True
    mixes = ("A", "A+EDNS")

    def start(self, dataset):
        env = self.env
        d = env.pin + "/ref"
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        run(["bpftool", "prog", "loadall", os.path.join(env.bpf_dir, "ref_responder.o"), d + "/prog",
             "pinmaps", d + "/maps"])
        run(["bpftool", "batch", "file", self.data.ref_batch(dataset, d + "/maps/ref_names")],
            timeout=300)
        self.host_xdp = d + "/prog/ref_xdp"
        env.host_xdp(self.host_xdp)

    def stop(self):
        self.env.host_xdp("pass")
        shutil.rmtree(self.env.pin + "/ref", ignore_errors=True)


TARGETS = [Reference, FabdnsXdp, FabdnsTc, FabdnsUser, KnotXdp, KnotSock, Unbound]
