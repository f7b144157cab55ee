"""postern takes at least what Postfix takes (issue 18, "Tests").

The same odd-but-real transactions go to a private Postfix (Debian's 3.7
binaries, with their defaults, as bench/run.py starts one) and to
postern: lines over 998 octets in the body and in a header, lines ending
in a bare LF, 8-bit text without BODY=8BITMIME, a VERP sender with a
100-octet local part, and MAIL FROM without angle brackets.  For each,
Postfix must take it (else the row proves nothing) and so must postern,
which must also deliver it.

The Postfix runs as bench/run.py's does: root starts it with `postfix -c
DIR` on a free loopback port, its own config, queue and data directories
under a temporary directory (never /etc/postfix's instance or port 25);
bench/postfix/master.cf.in is its service list.  It takes mail from
127.0.0.1 for any domain (mynetworks) and discards it: only its reply to
the data is compared.  Without root or Postfix the module is skipped.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from postern_test import (DEFAULT_TIMEOUT, REPO, ConnectionClosed,
                          SmtpClient, free_port, poll)

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DAEMONS = Path("/usr/lib/postfix/sbin")
RCPT = "alice@example.test"


def _skip_reason():
    if os.geteuid() != 0:
        return "Postfix must be started as root"
    if not os.access(POSTFIX, os.X_OK) or not (DAEMONS / "smtpd").exists():
        return "Postfix is not installed (make deps-test)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user"
    return None


# One private Postfix serves the whole module: under pytest-xdist
# (--dist loadgroup) its tests stay in one worker.
pytestmark = [pytest.mark.skipif(_skip_reason() is not None,
                                 reason=_skip_reason() or ""),
              pytest.mark.xdist_group("compat_postfix")]

MAIN_CF = """\
# A private Postfix for test_compat_postfix.py: Debian's defaults except
# what keeps it private, and every message discarded once taken.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
command_directory = /usr/sbin
daemon_directory = {daemons}
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.compat.test
mydomain = compat.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
default_transport = discard:compat test
relay_transport = discard:compat test
"""


class PrivatePostfix:
    def __init__(self, root, port):
        self.root, self.port = Path(root), port
        self.etc = self.root / "etc"

    def run(self, *args, check=True):
        p = subprocess.run([POSTFIX, "-c", str(self.etc), *args],
                           capture_output=True, text=True,
                           timeout=DEFAULT_TIMEOUT * 4)
        if check and p.returncode != 0:
            raise AssertionError(f"postfix {' '.join(args)}: {p.stderr}"
                                 f"\n{self.maillog()[-2000:]}")
        return p

    def maillog(self):
        try:
            return (self.root / "maillog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def master_pid(self):
        try:
            return int((self.root / "queue" / "pid" / "master.pid")
                       .read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        postfix = pwd.getpwnam("postfix")
        for d in ("etc", "queue", "data"):
            (self.root / d).mkdir(parents=True)
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        (self.etc / "main.cf").write_text(
            MAIN_CF.format(dir=self.root, daemons=DAEMONS))
        master = (REPO / "bench" / "postfix" / "master.cf.in").read_text()
        (self.etc / "master.cf").write_text(
            master.replace("@ADDR@", "127.0.0.1")
            .replace("@PORT@", str(self.port)))
        self.run("check")
        self.run("start")
        poll(self.answers, 60, interval=0.1, what="Postfix's 220")

    def answers(self):
        try:
            with SmtpClient("127.0.0.1", self.port, timeout=5) as c:
                return c.banner.code == 220
        except (OSError, AssertionError):
            return False

    def stop(self):
        pid = self.master_pid()
        self.run("stop", check=False)
        if pid is not None:
            poll(lambda: not _alive(pid), 60, interval=0.1,
                 what="Postfix's master to exit")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def postfix():
    # A directory every Postfix daemon may traverse (pytest's are 0700).
    root = Path(tempfile.mkdtemp(prefix="postern-compat-postfix-"))
    root.chmod(0o755)
    pf = PrivatePostfix(root / "pf", free_port())
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Case:
    text: bytes                         # the data, CRLF "." CRLF added
    mail: str = "MAIL FROM:<s@x.test>"  # the MAIL command as sent


@dataclass
class Outcome:
    is_taken: bool
    step: str      # the command whose reply ended the transaction
    reply: str


def send(host, port, case):
    """One session: EHLO, the case's MAIL, RCPT, DATA, the text.  Stops at
    the first reply that refuses."""
    try:
        with SmtpClient(host, port) as c:
            c.ehlo("client.compat.test")
            for step in (case.mail, f"RCPT TO:<{RCPT}>", "DATA"):
                r = c.cmd(step)
                if r.code >= 400:
                    return Outcome(False, step, r.text)
            c.send(case.text + b".\r\n")
            r = c.reply()
            c.cmd("QUIT")
            return Outcome(r.code == 250, "end of data", r.text)
    except ConnectionClosed as e:
        return Outcome(False, "connection", str(e))


def html_line(n):
    unit = b"<td>cell</td>"
    return (unit * (n // len(unit) + 1))[:n]


CASES = [
    pytest.param(Case(b"Subject: long body line\r\n\r\n" +
                      html_line(2000) + b"\r\n"), id="body_line_2000"),
    pytest.param(Case(b"Subject: long header line\r\nX-Long: " +
                      b"h" * 1992 + b"\r\n\r\nbody\r\n"),
                 id="header_line_2000"),
    pytest.param(Case(b"Subject: one-line html\r\nContent-Type: text/html"
                      b"\r\n\r\n" + html_line(100 * 1024) + b"\r\n"),
                 id="html_line_100KiB"),
    # smtplib's sendmail(..., b"Subject: lf\n\nline\n") on the wire
    pytest.param(Case(b"Subject: lf\n\nline\n\r\n"), id="bare_lf"),
    pytest.param(Case(b"Subject: mixed\r\nFrom: <s@x.test>\n\nlf\ncrlf\r\n"
                      b"..dot\nend\n\r\n"), id="bare_lf_mixed"),
    pytest.param(Case("Subject: 8-bit\r\nContent-Type: text/plain; "
                      "charset=utf-8\r\n\r\nGrüße, Ünïcödé €\r\n"
                      .encode()), id="8bit_without_body_param"),
    pytest.param(Case(b"Subject: verp\r\n\r\nbody\r\n",
                      mail="MAIL FROM:<bounces+" + "v" * 92 +
                      "@lists.x.test>"),
                 id="verp_local_part_100"),
    pytest.param(Case(b"Subject: no brackets\r\n\r\nbody\r\n",
                      mail="MAIL FROM:s@x.test"),
                 id="mail_from_without_brackets"),
]


def test_verp_case_has_a_100_octet_local_part():
    [case] = [p.values[0] for p in CASES if p.id == "verp_local_part_100"]
    local = case.mail.split("<", 1)[1].split("@", 1)[0]
    assert len(local) == 100


@pytest.mark.parametrize("case", CASES)
def test_postern_takes_what_postfix_takes(postfix, server, case):
    theirs = send("127.0.0.1", postfix.port, case)
    assert theirs.is_taken, (
        f"Postfix refused it, so the row proves nothing: {theirs}")
    ours = send(server.host, server.port, case)
    assert ours.is_taken, f"Postfix takes it, postern does not: {ours}"
    [f] = server.wait_messages(RCPT, 1)
    assert f.stat().st_size >= len(case.text.replace(b"\r\n", b"\n"))

