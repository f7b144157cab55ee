"""Shared by every pytest directory under tests/.

Run as root, the servers under test drop to the service user, who must be
able to walk to their directories.  pytest keeps its temporary
directories under /tmp/pytest-of-root, and every pytest session that
starts sets that directory back to 0700, including one started in
parallel.  A root session therefore gets a base directory of its own,
which nothing else touches.
"""
import glob
import os
import shutil
import tempfile
import time

KEEP_SECONDS = 6 * 3600  # older sessions' directories are removed


def pytest_configure(config):
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
