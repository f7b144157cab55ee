"""The order of a command's checks, pinned: every verb in every session
state, on every kind of listener, against golden/session_order/*.txt.

Each case is a fresh connection: a setup (HELO/EHLO, MAIL, RCPT, a BDAT
chunk, AUTH, STARTTLS) and then one probe (a command, sometimes with bad
arguments or pipelined text).  What the server answers - every reply, and
whether it closes - is written down with a NOOP after it, so a reply that
comes late or a command that leaves the session in another state shows.
The replies and the server's ev=reply/mail/rcpt/auth log lines must match
the golden files byte for byte (queue ids, ports and session ids masked).
RFC 5321 4.1.4 and 4.3.2 (sequence), RFC 2920 3.1, RFC 3030 2, RFC 3207,
RFC 4954.

POSTERN_GOLDEN_WRITE=1 rewrites the golden files from the binary under
test: do that only with a binary whose replies are known good.
"""
import base64
import os
import pathlib
import re
import socket

import pytest

from postern_test import (AUTH_PASSWORD, ConnectionClosed, PortTaken,
                          SmtpClient, free_port, insecure_tls_context)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "session_order"
PASSWORD = AUTH_PASSWORD
PLAIN = base64.b64encode(b"\0alice@example.test\0" +
                         PASSWORD.encode()).decode()
READ_TIMEOUT = 10.0

SETUPS = {
    "fresh": [],
    "helo": ["HELO c.test"],
    "ehlo": ["EHLO c.test"],
    "mail": ["EHLO c.test", "MAIL FROM:<a@x.test>"],
    "helo_mail_rcpt": ["HELO c.test", "MAIL FROM:<a@x.test>",
                       "RCPT TO:<alice@example.test>"],
    "refused_rcpt": ["EHLO c.test", "MAIL FROM:<a@x.test>",
                     "RCPT TO:<nobody@example.test>"],
    "rcpt": ["EHLO c.test", "MAIL FROM:<a@x.test>",
             "RCPT TO:<alice@example.test>"],
    "bdat": ["EHLO c.test", "MAIL FROM:<a@x.test>",
             "RCPT TO:<alice@example.test>", b"BDAT 2\r\nab"],
}
AUTH_SETUPS = {
    "auth": ["EHLO c.test", "AUTH PLAIN " + PLAIN],
    "auth_mail": ["EHLO c.test", "AUTH PLAIN " + PLAIN,
                  "MAIL FROM:<alice@example.test>"],
    "auth_rcpt": ["EHLO c.test", "AUTH PLAIN " + PLAIN,
                  "MAIL FROM:<alice@example.test>",
                  "RCPT TO:<bob@example.test>"],
}

PROBES = [
    "HELO", "HELO c.test", "EHLO", "EHLO c.test", "EHLO c.test\r\nNOOP",
    "MAIL", "MAIL FROM:", "MAIL FROM:<a@x.test>", "MAIL FROM:<bad",
    "MAIL FROM:<a@x.test> FOO=1", "MAIL FROM:<alice@example.test>",
    "RCPT", "RCPT TO:<alice@example.test>", "RCPT TO:<bad",
    "RCPT TO:<alice@example.test> NOTIFY=BAD",
    "DATA", "DATA x", "DATA\r\nNOOP", "DATA x\r\nNOOP",
    "BDAT 3\r\nabc", "BDAT 3 LAST\r\nabc", "BDAT 0 LAST", "BDAT x",
    "BDAT 2 MORE\r\nab",
    "RSET", "RSET x", "NOOP", "NOOP x", "QUIT", "QUIT x",
    "VRFY", "VRFY alice", "EXPN alice", "HELP", "ETRN x", "TURN",
    "STARTTLS", "STARTTLS x", "STARTTLS\r\nNOOP",
    "AUTH", "AUTH FOO", "AUTH PLAIN", "AUTH LOGIN", "AUTH PLAIN " + PLAIN,
    "FOO",
]

LOG_EVENTS = re.compile(r"\bev=(reply|mail|rcpt|auth|starttls_injection) ")


def ctx():
    return insecure_tls_context()


def mask(text):
    text = re.sub(r"queued as \S+", "queued as QID", text)
    text = re.sub(r"\bsid=[0-9a-f]+", "sid=SID", text)
    text = re.sub(r"\bclient=\S+", "client=CLIENT", text)
    text = re.sub(r"\bdiscarded=\d+", "discarded=N", text)
    return text


def read_replies(c):
    """The next reply; for 334 the cancel, for 354 the end of the text."""
    out = []
    r = c.reply()
    out.append(r.last)
    if r.code == 334:
        c.send(b"*\r\n")
        out.append(c.reply().last)
    elif r.code == 354:
        c.send(b".\r\n")
        out.append(c.reply().last)
    return out


def run_case(srv, port, use_tls, setup, probe):
    """One connection: setup, probe, then NOOP; the transcript lines."""
    lines = []
    c = SmtpClient(srv.host, port, timeout=READ_TIMEOUT, read_banner=False)
    try:
        if use_tls == "smtps":
            c.sock = ctx().wrap_socket(c.sock)
        c.reply()
        if use_tls == "starttls":
            c.send(b"STARTTLS\r\n")
            c.reply()
            c.sock = ctx().wrap_socket(c.sock)
        for step in setup:
            data = step if isinstance(step, bytes) else step.encode() + b"\r\n"
            c.send(data)
            read_replies(c)
        data = probe.encode() + b"\r\n"
        lines.append("C: " + probe.replace("\r\n", "\\r\\n"))
        c.send(data)
        pipelined = probe.count("\r\n")
        for _ in range(1 + pipelined):
            for ln in read_replies(c):
                lines.append("S: " + ln)
                if ln.startswith(("221 ", "421 ", "554 5.5.0", "220 2.0.0")):
                    raise ConnectionClosed("")
        c.send(b"NOOP\r\n")
        lines.append("S: " + c.reply().last)
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        lines.append("closed")
    except socket.timeout:
        lines.append("timeout")
    finally:
        c.close()
    return lines


def run_matrix(srv, port, use_tls, setups):
    out = []
    for name, setup in setups.items():
        for probe in PROBES:
            out.append(f"# {name}")
            out.extend(mask(ln) for ln in run_case(srv, port, use_tls,
                                                    setup, probe))
    return out


def log_events(srv, start):
    out = []
    for ln in srv.log()[start:].splitlines():
        if LOG_EVENTS.search(ln):
            out.append(mask(ln[ln.index("ev="):]))
    return out


def check_golden(name, lines):
    path = GOLDEN / f"{name}.txt"
    text = "\n".join(lines) + "\n"
    if os.environ.get("POSTERN_GOLDEN_WRITE"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    want = path.read_text().splitlines()
    for i, (got, exp) in enumerate(zip(lines, want)):
        assert got == exp, f"{path.name}:{i + 1}: got {got!r}, want {exp!r}"
    assert len(lines) == len(want), f"{path.name}: length differs"


@pytest.fixture
def tls_server(make_server, tls_files):
    d, hashed = tls_files
    srv = make_server(
        start=False,
        users=["postmaster@example.test",
               f"alice@example.test: {hashed}", "bob@example.test"],
        tls={"cert": str(d / "cert.pem"), "key": str(d / "key.pem")})
    for attempt in range(3):
        srv.sub_port, srv.smtps_port = free_port(), free_port()
        srv.sections["server"].update(
            submission=f"127.0.0.1:{srv.sub_port}",
            smtps=f"127.0.0.1:{srv.smtps_port}")
        srv.write_config()
        try:
            srv.start()
            return srv
        except PortTaken:
            if attempt == 2:
                raise
    return srv


def test_every_verb_in_every_state_without_tls(server):
    start = len(server.log())
    lines = run_matrix(server, server.port, False, SETUPS)
    check_golden("plain", lines)
    check_golden("plain_log", log_events(server, start))


@pytest.mark.parametrize("listener", [
    "smtp", "submission",
    pytest.param("smtps", marks=pytest.mark.long),
    pytest.param("starttls", marks=pytest.mark.long)])
def test_every_verb_in_every_state_with_tls(tls_server, listener):
    srv = tls_server
    port = {"smtp": srv.port, "submission": srv.sub_port,
            "smtps": srv.smtps_port, "starttls": srv.port}[listener]
    setups = dict(SETUPS)
    if listener in ("smtps", "starttls"):
        setups.update(AUTH_SETUPS)
    use_tls = listener if listener in ("smtps", "starttls") else None
    start = len(srv.log())
    lines = run_matrix(srv, port, use_tls, setups)
    check_golden(f"tls_{listener}", lines)
    check_golden(f"tls_{listener}_log", log_events(srv, start))
