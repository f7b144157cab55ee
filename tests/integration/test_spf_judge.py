"""SPF judged twice: every case of spf_cases.py (RFC 7208, section by
section) is served by one dnsmasq on loopback, then checked

  (a) by pyspf (Debian python3-spf), an implementation written apart
      from ours: it must give the RFC's result, so the case table itself
      is checked against a second reading of the RFC, and
  (b) by postern, through `postern auth check --ip --helo --from`: the
      word after "spf=" in the Authentication-Results it prints must be
      the same.

Names under slow.test are forwarded to a UDP socket that takes queries
and answers none; those few cases wait out a 2 s timeout.  Both judges
run all cases at once in threads (module fixtures), so the module takes
about as long as its slowest case, not the sum.
"""
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from postern_test import POSTERN, free_port, poll

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spf_cases import CASES, SLOW, dnsmasq_args, resolved  # noqa: E402

pytestmark = [
    pytest.mark.xdist_group("spf_judge"),
    # pyspf 2.0.14 calls dns.resolver.query(), deprecated in dnspython 2
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq") else None)
TIMEOUT = 2  # seconds, for the slow.test cases
WORKERS = 16
RECEIVER = "mx.example.test"
MESSAGE = (b"From: a@example.test\r\nTo: b@example.test\r\n"
           b"Subject: spf\r\nMessage-ID: <spf@example.test>\r\n\r\nhi\r\n")
SPF_WORD = re.compile(r"\bspf=([a-z]+)")

IDS = [c["id"] for c in CASES]
assert len(IDS) == len(set(IDS)), "case ids must be unique"


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    """The port of a dnsmasq serving every case's records."""
    if DNSMASQ is None:
        pytest.skip("dnsmasq is not installed (Debian dnsmasq-base)")
    d = tmp_path_factory.mktemp("spf_judge")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # takes queries, answers none
    port = free_port()
    p = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", f"--port={port}",
         "--listen-address=127.0.0.1", "--bind-interfaces",
         f"--pid-file={d}/dnsmasq.pid", "--local=/test/",
         "--local=/2.0.192.in-addr.arpa/",
         f"--server=/{SLOW}/127.0.0.1#{sink.getsockname()[1]}"]
        + dnsmasq_args(CASES),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        if p.poll() is not None:
            raise AssertionError("dnsmasq exited: "
                                 + p.stderr.read().decode(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="dnsmasq to listen")
    yield port
    p.terminate()
    p.wait(10)
    sink.close()


def run_all(fn, cases):
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
        return dict(zip((c["id"] for c in cases), ex.map(fn, cases)))


@pytest.fixture(scope="module")
def pyspf_results(zone):
    """case id -> pyspf's result (or the exception it raised)."""
    import dns.resolver
    spf = pytest.importorskip("spf")
    # pyspf 2.0.14 resolves through dns.resolver.query(), that is the
    # module's default resolver: point it at our dnsmasq.
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = zone
    r.timeout = r.lifetime = TIMEOUT
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = r

    def judge(c):
        c = resolved(c)
        try:
            # querytime=0: the per-lookup timeout applies, not 20 s overall
            q = spf.query(i=c["ip"], s=c["sender"], h=c["helo"],
                          receiver=RECEIVER, timeout=TIMEOUT, querytime=0)
            return q.check()[0]
        except Exception as e:  # reported by the test of that case
            return f"{type(e).__name__}: {e}"
    try:
        yield run_all(judge, CASES)
    finally:
        dns.resolver.default_resolver = saved


@pytest.fixture(scope="module")
def postern_results(zone, tmp_path_factory):
    """case id -> (postern's spf= word or None, its output)."""
    d = tmp_path_factory.mktemp("spf_postern")
    conf = d / "postern.conf"
    conf.write_text(
        f"[server]\nhostname = {RECEIVER}\n"
        f"[dns]\nservers = 127.0.0.1:{zone}\ntimeout = {TIMEOUT}\n"
        "[auth]\nspf = on\n")

    def judge(c):
        c = resolved(c)
        argv = [POSTERN, "auth", "check", "--ip", c["ip"], "--helo",
                c["helo"]]
        if c["sender"]:
            argv += ["--from", c["sender"]]
        argv += ["-c", str(conf)]
        try:
            p = subprocess.run(argv, input=MESSAGE, capture_output=True,
                               timeout=10 * TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{argv}: {e}"
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        m = SPF_WORD.search(out)
        return (m.group(1) if m else None,
                f"{' '.join(argv)}\nexit {p.returncode}\nstdout: {out}\n"
                f"stderr: {err}")
    if not os.access(POSTERN, os.X_OK):
        pytest.fail(f"no postern binary at {POSTERN} (set POSTERN)")
    return run_all(judge, CASES)


def describe(c):
    return f"{c['id']} (RFC 7208 {c['rfc']})"


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_pyspf_gives_the_rfc_result(c, pyspf_results):
    got = pyspf_results[c["id"]]
    if c.get("pyspf_deviates"):
        if got != c["result"]:
            pytest.xfail(c["pyspf_deviates"])
        pytest.fail(f"{describe(c)}: pyspf now agrees; drop "
                    "pyspf_deviates")
    assert got == c["result"], (
        f"{describe(c)}: pyspf says {got}, the case says {c['result']}")


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_postern_gives_the_rfc_result(c, postern_results):
    got, transcript = postern_results[c["id"]]
    assert got == c["result"], (
        f"{describe(c)}: postern says spf={got}, the case says "
        f"{c['result']}\n{transcript}")


def test_the_table_covers_enough():
    assert len(CASES) >= 60
    assert sum(1 for c in CASES if c.get("timeout")) >= 3
    assert all(c["result"] in ("pass", "fail", "softfail", "neutral",
                               "none", "temperror", "permerror")
               for c in CASES)
