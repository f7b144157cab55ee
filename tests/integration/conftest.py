"""Fixtures for the integration tests: a real postern per test.

`server` is a started server with the default test config (domain
example.test, users postmaster/alice/bob, forwards carol -> bob and
dave -> refused); `make_server(**sections)` starts one with overrides, e.g.
make_server(server={"max_recipients": 2}).  Every server is stopped with
SIGTERM at teardown and must exit 0 without a sanitizer report; its log is
printed, so a failing test shows it.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

import subprocess  # noqa: E402

from postern_test import AUTH_PASSWORD, Server, make_cert  # noqa: E402


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A directory with a self-signed cert.pem/key.pem for
    mx.example.test, and AUTH_PASSWORD hashed for a users file."""
    d = tmp_path_factory.mktemp("tls")
    make_cert(d, days=400)
    hashed = subprocess.run(["openssl", "passwd", "-6", AUTH_PASSWORD],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    return d, hashed


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def make(start=True, **kw):
        srv = Server(tmp_path / f"srv{len(servers)}", **kw)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    errors = []
    for srv in servers:
        print(f"--- log of {srv.dir}:\n{srv.log_tail(200)}")
        if srv.running():
            try:
                srv.stop()
            except AssertionError as e:
                errors.append(str(e))
        elif srv.proc is not None:
            srv.assert_no_sanitizer_report()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def server(make_server):
    return make_server()
