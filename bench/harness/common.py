"""What every part of the benchmark harness shares: its addresses, errors, log and command runner
(on top of tests/pylib/plumbing.py, the process and namespace plumbing shared with tests/e2e)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "pylib"))
import plumbing  # noqa: E402,F401  (re-exported to the harness's modules)

SRV_IP = "198.18.0.1"
CLI_IP = "198.18.0.2"
PORT = 53
# fabdnsd's metrics endpoint inside the server namespace (templates/fabdns.yaml.in).
METRICS = ("127.0.0.1", 9153)


class HarnessError(RuntimeError):
    pass


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, check=True, timeout=60, input_text=None):
    """Runs a command (bounded by `timeout`), returns stdout; raises HarnessError on failure."""
    try:
        return plumbing.run(cmd, check=check, timeout=timeout, input=input_text).stdout
    except subprocess.TimeoutExpired:
        raise HarnessError("timed out after %ss: %s" % (timeout, " ".join(cmd)))
    except plumbing.CommandError as e:
        raise HarnessError(str(e)[-4000:])
