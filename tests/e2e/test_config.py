"""`fabdnsd --check-config` on real files (SPEC §1-§2): a good config prints ok and exits 0; a
bad key or value exits 2 with one line naming the key. Runs without root: nothing is loaded."""

import json
import os
import subprocess

import pytest

from conftest import EXAMPLES, FABDNSD

pytestmark = pytest.mark.unprivileged


def check(path, env=None):
    return subprocess.run([FABDNSD, "--config", str(path), "--check-config"],
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("name", ["config-suzhou.yaml", "config-beijing.yaml"])
def test_examples_are_valid(name):
    p = check(EXAMPLES / name)
    assert p.returncode == 0, p
    assert p.stdout.strip().endswith("ok"), p


def good():
    return {
        "node": {"cluster": "suzhou", "zone": "${FDNS_E2E_ZONE}", "region": "south"},
        "dns": {"listen": ["127.0.0.1:1053"]},
        "source": {"kind": "file", "file": {"path": "services.yaml"}},
        "datapath": {"attach": [{"iface": "lo", "mode": "xdp-generic"}]},
    }


BAD = [
    ("dns.ttl", lambda c: c["dns"].update(ttl=99999)),
    ("dns.tll", lambda c: c["dns"].update(tll=5)),
    ("node.cluster", lambda c: c["node"].pop("cluster")),
    ("dns.listen[0]", lambda c: c["dns"].update(listen=["127.0.0.1:99999"])),
    ("datapath.attach[0].mode", lambda c: c["datapath"]["attach"][0].update(mode="turbo")),
    ("datapath.stale_after", lambda c: c["datapath"].update(stale_after="soon")),
    ("source.kind", lambda c: c["source"].update(kind="ftp")),
    ("node.region", lambda c: c["node"].update(region="${FDNS_E2E_UNSET}")),
]


def test_a_good_config_with_an_env_variable_is_ok(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(json.dumps(good()))
    p = check(path, {"FDNS_E2E_ZONE": "suzhou"})
    assert p.returncode == 0 and "ok" in p.stdout, p


@pytest.mark.parametrize("key,mutate", BAD, ids=[k for k, _ in BAD])
def test_a_bad_config_exits_2_with_one_line_naming_the_key(tmp_path, key, mutate):
    cfg = good()
    mutate(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    p = check(path, {"FDNS_E2E_ZONE": "suzhou"})
    assert p.returncode == 2, p
    lines = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert key in lines[0], lines


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("node:\n  cluster: suzhou\ndns: [\n")
    p = check(path)
    assert p.returncode == 2, p
    lines = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "line" in lines[0], lines


def test_missing_file_exits_2(tmp_path):
    p = check(tmp_path / "nope.yaml")
    assert p.returncode == 2, p

