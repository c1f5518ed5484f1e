"""The FabEdge hub as a source for the sync benchmarks: a throw-away CA with server and client
certificates, tests/standins/hub.py serving a snapshot over mutual TLS, and the daemon's
`source:` block that reads it. (bench/sources.py makes the same; it can use these.)"""
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


def start(env, data, certs, name, interval):
    """Starts the stand-in in the server namespace serving the JSON file `data`; returns
    (process, the fabdnsd `source:` block for it). It prints `READY <port> <control port>`."""
    hub = env.start(["/usr/bin/python3", "-u", os.path.join(REPO, "tests", "standins", "hub.py"),
                     "--data", data, "--cert", certs + "/server.crt", "--key",
                     certs + "/server.key", "--client-ca", certs + "/ca.crt"],
                    name, cpu=env.client_cpu, nice=False)
    ports = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and ports is None:
        time.sleep(0.05)
        with open(hub.logpath) as f:
            m = re.search(r"READY (\d+) (\d+)", f.read())
        if m:
            ports = (int(m.group(1)), int(m.group(2)))
    if ports is None:
        env.stop(hub)
        raise HarnessError("hub stand-in did not start")
    source = ("  kind: hub\n  hub:\n    url: https://127.0.0.1:%d\n    cluster: edge\n"
              "    ca: %s/ca.crt\n    cert: %s/client.crt\n    key: %s/client.key\n"
              "    interval: %s\n    snapshot: \"\"" % (ports[0], certs, certs, certs, interval))
    return hub, source
