"""The data sets the targets serve and the query files the load generators send, generated once
per run into the state directory (from gen.py)."""
import os

import gen


class Data:
    """Generated files per data set ("100", "10k") in the state directory."""

    SIZES = {"100": 100, "10k": 10000}

    def __init__(self, state, ttl=5):
        self.dir = os.path.join(state, "data")
        os.makedirs(self.dir, exist_ok=True)
        self.ttl = ttl
        self.queries = {}
        for ds, n in self.SIZES.items():
            gen.write_manifests(self.manifest(ds), n)
            gen.write_zone(self.zone(ds), n, ttl)
            gen.write_unbound_data(self.unbound(ds), n, ttl)
            for mix, (qs, edns) in gen.query_sets(n).items():
                slug = mix.replace("/", "-").replace("+", "-").replace(" ", "-")
                kx = os.path.join(self.dir, "kx-%s-%s.txt" % (ds, slug))
                dp = os.path.join(self.dir, "dp-%s-%s.txt" % (ds, slug))
                gen.write_queries(kx, qs, edns)
                gen.write_queries(dp, qs, False)
                self.queries[(ds, mix)] = (kx, dp, edns)
        self.last = {ds: (gen.name(n - 1), gen.v4(n - 1)) for ds, n in self.SIZES.items()}
        # "100v4": the same 100 names, IPv4 only (fabdns only), so that AAAA is a NODATA hit
        gen.write_manifests(self.manifest("100v4"), self.SIZES["100"], endpoints=gen.v4_endpoints)
        for mix in ("A", "AAAA"):
            self.queries[("100v4", mix)] = self.queries[("100", mix)]
        self.last["100v4"] = self.last["100"]

    def manifest(self, ds):
        return os.path.join(self.dir, "gs-%s.yaml" % ds)

    def zone(self, ds):
        return os.path.join(self.dir, "global-%s.zone" % ds)

    def unbound(self, ds):
        return os.path.join(self.dir, "unbound-%s.conf" % ds)

    def ref_batch(self, ds, map_pin):
        path = os.path.join(self.dir, "ref-%s.batch" % ds)
        gen.write_ref_batch(path, self.SIZES[ds], map_pin, self.ttl)
        return path
