"""Data sets for the benchmarks: the same global names for every target.

A data set of N services holds svc0..svc{N-1} in namespace `default`, each with one IPv4 and one
IPv6 address in the node's own cluster (so every server gives the same one-record answer):

    svcK.default.svc.global  A     10.96.x.y      (x.y = K)
    svcK.default.svc.global  AAAA  fd00:96::K

The "100v4" manifest holds the same names with the IPv4 address only (AAAA: a NODATA hit).

Written as a GlobalService manifest (fabdns), a `global` zone file (Knot DNS), local-data lines
(unbound) and bpftool batch commands (the reference responder, A only). Query files for kxdpgun
("name type [E]") and dnsperf ("name type") pick from those names; misses are `nxsvcK.default.
svc.global`, absent from every server (NXDOMAIN).

The sync-scale sets have 3 endpoints per service in 3 clusters (the node is in the first).
"""
import json
import os
import random

ZONE = "global"
NODE = {"cluster": "edge", "zone": "edge", "region": "bench"}


def v4(k, base=96):
    return "10.%d.%d.%d" % (base, (k >> 8) & 255, k & 255) if k < 65536 else \
        "10.%d.%d.%d" % (base + (k >> 16), (k >> 8) & 255, k & 255)


def v6(k):
    return "fd00:96::%x" % k


def name(k):
    return "svc%d.default.svc.%s" % (k, ZONE)


def manifest_doc(k, endpoints):
    lines = [
        "apiVersion: dns.fabedge.io/v1alpha1",
        "kind: GlobalService",
        "metadata:",
        "  name: svc%d" % k,
        "  namespace: default",
        "spec:",
        "  type: ClusterIP",
        "  ports:",
        "    - name: http",
        "      protocol: TCP",
        "      port: 80",
        "  endpoints:",
    ]
    for addrs, cluster, zone, region in endpoints:
        lines.append("    - addresses: [%s]" % ", ".join('"%s"' % a for a in addrs))
        lines.append("      cluster: %s" % cluster)
        lines.append("      zone: %s" % zone)
        lines.append("      region: %s" % region)
    return "\n".join(lines) + "\n"


def bench_endpoints(k):
    return [([v4(k), v6(k)], NODE["cluster"], NODE["zone"], NODE["region"])]


def v4_endpoints(k):
    """IPv4 only: an AAAA query for these names is a NODATA hit."""
    return [([v4(k)], NODE["cluster"], NODE["zone"], NODE["region"])]


def scale_endpoints(k, changed=None):
    """Three endpoints (own cluster first); `changed` replaces the own cluster's address."""
    own = changed if changed else v4(k)
    return [
        ([own], NODE["cluster"], NODE["zone"], NODE["region"]),
        ([v4(k, 160)], "hub", "central", "core"),
        ([v4(k, 200)], "edge2", "edge2", "bench"),
    ]


def write_manifests(path, n, endpoints=bench_endpoints, changed=None):
    """One multi-document YAML file; written to a temporary name and renamed over `path`
    (what an editor or a ConfigMap update does), so the daemon never reads half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for k in range(n):
            if k:
                f.write("---\n")
            if endpoints is scale_endpoints:
                f.write(manifest_doc(k, scale_endpoints(k, changed.get(k) if changed else None)))
            else:
                f.write(manifest_doc(k, endpoints(k)))
    os.replace(tmp, path)


def hub_json(path, n, changed=None):
    """The same services as the hub API's JSON array (for tests/standins/hub.py)."""
    out = []
    for k in range(n):
        eps = []
        for addrs, cluster, zone, region in scale_endpoints(k, changed.get(k) if changed else None):
            eps.append({"addresses": addrs, "cluster": cluster, "zone": zone, "region": region})
        out.append({
            "apiVersion": "dns.fabedge.io/v1alpha1",
            "kind": "GlobalService",
            "metadata": {"name": "svc%d" % k, "namespace": "default",
                         "resourceVersion": str(1 + (1 if changed and k in changed else 0))},
            "spec": {"type": "ClusterIP",
                     "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
                     "endpoints": eps},
        })
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.replace(tmp, path)


def write_zone(path, n, ttl):
    with open(path, "w") as f:
        f.write("$ORIGIN %s.\n$TTL %d\n" % (ZONE, ttl))
        f.write("@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 %d\n" % (ZONE, ZONE, ttl))
        f.write("@ NS ns.%s.\nns A 198.18.0.1\n" % ZONE)
        for k in range(n):
            f.write("svc%d.default.svc A %s\n" % (k, v4(k)))
            f.write("svc%d.default.svc AAAA %s\n" % (k, v6(k)))


def write_unbound_data(path, n, ttl):
    with open(path, "w") as f:
        f.write('  local-zone: "%s." static\n' % ZONE)
        f.write('  local-data: "%s. %d IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 %d"\n'
                % (ZONE, ttl, ZONE, ZONE, ttl))
        for k in range(n):
            f.write('  local-data: "%s. %d IN A %s"\n' % (name(k), ttl, v4(k)))
            f.write('  local-data: "%s. %d IN AAAA %s"\n' % (name(k), ttl, v6(k)))


def wire(dotted):
    b = b""
    for label in dotted.split("."):
        b += bytes([len(label)]) + label.encode()
    return b + b"\0"


def write_ref_batch(path, n, map_pin, ttl):
    with open(path, "w") as f:
        for k in range(n):
            key = wire(name(k)).ljust(256, b"\0")
            val = bytes(int(x) for x in v4(k).split(".")) + ttl.to_bytes(4, "little")
            f.write("map update pinned %s key hex %s value hex %s\n"
                    % (map_pin, " ".join("%02x" % c for c in key),
                       " ".join("%02x" % c for c in val)))


def write_queries(path, names_and_types, edns=False):
    with open(path, "w") as f:
        for nm, t in names_and_types:
            f.write("%s %s%s\n" % (nm, t, " E" if edns else ""))


def query_sets(n, seed=1):
    """Query mixes over a data set of n names: {mix: (list of (name, type), edns)}."""
    rnd = random.Random(seed)
    hits = [(name(k), "A") for k in range(n)]
    rnd.shuffle(hits)
    mixes = {
        "A": (hits, False),
        "A+EDNS": (hits, True),
        "AAAA": ([(nm, "AAAA") for nm, _ in hits], False),
    }
    mix = []
    size = max(1000, n)
    for i in range(size):
        if i % 10 == 9:
            mix.append(("nxsvc%d.default.svc.%s" % (rnd.randrange(1 << 20), ZONE), "A"))
        else:
            mix.append(hits[rnd.randrange(n)])
    mixes["90/10 miss"] = (mix, False)
    return mixes
