"""SMTP smuggling (CVE-2023-51764, CVE-2023-51766 class): only CRLF.CRLF
ends DATA (RFC 5321 4.1.1.4, 2.3.8).

Each test hides a fake end of data followed by a second whole transaction
("MAIL..RCPT..DATA..text") inside one message, then sends the real
CRLF.CRLF.  The server must answer exactly once (a 5xx: the text has a bare
LF, a bare CR or a NUL), store nothing, and never make two messages of one.

Every test runs twice, with [server] bare_newline = reject and = normalize
(the `server` fixture below): normalizing takes lines ending in a bare LF,
but never one next to a line holding only "." - the same sequences get the
same single refusal.  SCANNER_SEQUENCES are the fake ends the public SMTP
smuggling scanner of SEC Consult (The-Login/SMTP-Smuggling-Tools,
smtp_smuggling_scanner.py, inbound and outbound lists) tries, sent in the
shape its messages have.
"""
import socket

import pytest

from postern_test import queue_id, split_message

BARE_NEWLINE_MODES = ["reject", "normalize"]


@pytest.fixture(params=BARE_NEWLINE_MODES)
def server(request, make_server):
    """A server with each setting of [server] bare_newline in turn."""
    return make_server(server={"bare_newline": request.param})

BARE_LF = ("554 5.6.0 Message refused: bare LF in message text; lines must "
           "end with CRLF")
BARE_CR = ("554 5.6.0 Message refused: bare CR in message text; lines must "
           "end with CRLF")
NUL = "554 5.6.0 Message refused: NUL octet in message text"

SMUGGLED = (b"MAIL FROM:<evil@attacker.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"From: <ceo@example.test>\r\nSubject: smuggled\r\n\r\n"
            b"smuggled body\r\n")

SEQUENCES = [
    (b"\n.\n", BARE_LF),
    (b"\r.\r", BARE_CR),
    (b"\r\n.\n", BARE_LF),
    (b"\n.\r\n", BARE_LF),
    (b"\r.\r\n", BARE_CR),
    (b"\r\n\x00.\r\n", NUL),
    (b"\r\n.\x00\r\n", NUL),
    (b"\r\n.\r\r\n", BARE_CR),
    (b"\r\r\n.\r\r\n", BARE_CR),
    (b"\n\n.\n\n", BARE_LF),
    (b"\r\n\n.\n\r\n", BARE_LF),
]
IDS = [repr(s)[2:-1].replace("\\", "") for s, _ in SEQUENCES]

# The end-of-data sequences of SEC Consult's smtp_smuggling_scanner.py
# (inbound_eod_sequences, then the two outbound_eod_sequences adds), and
# the public write-ups' other forms: CR and LF in each position around the
# dot, NUL before, after and inside.  Each with the reply under
# bare_newline = reject and = normalize (a message holding several faults
# is named by the first of NUL, bare LF, bare CR).
SCANNER_SEQUENCES = [
    (b"\n.\n", BARE_LF, BARE_LF),
    (b"\n.\r", BARE_LF, BARE_CR),
    (b"\r.\n", BARE_LF, BARE_CR),
    (b"\r.\r", BARE_CR, BARE_CR),
    (b"\n.\r\n", BARE_LF, BARE_LF),
    (b"\r.\r\n", BARE_CR, BARE_CR),
    (b"\r\n\x00.\r\n", NUL, NUL),
    (b"\r\n.\r\r\n", BARE_CR, BARE_CR),
    (b"\r\r\n.\r\r\n", BARE_CR, BARE_CR),
    # beyond the scanner
    (b"\r\n.\n", BARE_LF, BARE_LF),
    (b"\r\n.\r", BARE_CR, BARE_CR),
    (b"\n.", BARE_LF, BARE_LF),
    (b"\r.", BARE_CR, BARE_CR),
    (b"\r\n.\x00\r\n", NUL, NUL),
    (b"\r\n.\r\x00\n", NUL, NUL),
    (b"\x00\n.\n", NUL, NUL),
    (b"\n.\x00\n", NUL, NUL),
    (b"\n\x00.\r\n", NUL, NUL),
]
SCANNER_IDS = [repr(s)[2:-1].replace("\\", "") for s, _, _ in
               SCANNER_SEQUENCES]


def scanner_message(seq):
    """A message shaped as the scanner sends it: CRLF lines, the fake end
    on a line of its own, a whole second transaction after it, the real
    end last, no dot-stuffing."""
    lines = [b"From: test@check.test", b"To: alice@example.test",
             b"Subject: CHECK EMAIL", b"",
             b"TESTING a fake end-of-data sequence!", seq,
             b"mail FROM:<smuggled@check.test>",
             b"rcpt TO:<bob@example.test>", b"data",
             b"From: smuggled@check.test", b"To: bob@example.test",
             b"Subject: SMUGGLED EMAIL", b"",
             b"SMUGGLING WORKS with this fake end-of-data sequence!", b"."]
    return b"\r\n".join(lines) + b"\r\n"


def smuggle(c, seq, split):
    assert c.cmd("MAIL FROM:<s@x.test>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    payload = (b"From: <s@x.test>\r\nSubject: carrier\r\n\r\nbefore" + seq +
               SMUGGLED + b".\r\n")
    if split:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(payload)):
            c.send(payload[i:i + 1])
    else:
        c.send(payload)


def assert_only_reply(c, expected):
    """The reply to the data is `expected` and nothing else follows it."""
    assert c.reply().last == expected
    # Replies come in order: if the smuggled commands had been run, their
    # replies would come before NOOP's.
    assert c.cmd("NOOP").last == "250 2.0.0 OK"


@pytest.mark.parametrize("seq, reply", SEQUENCES, ids=IDS)
def test_smuggled_transaction_gets_one_5xx_and_nothing_is_delivered(
        server, seq, reply):
    with server.client() as c:
        c.ehlo()
        smuggle(c, seq, split=False)
        assert_only_reply(c, reply)
        # The transaction is gone: RCPT needs a new MAIL.
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503
        # A real message afterwards goes through, and it is the only one.
        qid = queue_id(c.mail_txn("s@x.test", ["alice@example.test"],
                                  b"Subject: real\r\n\r\nreal body\r\n"))
    [f] = server.wait_messages("alice@example.test", 1)
    assert f"Q{qid}R0" in f.name
    assert split_message(f.read_bytes())[1] == b"real body\n"
    server.stop()
    assert server.message_files("bob@example.test") == []
    assert server.total_messages() == 1
    assert server.log_count(r"ev=queued ") == 1


@pytest.mark.parametrize("seq, reply", SEQUENCES[:6], ids=IDS[:6])
def test_smuggling_one_octet_per_write_gets_the_same_single_reply(
        server, seq, reply):
    with server.client() as c:
        c.ehlo()
        smuggle(c, seq, split=True)
        assert_only_reply(c, reply)
    server.stop()
    assert server.total_messages() == 0
    assert server.log_count(r"ev=queued ") == 0


@pytest.mark.parametrize("seq, reply_reject, reply_normalize",
                         SCANNER_SEQUENCES, ids=SCANNER_IDS)
def test_scanner_sequence_gets_one_554_and_nothing_is_delivered(
        server, seq, reply_reject, reply_normalize):
    mode = server.sections["server"]["bare_newline"]
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<test@check.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(scanner_message(seq))
        assert_only_reply(c, reply_normalize if mode == "normalize"
                          else reply_reject)
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503
    server.stop()
    assert server.total_messages() == 0
    assert server.log_count(r"ev=queued ") == 0


def test_smuggling_with_pipelined_commands_after_the_real_end(server):
    """What follows the real CRLF.CRLF in the same write is commands."""
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"x\n.\n" + SMUGGLED + b".\r\nRSET\r\nNOOP\r\n")
        assert c.reply().last == BARE_LF
        assert c.reply().last == "250 2.0.0 Flushed"
        assert c.reply().last == "250 2.0.0 OK"
    server.stop()
    assert server.total_messages() == 0


def test_lone_dot_line_split_across_writes_still_ends_data(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        for part in (b"Subject: s\r\n\r\nline\r", b"\n.", b"\r", b"\n"):
            c.send(part)
        queue_id(c.reply())
        assert c.cmd("NOOP").code == 250
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == b"line\n"


def test_dot_line_inside_text_needs_crlf_on_both_sides(server):
    """'.\\r\\n' right after DATA's 354 is an empty message's end; 'x.\\r\\n'
    is text."""
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"a.\r\n .\r\n.\r\n")
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert f.read_bytes().endswith(b"a.\n .\n")


def test_bdat_with_bare_lf_gets_554_and_nothing_is_delivered(server):
    text = b"Subject: b\r\n\r\nbefore\n.\n" + SMUGGLED
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(text) + text)
        assert_only_reply(c, BARE_LF)
    server.stop()
    assert server.total_messages() == 0


def test_bdat_crlf_split_across_chunks_is_not_a_bare_cr(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT 5\r\nab\r\nc")
        assert c.reply().code == 250
        c.send(b"BDAT 2\r\nd\r")
        assert c.reply().code == 250
        c.send(b"BDAT 1 LAST\r\n\n")
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert f.read_bytes().endswith(b"\nab\ncd\n")


def test_bdat_ending_in_a_lone_cr_gets_554(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT 3 LAST\r\nab\r")
        assert_only_reply(c, BARE_CR)
    server.stop()
    assert server.total_messages() == 0
