"""Dovecot's IMAP server reads what postern delivered (issue 3: "each
opened by a real reader ... or Dovecot's IMAP server over the same
Maildir").  Runs /usr/lib/dovecot/imap in pre-authenticated mode over
stdin/stdout (imaplib.IMAP4_stream): no daemon, no port, no login.
Skipped when dovecot-imapd is not installed (`make test` installs it).
"""
import imaplib
import os
import pwd
import shlex
import shutil
import smtplib
import tempfile
from pathlib import Path

import pytest

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
pytestmark = pytest.mark.skipif(not os.access(DOVECOT_IMAP, os.X_OK),
                                reason="dovecot-imapd not installed")

MESSAGES = [
    b"From: <a@x.test>\r\nSubject: first\r\n\r\nplain body\r\n",
    b"From: <b@x.test>\r\nSubject: second\r\n\r\n.leading dot\r\n..two\r\n"
    b"\r\nafter blank\r\n",
    "From: <c@x.test>\r\nSubject: third\r\nContent-Type: text/plain; "
    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Grüße aus Köln\r\n".encode(),
]


@pytest.fixture
def imap_dir():
    """A scratch directory Dovecot can reach: pytest's tmp_path is private
    to root (0700), and Dovecot will not run as root, so as root the
    directory sits in /tmp and belongs to nobody."""
    d = Path(tempfile.mkdtemp(prefix="postern-imap-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def imap_over(maildir, work):
    """An IMAP4 session on a copy of maildir in work."""
    copy = work / "Maildir"
    shutil.copytree(maildir, copy)
    if os.getuid() == 0:
        pw = pwd.getpwnam("nobody")
        uid, gid, user = pw.pw_uid, pw.pw_gid, "nobody"
        for root, dirs, files in os.walk(work):
            for n in dirs + files:
                os.chown(os.path.join(root, n), uid, gid)
        os.chown(work, uid, gid)
    else:
        uid, gid = os.getuid(), os.getgid()
        user = pwd.getpwuid(uid).pw_name
    conf = work / "dovecot.conf"
    conf.write_text(
        "protocols = imap\nssl = no\n"
        f"log_path = {work / 'dovecot.log'}\n"
        f"mail_location = maildir:{copy}\n"
        f"base_dir = {work / 'run'}\n"
        f"state_dir = {work / 'state'}\n"
        f"mail_uid = {uid}\nmail_gid = {gid}\n"
        "first_valid_uid = 0\nfirst_valid_gid = 0\n")
    cmd = (f"env USER={user} HOME={shlex.quote(str(work))} "
           f"{DOVECOT_IMAP} -c {shlex.quote(str(conf))}")
    return imaplib.IMAP4_stream(cmd)


def test_dovecot_imap_reads_every_delivered_message_intact(server, imap_dir):
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        s.ehlo("client.test")
        for m in MESSAGES:
            assert s.sendmail("s@x.test", ["alice@example.test"], m) == {}
    server.wait_messages("alice@example.test", 3)
    imap = imap_over(server.maildir("alice@example.test"), imap_dir)
    try:
        assert imap.state == "AUTH"  # PREAUTH
        typ, data = imap.select("INBOX", readonly=True)
        assert (typ, data) == ("OK", [b"3"])
        got = {}
        for n in (1, 2, 3):
            typ, data = imap.fetch(str(n), "(BODY.PEEK[HEADER.FIELDS "
                                   "(SUBJECT RETURN-PATH DELIVERED-TO)] "
                                   "BODY.PEEK[TEXT])")
            assert typ == "OK", data
            head, text = data[0][1], data[1][1]
            assert b"Delivered-To: alice@example.test\r\n" in head
            assert b"Return-Path: <s@x.test>\r\n" in head
            subject = head.split(b"Subject: ")[1].split(b"\r\n")[0]
            got[subject] = text
    finally:
        imap.logout()
    # Dovecot gives CRLF line ends back, so the text is what was sent
    # (after dot-unstuffing, which smtplib did and postern undid).
    want = {m.split(b"Subject: ")[1].split(b"\r\n")[0]:
            m.split(b"\r\n\r\n", 1)[1] for m in MESSAGES}
    assert got == want
