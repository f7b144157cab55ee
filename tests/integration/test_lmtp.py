"""Local mail handed to an LMTP server (`[local] lmtp = unix:PATH`, RFC
2033; docs/design/outbound.md route `lmtp`): a real Dovecot LMTP
(dovecot-lmtpd from Debian) started by the test with a private config
stores alice's mail, read back from Dovecot's Maildir; a user Dovecot
does not know is refused at RCPT and only that recipient bounces; and a
scripted LMTP peer (tests/pylib/smtp_peer.py) checks LHLO and the
per-recipient replies after the data (a 4xx for one recipient retries
that one only, a 5xx bounces that one only).
"""
import grp
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from postern_test import poll
from smtp_peer import Dsn, Peer, message, queue_list, read_message

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"
HAVE_DOVECOT = os.access(DOVECOT, os.X_OK) and os.access(DOVECOT_LMTP,
                                                         os.X_OK)
T = 40.0
POSTMASTER = "postmaster@example.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"


class Dovecot:
    """A private Dovecot serving only LMTP on a unix socket in a scratch
    directory under /tmp (Dovecot's mail processes must reach it, and
    pytest's tmp_path is private to the user running the tests)."""

    def __init__(self, users):
        self.dir = Path(tempfile.mkdtemp(prefix="postern-lmtp-"))
        os.chmod(self.dir, 0o755)
        self.socket = self.dir / "lmtp"
        self.log = self.dir / "dovecot.log"
        if os.getuid() == 0:
            pw = pwd.getpwnam("nobody")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            internal = ""
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(self.uid).pw_name
            internal = (f"default_internal_user = {me}\n"
                        f"default_login_user = {me}\n"
                        f"default_internal_group = "
                        f"{grp.getgrgid(self.gid).gr_name}\n")
        home = self.dir / "home"
        home.mkdir()
        lines = []
        for u in users:
            h = home / u.split("@")[0]
            h.mkdir()
            os.chown(h, self.uid, self.gid)
            lines.append(f"{u}::{self.uid}:{self.gid}::{h}::")
        (self.dir / "users").write_text("\n".join(lines) + "\n")
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(
            "protocols = lmtp\nssl = no\n"
            f"base_dir = {self.dir / 'run'}\n"
            f"state_dir = {self.dir / 'state'}\n"
            f"log_path = {self.log}\n"
            "mail_location = maildir:~/Maildir\n"
            "first_valid_uid = 0\nfirst_valid_gid = 0\n"
            f"postmaster_address = {POSTMASTER}\n"
            "hostname = lmtp.example.test\n" + internal +
            f"passdb {{\n  driver = passwd-file\n  args = "
            f"{self.dir / 'users'}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = "
            f"{self.dir / 'users'}\n}}\n"
            f"service lmtp {{\n  unix_listener {self.socket} {{\n"
            "    mode = 0666\n  }\n}\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited: " +
                                     self.proc.stderr.read().decode())
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(self.socket))
                s.close()
                return True
            except OSError:
                return False
        poll(up, what="dovecot's LMTP socket")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self, user):
        md = self.dir / "home" / user.split("@")[0] / "Maildir"
        return sorted(p for sub in ("new", "cur")
                      if (md / sub).is_dir() for p in (md / sub).iterdir())

    def wait_messages(self, user, n, timeout=T):
        poll(lambda: len(self.messages(user)) >= n, timeout,
             what=f"{n} messages for {user} in Dovecot's Maildir")
        files = self.messages(user)
        assert len(files) == n, files
        return files

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def dovecot():
    started = []

    def make(users=(ALICE, POSTMASTER)):
        d = Dovecot(users).start()
        started.append(d)
        return d
    yield make
    for d in started:
        print(f"--- dovecot log:\n{d.log_text()}")
        d.stop()


def lmtp_server(make_server, target):
    return make_server(local={"lmtp": f"unix:{target}"},
                       delivery={"retry": "1,1,2", "command_timeout": 30,
                                 "data_timeout": 30})


def send_message(srv, sender, rcpts, msg):
    """One message over the plain port (smtplib dot-stuffs it)."""
    with smtplib.SMTP(srv.host, srv.port, timeout=15) as s:
        s.ehlo("client.test")
        assert s.sendmail(sender, rcpts, msg) == {}


def wait_queue_empty(srv):
    poll(lambda: queue_list(srv) == {}, T, interval=0.2,
         what="the queue to be empty")


@pytest.mark.skipif(not HAVE_DOVECOT, reason="dovecot-lmtpd not installed")
def test_local_mail_is_stored_by_dovecot_lmtp(make_server, dovecot):
    d = dovecot()
    srv = lmtp_server(make_server, d.socket)
    bodies = [b"plain body\r\n",
              b".leading dot\r\n..two dots\r\n.\r\nafter\r\n"]
    for i, body in enumerate(bodies):
        send_message(srv, "s@x.test", [ALICE],
                     message(f"lmtp {i}", sender="s@x.test", to=ALICE,
                             body=body.decode()))
    files = d.wait_messages(ALICE, 2)
    got = {}
    for f in files:
        m = read_message(f)
        raw = f.read_bytes().replace(b"\r\n", b"\n")
        # Dovecot records the LMTP envelope: MAIL FROM and RCPT TO.
        assert b"Return-Path: <s@x.test>\n" in raw, raw
        assert b"Delivered-To: " + ALICE.encode() + b"\n" in raw, raw
        got[m["Subject"]] = raw.split(b"\n\n", 1)[1]
    assert got == {f"lmtp {i}": b.replace(b"\r\n", b"\n")
                   for i, b in enumerate(bodies)}
    # Dovecot stored them, not postern's own Maildir writer.
    assert srv.message_files(ALICE) == []
    wait_queue_empty(srv)
    assert "saved mail to INBOX" in d.log_text()


@pytest.mark.skipif(not HAVE_DOVECOT, reason="dovecot-lmtpd not installed")
def test_a_user_dovecot_does_not_know_bounces_alone(make_server, dovecot):
    # postern knows bob (its users file), Dovecot does not.
    d = dovecot(users=(ALICE, POSTMASTER))
    srv = lmtp_server(make_server, d.socket)
    send_message(srv, POSTMASTER, [ALICE, BOB],
                 message("half known", sender=POSTMASTER, to=ALICE))
    [f] = d.wait_messages(ALICE, 1)
    assert read_message(f)["Subject"] == "half known"
    # The bounce is local mail too, so Dovecot stores it for postmaster.
    [b] = d.wait_messages(POSTMASTER, 1)
    dsn = Dsn(read_message(b))
    assert dsn.final_recipients() == [BOB]
    r = dsn.recipient(BOB)
    assert r["action"] == "failed", r
    assert r["status"] == "5.1.1", r
    assert "550 5.1.1" in r["diagnostic-code"], r
    assert "doesn't exist" in r["diagnostic-code"], r
    wait_queue_empty(srv)
    assert len(d.messages(ALICE)) == 1


# --------------------------------------------------------------------------
# A scripted LMTP peer: LHLO, and the replies after the data


@pytest.fixture
def lmtp_peer(tmp_path):
    started = []

    def make(**kw):
        p = Peer(unix=str(tmp_path / "lmtp.sock"), lmtp=True, **kw).start()
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()
    for p in started:
        p.assert_clean()


def test_lmtp_client_says_lhlo_and_gets_one_reply_per_recipient(
        make_server, lmtp_peer):
    p = lmtp_peer()
    srv = lmtp_server(make_server, p.unix)
    send_message(srv, "s@x.test", [ALICE, BOB],
                 message("two", sender="s@x.test", to=ALICE))
    [t] = p.wait_messages(1, T)
    assert sorted(t.delivered_to) == [ALICE, BOB]
    assert t.conn.verbs()[0] == "LHLO", t.conn.verbs()
    assert "EHLO" not in t.conn.verbs() and "HELO" not in t.conn.verbs()
    assert t.bad_line_ends == []
    assert b"Subject: two" in t.data
    wait_queue_empty(srv)
    assert len(p.messages) == 1


def test_lmtp_4xx_after_data_retries_only_that_recipient(make_server,
                                                         lmtp_peer):
    p = lmtp_peer(lmtp_dot={BOB: ["452 4.2.2 <bob@example.test> Mailbox "
                                  "is full", None]})
    srv = lmtp_server(make_server, p.unix)
    send_message(srv, "s@x.test", [ALICE, BOB],
                 message("retry one", sender="s@x.test", to=ALICE))
    p.wait(lambda: p.delivered(BOB), T, "bob's delivery on a retry")
    assert len(p.delivered(ALICE)) == 1
    first, second = p.transactions[:2]
    assert sorted(first.delivered_to) == [ALICE]
    assert [r.address for r in second.rcpts] == [BOB]   # bob only
    wait_queue_empty(srv)
    assert len(p.delivered(ALICE)) == 1
    assert len(p.delivered(BOB)) == 1


def test_lmtp_5xx_after_data_bounces_only_that_recipient(make_server,
                                                         lmtp_peer):
    p = lmtp_peer(lmtp_dot={BOB: ["552 5.2.2 <bob@example.test> Quota "
                                  "exceeded"]})
    srv = lmtp_server(make_server, p.unix)
    send_message(srv, POSTMASTER, [ALICE, BOB],
                 message("over quota", sender=POSTMASTER, to=ALICE))
    # The bounce goes to postmaster - local, so through the same peer.
    t = p.wait(lambda: [x for x in p.messages if x.mail_from == ""], T,
               "the bounce, from the null sender")[0]
    assert t.delivered_to == [POSTMASTER]
    dsn = Dsn(t.message())
    assert dsn.final_recipients() == [BOB]
    r = dsn.recipient(BOB)
    assert (r["action"], r["status"]) == ("failed", "5.2.2"), r
    assert "552 5.2.2" in r["diagnostic-code"], r
    wait_queue_empty(srv)
    assert len(p.delivered(ALICE)) == 1
    assert p.delivered(BOB) == []


@pytest.mark.skipif(not HAVE_DOVECOT, reason="dovecot-lmtpd not installed")
def test_mail_waits_while_dovecot_is_down(make_server):
    from smtp_peer import queue
    d = Dovecot((ALICE, POSTMASTER))        # configured, not started
    try:
        srv = lmtp_server(make_server, d.socket)
        send_message(srv, "s@x.test", [ALICE],
                     message("waited", sender="s@x.test", to=ALICE))

        def deferred():
            for m in queue_list(srv).values():
                r = m["rcpts"].get(ALICE)
                if r and r["state"] == "deferred":
                    return r
            return None
        r = poll(deferred, T, interval=0.2, what="alice deferred")
        assert r["last"], r
        assert srv.message_files(ALICE) == []   # no fallback, no bounce
        d.start()
        queue(srv, "flush", check=0)
        [f] = d.wait_messages(ALICE, 1)
        assert read_message(f)["Subject"] == "waited"
        wait_queue_empty(srv)
    finally:
        print(f"--- dovecot log:\n{d.log_text()}")
        d.stop()
