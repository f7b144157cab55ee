"""Started as root, postern binds, opens what needs root, then runs as
[server] user on every thread: no capabilities, no_new_privs, seccomp.

These read /proc/PID/task/*/status of the real server, and the owners of
the files it makes.  They need root (CI runs `make test` as root); as an
ordinary user they are skipped, and the rest of the suite runs the server
as that user.
"""
import os
import random
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from postern_test import (AS_ROOT, POSTERN, SERVICE_USER, Server, make_cert,
                          poll, send_message, service_ids)

pytestmark = pytest.mark.skipif(not AS_ROOT, reason="needs root")


def low_port():
    """A free TCP port below 1024 on 127.0.0.1 (only root may bind it)."""
    for port in random.sample(range(600, 1000), 400):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no free port below 1024")


def seccomp_expected(srv):
    """2 (a filter) unless this is a sanitizer build, which loads none."""
    return "0" if "ev=seccomp_off reason=sanitizer_build" in srv.log() \
        else "2"


def task_status(pid):
    """{tid: {field: value}} for every thread of pid."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = {}
        for line in (task / "status").read_text().splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        out[task.name] = fields
    return out


def owners(root):
    """(path, uid, gid) of root and everything below it."""
    root = Path(root)
    out = [(root, root.lstat().st_uid, root.lstat().st_gid)]
    for p in root.rglob("*"):
        st = p.lstat()
        out.append((p, st.st_uid, st.st_gid))
    return out


def test_below_1024_every_thread_runs_as_the_user_without_privileges(
        make_server):
    uid, gid = service_ids()
    srv = make_server(start=False, control={"socket": "ctl.sock"})
    srv.listen = f"127.0.0.1:{low_port()}"
    srv.port = int(srv.listen.rsplit(":", 1)[1])
    srv.write_config()
    srv.start()
    assert "ev=privileges_dropped user=postern" in srv.log()
    # Mail through it: the workers exist and have done their work.
    send_message(srv, "x@client.test", ["alice@example.test"], "Hi\r\n")
    srv.wait_messages("alice@example.test", 1)
    tasks = task_status(srv.proc.pid)
    assert len(tasks) >= 3, tasks  # the loop, the committer, delivery
    for tid, st in tasks.items():
        assert st["Uid"].split() == [str(uid)] * 4, (tid, st["Uid"])
        assert st["Gid"].split() == [str(gid)] * 4, (tid, st["Gid"])
        assert st["Groups"] == "", (tid, st["Groups"])
        assert int(st["CapEff"], 16) == 0, (tid, st["CapEff"])
        assert int(st["CapPrm"], 16) == 0, (tid, st["CapPrm"])
        assert int(st["CapAmb"], 16) == 0, (tid, st["CapAmb"])
        assert st["NoNewPrivs"] == "1", tid
        assert st["Seccomp"] == seccomp_expected(srv), tid
    # What it made is the service user's: mail, spool, the socket.
    for root in (srv.mail_root, srv.spool, srv.dir / "ctl.sock"):
        for path, u, g in owners(root):
            assert (u, g) == (uid, gid), f"{path} is {u}:{g}"
    # A second message after the drop still works end to end (RCPT checks
    # read the users table, the spool commits, the Maildir is written).
    send_message(srv, "x@client.test", ["bob@example.test"], "Again\r\n")
    srv.wait_messages("bob@example.test", 1)


def test_started_as_root_without_user_refuses_naming_the_key(make_server):
    srv = make_server(start=False, server={"user": None})
    r = subprocess.run([POSTERN, "serve", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert "[server] user" in lines[-1] and "postern" in lines[-1], r.stderr
    assert not srv.spool.exists()  # nothing made before refusing


def test_unknown_or_root_user_refused(make_server):
    for user, says in (("no-such-account-x", "no such account"),
                       ("root", "is root")):
        srv = make_server(start=False, server={"user": user})
        r = subprocess.run([POSTERN, "serve", "-c", str(srv.conf)],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 1, r.stderr
        assert says in r.stderr and "[server] user" in r.stderr, r.stderr


def test_existing_root_owned_spool_and_mail_are_given_to_the_user(
        make_server):
    uid, gid = service_ids()
    srv = make_server(start=False)
    for d in (srv.spool, srv.mail_root / "example.test" / "alice" / "new"):
        d.mkdir(parents=True)
    (srv.spool / "stray").write_bytes(b"")
    (srv.mail_root / "example.test" / "alice" / "new" / "old").write_text(
        "From: old\r\n\r\nold\r\n")
    srv.start()
    for root in (srv.spool, srv.mail_root):
        for path, u, g in owners(root):
            assert (u, g) == (uid, gid), f"{path} is {u}:{g}"
    send_message(srv, "x@client.test", ["alice@example.test"], "New\r\n")
    srv.wait_messages("alice@example.test", 2)


def test_started_as_another_user_runs_as_that_user(make_server):
    """As `make run` by an ordinary user: no drop, the same sandbox."""
    uid, gid = service_ids()
    srv = make_server(start=False)
    for d in (srv.spool, srv.mail_root):
        d.mkdir(parents=True)
        os.chown(d, uid, gid)
    os.chown(srv.dir, uid, gid)  # its control socket and var files

    def become():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    srv.start(preexec_fn=become)
    assert "ev=privileges_dropped" not in srv.log()
    assert "ev=seccomp " in srv.log() or seccomp_expected(srv) == "0"
    send_message(srv, "x@client.test", ["alice@example.test"], "Hi\r\n")
    srv.wait_messages("alice@example.test", 1)
    st = next(iter(task_status(srv.proc.pid).values()))
    assert st["Uid"].split()[1] == str(uid)
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == seccomp_expected(srv)


def _served_cert(srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((srv.host, srv.smtps_port), 10) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def test_reload_after_the_drop_reads_the_new_certificate(make_server,
                                                          tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    make_cert(tls)
    srv = make_server(start=False,
                      tls={"cert": str(tls / "cert.pem"),
                           "key": str(tls / "key.pem")})
    srv.smtps_port = low_port()
    srv.sections["server"]["smtps"] = f"127.0.0.1:{srv.smtps_port}"
    srv.write_config()
    srv.start()
    assert "ev=reload_cannot_read" not in srv.log()
    before = _served_cert(srv)
    make_cert(tls, cn="mx2.example.test")  # as root, 0640 root:postern
    r = subprocess.run([POSTERN, "ctl", "reload", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stdout + r.stderr
    poll(lambda: _served_cert(srv) != before, what="the new certificate")


def test_unreadable_key_is_named_at_start(make_server, tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    make_cert(tls)
    os.chmod(tls / "key.pem", 0o600)  # root only: read before the drop
    srv = make_server(tls={"cert": str(tls / "cert.pem"),
                           "key": str(tls / "key.pem")})
    line = [x for x in srv.log().splitlines()
            if "ev=reload_cannot_read" in x]
    assert line and "key.pem" in line[0] and SERVICE_USER in line[0]
    assert "chmod 640" in line[0]


def test_greylist_state_belongs_to_the_user(make_server):
    """The state directory (an SQLite greylist store) is the user's, and
    so is the database postern creates in it after the drop."""
    uid, gid = service_ids()
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": "sqlite:state/greylist.db"})
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@client.test>").code == 250
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 450, r
    state = srv.dir / "state"
    assert (state / "greylist.db").exists()
    for path, u, g in owners(state):
        assert (u, g) == (uid, gid), f"{path} is {u}:{g}"


def test_a_hard_link_in_the_spool_is_not_given_away(make_server, tmp_path):
    """A second name of a root file planted in the spool (by a compromised
    service user) must not make a root start chown the file."""
    secret = tmp_path / "secret"
    secret.write_text("root's\n")
    os.chmod(secret, 0o600)
    srv = make_server(start=False)
    srv.spool.mkdir(parents=True)
    os.link(secret, srv.spool / "planted")
    r = subprocess.run([POSTERN, "serve", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 1
    assert "planted has a second name" in r.stderr, r.stderr
    assert secret.stat().st_uid == 0


def test_sendmail_of_an_ordinary_user_reaches_the_server(server):
    """`sendmail` as any local user (a cron job, a web application) while
    the server runs as its own account: the maildrop takes the file
    (sticky, writable, not listable), the server reads and delivers it."""
    nobody = 65534
    maildrop = server.spool / "maildrop"
    assert maildrop.stat().st_mode & 0o7777 == 0o1733
    assert server.spool.stat().st_mode & 0o7777 == 0o711

    def become_nobody():
        os.setgroups([])
        os.setgid(nobody)
        os.setuid(nobody)
    r = subprocess.run([POSTERN, "send", "-c", str(server.conf),
                        "alice@example.test"],
                       input=b"Subject: from cron\n\nhello\n",
                       capture_output=True, timeout=30,
                       preexec_fn=become_nobody)
    assert r.returncode == 0, r.stderr
    server.wait_messages("alice@example.test", 1)
    poll(lambda: not any(p.is_file() for p in maildrop.iterdir()),
         what="the maildrop file taken")
    # Others cannot list the maildrop, nor what the spool holds.
    r = subprocess.run(["ls", str(maildrop)], capture_output=True,
                       preexec_fn=become_nobody)
    assert r.returncode != 0
