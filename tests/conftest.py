"""Shared by every pytest directory under tests/.

Run as root, the servers under test drop to the service user, who must be
able to walk to their directories.  pytest keeps its temporary
directories under /tmp/pytest-of-root, and every pytest session that
starts sets that directory back to 0700, including one started in
parallel.  A root session therefore gets a base directory of its own,
which nothing else touches.

`make integration` runs the suites with pytest-xdist (-n N --dist
loadgroup), which hands the tests to its workers in collection order.  A
test marked `long` (it takes a minute or more on its own, e.g. testssl.sh)
goes first, so that it runs beside the short ones instead of alone at the
end; the others keep their order.

It also has `dead_port`, for the tests that need a destination where
every connection is refused.
"""
import glob
import os
import shutil
import socket
import tempfile
import time

import pytest

KEEP_SECONDS = 6 * 3600  # older sessions' directories are removed


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "long: takes a minute or more; scheduled first")
    if os.geteuid() != 0 or config.option.basetemp:
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's
        return
    base = tempfile.gettempdir()
    for old in glob.glob(os.path.join(base, "postern-pytest-*")):
        try:
            if time.time() - os.stat(old).st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    config.option.basetemp = tempfile.mkdtemp(prefix="postern-pytest-",
                                              dir=base)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
def dead_port():
    """A loopback port where nothing listens.  A port that was merely
    free a moment ago may be taken meanwhile by another worker's server
    or peer; this one stays bound (never listening) for the whole test,
    so every connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
