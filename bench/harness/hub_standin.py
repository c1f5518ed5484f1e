"""The FabEdge hub as a source for benchmarks: a throw-away CA with server and client
certificates, tests/standins/hub.py serving a snapshot over mutual TLS, and the daemon's
`source:` block that reads it. Works with a topology.Env (start) or without one (command,
wait_ready and source_block, for a stand-in started on the host)."""
import os
import re
import time

from common import REPO, HarnessError, run


def make_certs(d):
    """CA, server (127.0.0.1, localhost) and client certificates in d; returns d."""
    ossl = "openssl"

    def req(name, cn):
        run([ossl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name),
             "-subj", "/CN=" + cn])

    def sign(name, ext):
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write(ext)
        run([ossl, "x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt",
             "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (d, name),
             "-days", "2", "-extfile", "%s/%s.ext" % (d, name)])

    run([ossl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "2", "-subj",
         "/CN=fabdns bench CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
         "keyUsage=critical,keyCertSign,cRLSign"])
    req("server", "localhost")
    sign("server", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
         "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    req("client", "fabdns-node")
    sign("client", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
         "extendedKeyUsage=clientAuth\n")
    return d


def command(data, certs):
    """The stand-in serving the JSON file `data` over mutual TLS with the certificates in certs;
    it prints `READY <port> <control port>` once it listens."""
    return ["/usr/bin/python3", "-u", os.path.join(REPO, "tests", "standins", "hub.py"), "--data",
            data, "--cert", certs + "/server.crt", "--key", certs + "/server.key", "--client-ca",
            certs + "/ca.crt"]


def wait_ready(logpath, timeout=15):
    """The stand-in's (port, control port) from its READY line in logpath, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        with open(logpath) as f:
            m = re.search(r"READY (\d+) (\d+)", f.read())
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def source_block(port, certs, interval):
    """fabdnsd's `source:` block for a stand-in on 127.0.0.1:port."""
    return ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
            "    ca: %s/ca.crt\n    cert: %s/client.crt\n    key: %s/client.key\n"
            "    interval: %s\n    snapshot: \"\"" % (port, certs, certs, certs, interval))


def start(env, data, certs, name, interval):
    """The stand-in started in the server namespace (topology.Env); returns (process, the
    daemon's `source:` block for it)."""
    hub = env.start(command(data, certs), name, cpu=env.client_cpu, nice=False)
    ports = wait_ready(hub.logpath)
    if ports is None:
        env.stop(hub)
        raise HarnessError("hub stand-in did not start")
    return hub, source_block(ports[0], certs, interval)
