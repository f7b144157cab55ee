"""The Debian package: what `make deb` built, checked as a user gets it.

`make package-check` builds the deb and passes it in POSTERN_DEB; alone,
this file builds it with `make deb`.  Each check prints one line with its
time.  The install tests need root (CI runs as root): the package goes
into a throw-away overlay of this machine's root, so the Postfix installed
here is neither removed nor stopped; throwaway_root.py installs, runs the
server as the unit would and purges, nspawn_root.py boots the overlay
with systemd-nspawn and runs the installed unit itself.
"""
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MAX_EXPOSURE = 2.0


def makefile_var(name):
    m = re.search(rf"^{name}\s*:?=\s*(.*)$", (REPO / "Makefile").read_text(),
                  re.M)
    return m.group(1).strip()


VERSION = makefile_var("VERSION")
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True, check=True).stdout.strip()


def report(what, t0, detail="ok"):
    print(f"\npackage: {what}: {detail} ({time.monotonic() - t0:.1f} s)",
          end="")


@pytest.fixture(scope="module")
def deb():
    path = os.environ.get("POSTERN_DEB")
    if not path:
        subprocess.run(["make", "--no-print-directory", "deb"], cwd=REPO,
                       check=True, capture_output=True)
        path = REPO / "build" / f"postern_{VERSION}_{ARCH}.deb"
    path = Path(path)
    assert path.name == f"postern_{VERSION}_{ARCH}.deb"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def members(deb):
    """name -> TarInfo of the data archive, names without the leading ./"""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          check=True, capture_output=True).stdout
    tar = tarfile.open(fileobj=io.BytesIO(data))
    out = {}
    for ti in tar.getmembers():
        name = ti.name[2:] if ti.name.startswith("./") else ti.name
        if name:
            f = tar.extractfile(ti) if ti.isfile() else None
            out[name.rstrip("/")] = (ti, f.read() if f else None)
    return out


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    d = tmp_path_factory.mktemp("deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(d)], check=True)
    return d


def unit_path(members):
    units = [n for n in members if n.endswith("systemd/system/postern.service")]
    assert len(units) == 1, units
    return units[0]


def test_control_fields(deb):
    t0 = time.monotonic()
    f = {}
    for field in ("Package", "Version", "Architecture", "Section", "Provides",
                  "Conflicts", "Replaces", "Depends", "Maintainer"):
        f[field] = subprocess.run(["dpkg-deb", "-f", str(deb), field],
                                  check=True, capture_output=True,
                                  text=True).stdout.strip()
    assert f["Package"] == "postern"
    assert f["Version"] == VERSION
    assert f["Architecture"] == ARCH
    assert f["Section"] == "mail"
    for rel in ("Provides", "Conflicts", "Replaces"):
        assert f[rel] == "mail-transport-agent", (rel, f[rel])
    depends = {d.split()[0] for d in f["Depends"].split(", ")}
    # the postinst's tools, and the libraries dpkg-shlibdeps found
    assert {"adduser", "openssl", "libc6"} <= depends, depends
    for lib in ("libssl", "libevent", "libsqlite3", "libc-ares"):
        assert any(d.startswith(lib) for d in depends), (lib, depends)
    assert f["Maintainer"]
    ctl = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"],
                         check=True, capture_output=True, text=True).stdout
    assert sorted(ctl.split()) == ["/etc/postern/forwards",
                                   "/etc/postern/postern.conf",
                                   "/etc/postern/users"]
    postinst = subprocess.run(["dpkg-deb", "-I", str(deb), "postinst"],
                              check=True, capture_output=True,
                              text=True).stdout
    assert "adduser --system --group" in postinst
    assert "deb-systemd-helper enable 'postern.service'" in postinst
    report("control fields and conffiles", t0,
           f"ok, {f['Package']} {f['Version']} {f['Architecture']}, "
           f"Provides/Conflicts/Replaces: mail-transport-agent")


def test_file_list(members):
    t0 = time.monotonic()
    files = {n: ti for n, (ti, _) in members.items() if not ti.isdir()}
    man = {f"usr/share/man/man{p.suffix[1:]}/{p.name}.gz"
           for p in (REPO / "docs" / "man").iterdir()
           if re.fullmatch(r"\.[1-8]", p.suffix)}
    expected = {
        "usr/sbin/postern", "usr/sbin/sendmail", "usr/lib/sendmail",
        "etc/postern/postern.conf", "etc/postern/users",
        "etc/postern/forwards", unit_path(members),
        "usr/share/man/man8/sendmail.8.gz",
        "usr/share/doc/postern/copyright", "usr/share/doc/postern/changelog.gz",
    } | man
    assert set(files) == expected, (
        f"missing: {sorted(expected - set(files))}, "
        f"unexpected: {sorted(set(files) - expected)}")
    assert files["usr/sbin/postern"].mode & 0o7777 == 0o755
    assert files["usr/sbin/sendmail"].linkname == "postern"
    assert files["usr/lib/sendmail"].linkname == "../sbin/sendmail"
    assert files["usr/share/man/man8/sendmail.8.gz"].linkname == \
        "../man1/postern-send.1.gz"
    for n, ti in files.items():
        assert (ti.uname, ti.gname) == ("root", "root"), n
    # gzip -9n: no file name, no time stamp, maximum compression
    for n in man:
        data = members[n][1]
        assert data[:2] == b"\x1f\x8b", n
        assert data[3] & 0x08 == 0 and data[4:8] == b"\0\0\0\0", n
        assert data[8] == 2, n
        source = (REPO / "docs" / "man" / Path(n).name[:-3]).read_bytes()
        assert gzip.decompress(data) == source, n
    # the installed binary reads /etc/postern/postern.conf without -c
    assert b"/etc/postern/postern.conf" in members["usr/sbin/postern"][1]
    report("file list", t0, f"ok, {len(files)} files, {len(man)} man pages "
           "gzip -9n, sendmail links")


def test_lintian(deb):
    t0 = time.monotonic()
    p = subprocess.run(["lintian", "--allow-root", str(deb)],
                       capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    warnings = [ln for ln in lines if ln.startswith("W:")]
    assert not errors, "\n".join(lines) + p.stderr
    assert p.returncode == 0, p.stdout + p.stderr
    report("lintian", t0, f"ok, 0 errors, {len(warnings)} warnings"
           + "".join(f"\n  {w}" for w in warnings))


def test_unit_security(members, unpacked):
    t0 = time.monotonic()
    unit = unpacked / unit_path(members)
    text = unit.read_text()
    for line in ("Type=notify",
                 "ExecStart=/usr/sbin/postern serve -c /etc/postern/postern.conf",
                 "ExecReload=/usr/sbin/postern ctl reload -c "
                 "/etc/postern/postern.conf",
                 "Restart=on-failure", "User=postern",
                 "ProtectSystem=strict", "SyslogIdentifier=postern"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    # every directory the config writes is writable under ProtectSystem
    conf = (unpacked / "etc/postern/postern.conf").read_text()
    for d in ("/var/spool/postern", "/var/mail/vhosts"):
        assert d in conf and re.search(rf"^ReadWritePaths=.*{d}", text, re.M)
    assert "/var/lib/postern/" in conf and "StateDirectory=postern" in text
    assert "/run/postern/" in conf and "RuntimeDirectory=postern" in text
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        str(unit)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for postern.service: ([0-9.]+)",
                  p.stdout)
    assert m, p.stdout + p.stderr
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, p.stdout
    report("unit exposure", t0, f"ok, {exposure} (at most {MAX_EXPOSURE}; "
           "systemd-analyze security --offline=yes)")


def test_installed_config_check(members, unpacked, tmp_path):
    """`postern check` on the installed default config, as it stands in
    the package: its absolute paths are rewritten to the unpacked tree,
    and the certificate the postinst would make is made the same way."""
    t0 = time.monotonic()
    etc = unpacked / "etc/postern"
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                    "-subj", "/CN=mx.example.test", "-keyout",
                    str(tls / "key.pem"), "-out", str(tls / "cert.pem")],
                   check=True, capture_output=True)
    text = (etc / "postern.conf").read_text()
    text = text.replace("/etc/postern/tls/", f"{tls}/")
    text = text.replace("/etc/postern/", f"{etc}/")
    for d in ("/var/spool/postern", "/var/lib/postern", "/var/mail/vhosts",
              "/run/postern"):
        text = text.replace(d, str(tmp_path) + d)
    for line in text.splitlines():
        value = line.split(";")[0]
        assert not re.search(r"(^|[\s:=,])/(etc|var|run)/", value), line
    conf = tmp_path / "postern.conf"
    conf.write_text(text)
    p = subprocess.run([str(unpacked / "usr/sbin/postern"), "check", "-c",
                        str(conf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "listening on 6 addresses" in p.stdout, p.stdout
    report("postern check (installed config, paths into the unpacked deb)",
           t0, "ok")


needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the throw-away root needs root (namespaces, overlayfs, chroot)")


@pytest.fixture(scope="module")
def installed(deb):
    """The facts throwaway_root.py gathered: one install, serve and purge
    for the tests below, each checking one part."""
    t0 = time.monotonic()
    work = REPO / "build" / "pkgroot"
    work.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--net",
                        "--propagation", "private", "/usr/bin/python3",
                        str(HERE / "throwaway_root.py"), str(deb), str(work)],
                       capture_output=True, text=True, timeout=300)
    assert p.stdout.strip(), p.stderr
    f = json.loads(p.stdout)
    assert f["install"][0] == 0, f["install"][1]
    report("install, serve and purge in a throw-away root", t0,
           "done, checks follow")
    return f


@needs_root
def test_installed_layout(installed):
    t0 = time.monotonic()
    f = installed
    _, _, uid, _, _, home, shell = f["passwd"].split(":")
    # the postinst's adduser, or the one `make test` made (service-user)
    assert int(uid) < 1000 and home in ("/var/lib/postern", "/nonexistent") \
        and shell == "/usr/sbin/nologin", f["passwd"]
    st = f["stat"]
    for d in ("/var/spool/postern", "/var/lib/postern", "/var/mail/vhosts"):
        owner, mode = st[d].split()
        assert owner == "postern:postern" and int(mode, 8) & 0o777 == 0o750, \
            (d, st[d])
    assert st["/etc/postern/users"] == "root:postern 640"
    assert st["/etc/postern/tls/key.pem"] == "root:postern 640"
    assert st["/etc/postern/tls/cert.pem"] == "root:root 644"
    assert st["/etc/postern/postern.conf"] == "root:root 644"
    assert f["enabled"].endswith("systemd/system/postern.service")
    assert len(f["conffiles"].split("\n")) == 3, f["conffiles"]
    assert f["check"][0] == 0, f["check"][1]
    assert f["sendmail"] == "/usr/sbin/postern"
    assert f["verify"][0] == 0 and f["verify"][1] == "", f["verify"]
    report("installed: user, directories, certificate, unit enabled, "
           "postern check (no -c), systemd-analyze verify", t0)


@needs_root
def test_served_as_the_unit_runs_it(installed):
    """User postern with CAP_NET_BIND_SERVICE only: READY=1, the six
    listeners of the installed config, no capability left, seccomp."""
    t0 = time.monotonic()
    f = installed
    log = f.get("serve_log", "")
    assert f["serve_exited_early"] is None, log
    assert any("READY=1" in m for m in f["notify_after_start"]), \
        ("no READY=1 on NOTIFY_SOCKET", f["notify_after_start"], log)
    for addr, b in f["banners"].items():
        assert b.startswith("220 "), (addr, b, log)
    assert f["smtps_connect"] is True, f["smtps_connect"]
    _, _, uid, gid = f["passwd"].split(":")[:4]
    s = f["serve_status"]
    assert s["Uid"].split() == [uid] * 4 and s["Gid"].split() == [gid] * 4, s
    for cap in ("CapEff", "CapPrm", "CapAmb"):
        assert int(s[cap], 16) == 0, (cap, s)
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2", s
    assert f["sent"] is True, (f["sent"], log)
    assert f["delivered"] and all(x == "postern:postern 600"
                                  for x in f["delivered"]), f["delivered"]
    assert all(x.startswith("postern:postern ") for x in f["spool_files"]), \
        f["spool_files"]
    assert f["ctl_reload"][0] == 0, (f["ctl_reload"], log)
    assert f["ctl_stop"][0] == 0 and f["serve_exit"] == 0, (f["ctl_stop"], log)
    assert any("STOPPING=1" in m for m in f["notify_all"]), f["notify_all"]
    report("served as the unit runs it: READY=1, 25/587/465 on v4 and v6, "
           "no capabilities, seccomp, delivered, reload, stop", t0)


@needs_root
def test_sendmail_as_root_is_delivered(installed):
    t0 = time.monotonic()
    f = installed
    assert f["sendmail_run"][0] == 0, f["sendmail_run"]
    assert f["sendmail_delivered"], f.get("serve_log", "")[-1500:]
    report("sendmail as root: delivered by the server running as postern", t0)


@needs_root
def test_purge(installed):
    t0 = time.monotonic()
    f = installed
    # purge: config, queue, state and certificate go; mail and user stay
    assert f["purge"][0] == 0, f["purge"][1]
    assert f["after_purge"] == {"/etc/postern": False,
                                "/var/spool/postern": False,
                                "/var/lib/postern": False,
                                "/var/mail/vhosts": True,
                                "/usr/sbin/postern": False}, f["after_purge"]
    assert f["passwd_after_purge"].startswith("postern:")
    report("purge: config, queue, state, certificate gone; mail kept", t0)


@pytest.fixture(scope="module")
def under_systemd(deb):
    """The facts nspawn_root.py gathered: the installed unit started,
    used, reloaded and stopped by a real systemd in a throw-away root."""
    t0 = time.monotonic()
    assert shutil.which("systemd-nspawn"), \
        "systemd-nspawn missing: make deps-test installs systemd-container"
    work = REPO / "build" / "nsproot"
    work.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                        "/usr/bin/python3", str(HERE / "nspawn_root.py"),
                        str(deb), str(work)],
                       capture_output=True, text=True, timeout=300)
    assert p.stdout.strip(), p.stderr
    f = json.loads(p.stdout)
    assert f["install"][0] == 0, f["install"][1]
    assert "start" in f, f.get("nspawn")
    report("boot the throw-away root with systemd-nspawn", t0,
           "done, checks follow")
    return f


@needs_root
def test_unit_under_systemd(under_systemd, installed):
    """Type=notify: active only after READY=1; the sandbox lets postern
    bind, queue, deliver into /var/mail/vhosts and answer on its control
    socket; reload and stop work through systemctl."""
    t0 = time.monotonic()
    f = under_systemd
    log = f["journal"]
    assert f["start"]["ActiveState"] == "active" and \
        f["start"]["Result"] == "success", (f["start"], log)
    _, _, uid, gid = installed["passwd"].split(":")[:4]
    s = f["status"]
    assert s["Uid"].split() == [uid] * 4 and s["Gid"].split() == [gid] * 4, s
    for cap in ("CapEff", "CapPrm", "CapAmb"):
        assert int(s[cap], 16) == 0, (cap, s)
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2", s
    assert f["sent"] is True, (f["sent"], log)
    assert f["delivered"] == [f"{uid} 0o600"], (f["delivered"], log)
    assert f["reload"][0] == 0, (f["reload"], log)
    assert f["after_reload"] == {"ActiveState": "active",
                                 "MainPID": f["start"]["MainPID"]}, log
    assert "ev=reload" in log, log
    assert f["stop"][0] == 0, f["stop"]
    assert f["after_stop"] == {"ActiveState": "inactive", "Result": "success",
                               "ExecMainStatus": "0"}, (f["after_stop"], log)
    m = re.search(r"exposure level for postern.service: ([0-9.]+)",
                  f["security"])
    assert m and float(m.group(1)) <= MAX_EXPOSURE, f["security"]
    report("the unit under systemd: READY=1, user postern, no capabilities, "
           f"seccomp, delivered, reload, stop; exposure {m.group(1)}", t0)
