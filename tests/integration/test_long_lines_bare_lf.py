"""Text that RFC 5321 does not require a server to take, but that real
senders send and Postfix and Exim take (issue 18 items 1 and 3).

- Lines longer than 998 octets (HTML mail, long headers): taken up to
  [server] max_line_length (default 524288 octets of text) and stored
  unchanged; one octet more refuses the whole message with 552 5.3.4
  naming the limit.
- Lines ending in a bare LF (scripts, smtplib with bytes): with [server]
  bare_newline = normalize (the default) taken as if they ended in CRLF
  and stored, and sent on, with CRLF; with bare_newline = reject refused
  with 554 5.6.0.  Smuggling stays refused under both settings:
  test_smuggling.py.
"""
import shutil
import smtplib
import subprocess

import pytest

from postern_test import queue_id, split_message
from smtp_peer import Peer, outbound_server, submit

RCPT = "alice@example.test"
DEFAULT_MAX_LINE = 524288
BARE_LF = ("554 5.6.0 Message refused: bare LF in message text; lines must "
           "end with CRLF")


def over_limit(limit):
    return ("552 5.3.4 Message refused: a text line is longer than this "
            f"server's limit of {limit} octets; wrap or encode long lines "
            "(quoted-printable, base64)")


def stored(srv, n=1):
    """The text of the last of n messages in alice's Maildir (LF ends)."""
    files = srv.wait_messages(RCPT, n)
    return files[-1].read_bytes()


def start_data(c):
    assert c.cmd("MAIL FROM:<s@x.test>").code == 250
    assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
    assert c.cmd("DATA").code == 354


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None,
                                 reason="swaks not installed")


def swaks(srv, *args):
    p = subprocess.run(
        ["swaks", "--server", f"{srv.host}:{srv.port}", "--to", RCPT,
         "--from", "swaks@x.test", "--helo", "swaks.test", *args],
        capture_output=True, text=True, timeout=60)
    return p


# --- long lines -------------------------------------------------------------

@needs_swaks
def test_swaks_2000_octet_body_line_is_stored_unchanged(server):
    line = "".join(chr(ord("a") + i % 26) for i in range(2000))
    p = swaks(server, "--header", "Subject: long body", "--body", line)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  250 2.0.0 Ok: queued as" in p.stdout
    body = split_message(stored(server))[1]
    assert body.split(b"\n")[0] == line.encode()  # swaks adds blank lines


@needs_swaks
def test_swaks_2000_octet_header_line_is_stored_unchanged(server):
    value = "h" * (2000 - len("X-Long: "))
    p = swaks(server, "--header", f"X-Long: {value}", "--body", "short")
    assert p.returncode == 0, p.stdout + p.stderr
    data = stored(server)
    assert f"\nX-Long: {value}\n".encode() in data
    assert split_message(data)[1].split(b"\n")[0] == b"short"


def test_smtplib_one_line_html_of_100_kib_is_stored_unchanged(server):
    html = b"<html><body>" + b"<p>x</p>" * 12800 + b"</body></html>"
    msg = (b"Subject: html\r\nContent-Type: text/html\r\n\r\n" + html +
           b"\r\n")
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        s.sendmail("s@x.test", [RCPT], msg)
    assert split_message(stored(server))[1] == html + b"\n"


def test_line_of_the_default_limit_is_taken_one_more_octet_is_552(server):
    line = b"y" * DEFAULT_MAX_LINE
    with server.client() as c:
        c.ehlo()
        queue_id(c.mail_txn("s@x.test", [RCPT], b"Subject: max\r\n\r\n" +
                            line + b"\r\n"))
        start_data(c)
        c.send(b"Subject: over\r\n\r\n" + line + b"y\r\nafter\r\n.\r\n")
        assert c.reply().last == over_limit(DEFAULT_MAX_LINE)
        # the transaction is gone, the session is not
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 503
        assert c.cmd("NOOP").last == "250 2.0.0 OK"
    assert split_message(stored(server))[1] == line + b"\n"
    server.stop()
    assert server.total_messages() == 1
    assert server.log_count("ev=queued") == 1


def test_max_line_length_is_honoured_in_data_and_bdat(make_server):
    srv = make_server(server={"max_line_length": 5000})
    with srv.client() as c:
        c.ehlo()
        queue_id(c.mail_txn("s@x.test", [RCPT], b"a" * 5000 + b"\r\n"))
        start_data(c)
        c.send(b"a" * 5001 + b"\r\n.\r\n")
        assert c.reply().last == over_limit(5000)
        # BDAT: the same count across chunks, refused at LAST
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
        c.send(b"BDAT 3000\r\n" + b"b" * 3000)
        assert c.reply().code == 250
        c.send(b"BDAT 2003 LAST\r\n" + b"b" * 2001 + b"\r\n")
        assert c.reply().last == over_limit(5000)
        assert c.cmd("NOOP").code == 250
    assert stored(srv).endswith(b"\n" + b"a" * 5000 + b"\n")
    srv.stop()
    assert srv.total_messages() == 1


def test_long_line_in_bdat_is_stored_unchanged(server):
    line = b"z" * 3000
    text = b"Subject: bdat\r\n\r\n" + line + b"\r\n"
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(text) + text)
        queue_id(c.reply())
    assert split_message(stored(server))[1] == line + b"\n"


# --- bare LF ----------------------------------------------------------------

def test_smtplib_bare_lf_message_is_taken_by_default(server):
    """The issue's example: sendmail with bytes ending lines in LF (smtplib
    sends bytes as they are, then CRLF "." CRLF)."""
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        s.sendmail("s@x.test", [RCPT], b"Subject: lf\n\nline\n")
    data = stored(server)
    assert data.endswith(b"\nSubject: lf\n\nline\n\n")
    assert b"\r" not in data


def test_smtplib_bare_lf_message_gets_554_with_reject(make_server):
    srv = make_server(server={"bare_newline": "reject"})
    with smtplib.SMTP(srv.host, srv.port, timeout=15) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("s@x.test", [RCPT], b"Subject: lf\n\nline\n")
        assert e.value.smtp_code == 554
        assert e.value.smtp_error.decode() == BARE_LF[4:]
        assert s.noop()[0] == 250
    srv.stop()
    assert srv.total_messages() == 0


def test_lf_lines_unstuff_their_dots_and_mix_with_crlf(server):
    with server.client() as c:
        c.ehlo()
        start_data(c)
        c.send(b"Subject: mix\n\nlf\ncrlf\r\n..dot after lf\n"
               b".x\r\n...\n\r\n.\r\n")
        queue_id(c.reply())
    assert split_message(stored(server))[1] == (
        b"lf\ncrlf\n.dot after lf\nx\n..\n\n")


def test_bare_lf_in_bdat_is_taken(server):
    text = b"Subject: bdat lf\n\none\ntwo\n"
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(text) + text)
        queue_id(c.reply())
    assert split_message(stored(server))[1] == b"one\ntwo\n"


def test_bare_lf_mail_is_sent_on_with_crlf(make_server):
    """Normalized at the door: the next hop gets CRLF only (the peer
    records every line that does not end in CRLF)."""
    peer = Peer().start()
    try:
        srv = outbound_server(make_server,
                              routes={"remote.test": peer.address})
        submit(srv, ["bob@remote.test"],
               b"From: <alice@example.test>\nTo: <bob@remote.test>\n"
               b"Subject: lf relayed\n\nfirst\n.second\n")
        [t] = peer.wait_messages(1)
        assert t.bad_line_ends == []
        assert t.data.endswith(b"Subject: lf relayed\r\n\r\nfirst\r\n"
                               b".second\r\n\r\n")
    finally:
        peer.stop()
    peer.assert_clean()
