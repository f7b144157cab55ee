"""A build on a machine without the build packages stops at once with the
line to run (`make deps` / apt-get install), before any compiler runs.

The machine is made to look bare with a pkg-config and a dpkg on PATH
that find nothing, or with PKG_CONFIG_LIBDIR pointing nowhere; the build
goes into a fresh BUILD directory, so the real build/ is not touched.
"""
import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def deb_build_list():
    text = (REPO / "Makefile").read_text()
    m = re.search(r"^DEB_BUILD\s*:=((?:.*\\\n)*.*)$", text, re.M)
    return m.group(1).replace("\\\n", " ").split()


def make(build, env, target="build"):
    t0 = time.monotonic()
    p = subprocess.run(["make", "--no-print-directory", f"BUILD={build}",
                        target], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    return p, time.monotonic() - t0


def fake_tools(d, names):
    d.mkdir()
    for n in names:
        (d / n).write_text("#!/bin/sh\nexit 1\n")
        (d / n).chmod(0o755)
    return d


def test_bare_machine_gets_the_apt_line(tmp_path):
    fake = fake_tools(tmp_path / "bin", ["pkg-config", "dpkg"])
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    build = tmp_path / "b"
    p, secs = make(build, env)
    assert p.returncode != 0
    err = p.stderr
    line = next(ln for ln in err.splitlines() if "cannot build" in ln)
    assert "run: make deps" in line, err
    apt = line.split("sudo apt-get install", 1)[1].split()
    expected = [x for x in deb_build_list()
                if x not in ("build-essential", "openssl", "libcmocka-dev")]
    assert apt == expected, (apt, expected)
    # stopped before the compiler: nothing compiled, no header error
    assert "event2/event.h" not in err and not (build / "obj").exists(), err
    assert not re.search(r"^(cc|gcc|clang) ", p.stdout, re.M), p.stdout
    assert secs < 10, secs
    print(f"\npackage: make build without packages: stops with the "
          f"apt-get line ({secs:.1f} s)", end="")


def test_missing_module_named_when_packages_look_installed(tmp_path):
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path / "none"))
    build = tmp_path / "b"
    p, _ = make(build, env)
    assert p.returncode != 0
    assert "pkg-config finds no libevent" in p.stderr, p.stderr
    assert not (build / "obj").exists()


def test_unit_tests_need_cmocka(tmp_path):
    """The library may be there and cmocka not: the unit tests' build
    says so before compiling them."""
    build = tmp_path / "b"
    fake = tmp_path / "pc"
    fake.mkdir()
    real = subprocess.run(["sh", "-c", "command -v pkg-config"],
                          capture_output=True, text=True).stdout.strip()
    (fake / "pkg-config").write_text(
        f'#!/bin/sh\nfor a; do [ "$a" = cmocka ] && exit 1; done\n'
        f'exec {real} "$@"\n')
    (fake / "pkg-config").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    p, secs = make(build, env, "unit")
    assert p.returncode != 0
    assert not (build / "obj").exists() and secs < 10, (secs, p.stdout)
    # libcmocka-dev is installed here, so the module is what is named
    assert "pkg-config finds no cmocka" in p.stderr, p.stderr
