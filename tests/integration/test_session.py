"""The SMTP session with real clients: smtplib, raw sockets, swaks.

RFC 5321 (commands, replies), RFC 2034 (enhanced codes), RFC 2920
(PIPELINING), RFC 3030 (CHUNKING), RFC 6531 (SMTPUTF8); the rows 220, 421,
5xx of REPLY-CODES.md.
"""
import email
import email.policy
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from postern_test import (HOSTNAME, SmtpClient, has_ipv6_loopback,
                          free_port, postern_version, queue_id,
                          split_message)

EHLO_LINES = [
    f"250-{HOSTNAME} Hello client.test [127.0.0.1]",
    "250-PIPELINING",
    "250-SIZE 26214400",
    "250-8BITMIME",
    "250-ENHANCEDSTATUSCODES",
    "250-SMTPUTF8",
    "250-CHUNKING",
    "250 DSN",
]

MESSAGE = (b"From: <sender@x.test>\r\nTo: <alice@example.test>\r\n"
           b"Subject: hello\r\n\r\nfirst line\r\n\r\nlast line\r\n")


def lf(b):
    return b.replace(b"\r\n", b"\n")


# --- greeting and EHLO ----------------------------------------------------

def test_banner_names_hostname_and_version(server):
    with server.client() as c:
        assert c.banner.raw == (f"220 {HOSTNAME} ESMTP postern "
                                f"{postern_version()}\r\n").encode()


def test_ehlo_lists_every_extension_without_enhanced_codes(server):
    with server.client() as c:
        r = c.cmd("EHLO client.test")
        assert r.lines == EHLO_LINES


def test_ehlo_size_follows_max_message_size(make_server):
    srv = make_server(server={"max_message_size": 4096})
    with srv.client() as c:
        assert "250-SIZE 4096" in c.ehlo().lines


def test_helo_replies_with_one_line_and_no_extensions(server):
    with server.client() as c:
        r = c.cmd("HELO client.test")
        assert r.lines == [f"250 {HOSTNAME} Hello client.test"]


def test_helo_without_domain_gets_501(server):
    with server.client() as c:
        assert c.cmd("EHLO").last == (
            "501 5.5.4 HELO/EHLO needs a domain name or address literal")
        assert c.cmd("HELO").code == 501


def test_smtplib_sees_the_extensions(server):
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        assert s.esmtp_features.keys() >= {
            "pipelining", "size", "8bitmime", "enhancedstatuscodes",
            "smtputf8", "chunking"}
        assert s.esmtp_features["size"] == "26214400"
        assert "starttls" not in s.esmtp_features
        assert "auth" not in s.esmtp_features


# --- simple commands --------------------------------------------------------

def test_simple_commands_reply_with_enhanced_codes(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("NOOP").last == "250 2.0.0 OK"
        assert c.cmd("noop").last == "250 2.0.0 OK"
        assert c.cmd("RSET").last == "250 2.0.0 Flushed"
        assert c.cmd("VRFY alice").last == (
            "252 2.5.0 Cannot VRFY user, but will accept message and "
            "attempt delivery")
        assert c.cmd("HELP").code == 214
        assert c.cmd("HELP").enh == "2.0.0"
        for verb in ("EXPN alice", "ETRN example.test", "TURN"):
            r = c.cmd(verb)
            assert (r.code, r.enh) == (502, "5.5.1"), (verb, r)
            assert r.last.endswith("command not implemented"), r


def test_quit_gets_221_and_the_server_closes(server):
    with server.client() as c:
        r = c.cmd("QUIT")
        assert r.last == (f"221 2.0.0 {HOSTNAME} Service closing "
                          "transmission channel")
        c.expect_closed()


def test_arguments_to_rset_and_quit_get_501(server):
    with server.client() as c:
        assert c.cmd("RSET x").last == "501 5.5.4 RSET takes no arguments"
        assert c.cmd("QUIT now").last == "501 5.5.4 QUIT takes no arguments"
        assert c.cmd("NOOP").code == 250


# --- sequence (503) ---------------------------------------------------------

def test_mail_before_helo_gets_503(server):
    with server.client() as c:
        assert c.cmd("MAIL FROM:<a@x.test>").last == (
            "503 5.5.1 Bad sequence of commands: send HELO/EHLO first")


def test_rcpt_before_mail_gets_503(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("RCPT TO:<alice@example.test>").last == (
            "503 5.5.1 Bad sequence of commands: send MAIL first")


def test_second_mail_gets_503(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        assert c.cmd("MAIL FROM:<b@x.test>").last == (
            "503 5.5.1 Bad sequence of commands: sender already given")


def test_data_without_rcpt_gets_503(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("DATA").last == (
            "503 5.5.1 Bad sequence of commands: send MAIL first")
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        assert c.cmd("DATA").last == (
            "503 5.5.1 Bad sequence of commands: send RCPT first")


def test_data_after_only_refused_rcpts_gets_554_5_5_1(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("DATA").last == (
            "554 5.5.1 Transaction failed: no valid recipients")
        assert c.cmd("NOOP").code == 250


def test_rset_drops_the_transaction(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("DATA").code == 503
        assert c.cmd("MAIL FROM:<b@x.test>").code == 250


def test_ehlo_again_drops_the_transaction(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        c.ehlo()
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503


# --- delivering -------------------------------------------------------------

def test_smtplib_sendmail_delivers_into_alices_maildir(server):
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        s.ehlo("client.test")
        refused = s.sendmail("sender@x.test", ["alice@example.test"], MESSAGE)
        assert refused == {}
    [f] = server.wait_messages("alice@example.test", 1)
    msgs = list(server.read_maildir("alice@example.test").values())
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Return-Path"] == "<sender@x.test>"
    assert m["Delivered-To"] == "alice@example.test"
    assert m["Subject"] == "hello"
    received = " ".join(m["Received"].split())
    assert received.startswith(
        f"from client.test ([127.0.0.1]) by {HOSTNAME} (postern) with ESMTP "
        "id ")
    assert "for <alice@example.test>;" in received
    _, body = split_message(f.read_bytes())
    assert body == b"first line\n\nlast line\n"


def test_stored_message_starts_with_return_path_delivered_to_received(server):
    qid = None
    with server.client() as c:
        c.ehlo("client.test")
        qid = queue_id(c.mail_txn("s@x.test", ["alice@example.test"],
                                  MESSAGE))
    [f] = server.wait_messages("alice@example.test", 1)
    data = f.read_bytes()
    assert b"\r" not in data
    lines = data.split(b"\n")
    assert lines[0] == b"Return-Path: <s@x.test>"
    assert lines[1] == b"Delivered-To: alice@example.test"
    assert lines[2] == b"Received: from client.test ([127.0.0.1])"
    assert lines[3] == (f"\tby {HOSTNAME} (postern) with ESMTP id {qid}"
                        .encode())
    assert data.endswith(lf(MESSAGE))
    assert f"Q{qid}R0" in f.name


def test_null_sender_is_accepted_and_stored_as_empty_return_path(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<>").last == "250 2.1.0 Sender <> OK"
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert f.read_bytes().startswith(b"Return-Path: <>\n")


def test_helo_session_is_recorded_as_smtp(server):
    with server.client() as c:
        assert c.cmd("HELO old.client").code == 250
        queue_id(c.mail_txn("s@x.test", ["alice@example.test"], MESSAGE))
    [f] = server.wait_messages("alice@example.test", 1)
    assert b"(postern) with SMTP id" in f.read_bytes()


def test_two_messages_in_one_session_are_two_files(server):
    with server.client() as c:
        c.ehlo()
        q1 = queue_id(c.mail_txn("s@x.test", ["alice@example.test"],
                                 b"Subject: 1\r\n\r\none\r\n"))
        q2 = queue_id(c.mail_txn("s@x.test", ["alice@example.test"],
                                 b"Subject: 2\r\n\r\ntwo\r\n"))
    assert q1 != q2
    files = server.wait_messages("alice@example.test", 2)
    bodies = sorted(split_message(f.read_bytes())[1] for f in files)
    assert bodies == [b"one\n", b"two\n"]


def test_dot_stuffed_lines_arrive_unstuffed(server):
    text = (b"Subject: dots\r\n\r\n..line\r\n.\x2e\r\n...three\r\n"
            b"middle . dot\r\n. space\r\n")
    with server.client() as c:
        c.ehlo()
        queue_id(c.mail_txn("s@x.test", ["alice@example.test"], text))
    [f] = server.wait_messages("alice@example.test", 1)
    _, body = split_message(f.read_bytes())
    assert body == b".line\n.\n..three\nmiddle . dot\n space\n"


def test_smtplib_dot_stuffing_round_trips(server):
    msg = b"Subject: s\r\n\r\n.\r\n..\r\n.x\r\nend\r\n"
    with smtplib.SMTP(server.host, server.port, timeout=15) as s:
        s.sendmail("s@x.test", ["alice@example.test"], msg)
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == b".\n..\n.x\nend\n"


def test_eight_bit_body_is_stored_byte_for_byte(server):
    body = "Grüße, ça va? 你好\r\n".encode() + bytes(range(0x80, 0x100)) + \
        b"\r\n"
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: 8bit\r\n\r\n" + body + b".\r\n")
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == lf(body)


def test_smtputf8_sender_and_recipient_are_delivered(make_server):
    srv = make_server(users=["alice@example.test", "jörg@example.test"])
    with smtplib.SMTP(srv.host, srv.port, timeout=15) as s:
        s.ehlo("client.test")
        refused = s.sendmail("rené@x.test", ["jörg@example.test"],
                             b"Subject: utf8\r\n\r\nhi\r\n",
                             mail_options=["SMTPUTF8"])
        assert refused == {}
    [f] = srv.wait_messages("jörg@example.test", 1)
    data = f.read_bytes()
    assert data.startswith("Return-Path: <rené@x.test>\n".encode())
    assert b"(postern) with UTF8SMTP id" in data


def test_non_ascii_address_without_smtputf8_gets_553_5_6_7(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<rené@x.test>".encode())
        assert r.last == ("553 5.6.7 Non-ASCII address needs MAIL FROM with "
                          "SMTPUTF8")
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        r = c.cmd("RCPT TO:<jörg@example.test>".encode())
        assert (r.code, r.enh) == (553, "5.6.7")


def test_mail_parameters_unknown_get_555_and_binarymime_504(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test> FOO=bar").last == (
            "555 5.5.4 MAIL FROM/RCPT TO parameter not recognized or not "
            "implemented: FOO")
        assert c.cmd("MAIL FROM:<a@x.test> BODY=BINARYMIME").last == (
            "504 5.5.4 Parameter value not implemented: BODY")
        r = c.cmd("MAIL FROM:<a@x.test> SIZE=abc")
        assert (r.code, r.enh) == (501, "5.5.4")
        assert c.cmd("MAIL FROM:<a@x.test> SIZE=100 BODY=7BIT").code == 250
        assert c.cmd("RCPT TO:<alice@example.test> XFOO=1").last == (
            "555 5.5.4 MAIL FROM/RCPT TO parameter not recognized or not "
            "implemented: XFOO")


def test_mail_parameters_after_helo_get_555(server):
    with server.client() as c:
        assert c.cmd("HELO client.test").code == 250
        r = c.cmd("MAIL FROM:<a@x.test> SIZE=100")
        assert (r.code, r.enh) == (555, "5.5.4")


# --- PIPELINING -------------------------------------------------------------

def test_pipelined_mail_rcpt_rcpt_data_in_one_write(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\nDATA\r\n")
        assert c.reply().last == "250 2.1.0 Sender <s@x.test> OK"
        assert c.reply().last == "250 2.1.5 Recipient <alice@example.test> OK"
        assert c.reply().last == ("550 5.1.1 Mailbox <nobody@example.test> "
                                  "does not exist")
        assert c.reply().last == "354 End data with <CR><LF>.<CR><LF>"
        c.send(b"Subject: p\r\n\r\npipelined\r\n.\r\nRSET\r\nNOOP\r\n")
        queue_id(c.reply())
        assert c.reply().last == "250 2.0.0 Flushed"
        assert c.reply().last == "250 2.0.0 OK"
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == b"pipelined\n"


def test_whole_pipelined_transactions_in_one_write(server):
    batch = b""
    for i in range(5):
        batch += (b"MAIL FROM:<s@x.test>\r\nRCPT TO:<bob@example.test>\r\n"
                  b"BDAT %d LAST\r\n" % len(b"Subject: %d\r\n\r\n" % i)
                  + b"Subject: %d\r\n\r\n" % i)
    with server.client() as c:
        c.ehlo()
        c.send(batch + b"QUIT\r\n")
        qids = []
        for i in range(5):
            assert c.reply().code == 250
            assert c.reply().code == 250
            qids.append(queue_id(c.reply()))
        assert c.reply().code == 221
        c.expect_closed()
    assert len(set(qids)) == 5
    server.wait_messages("bob@example.test", 5)


def test_client_that_reads_late_gets_every_reply_in_order(server):
    """Far more pipelined commands than the sockets hold (28 MB of
    replies) before the client reads anything: the server stops reading
    while its replies wait, writes what the socket takes, and finishes
    once the client reads - every reply once, in order - while it goes
    on serving other clients."""
    n = 2_000_000
    want = b"250 2.0.0 OK\r\n" * n
    with server.client() as c:
        c.ehlo()
        sender = threading.Thread(
            target=c.send, args=(b"NOOP\r\n" * n + b"QUIT\r\n",))
        sender.start()
        time.sleep(1)
        with server.client() as other:
            assert other.cmd("NOOP").last == "250 2.0.0 OK"
        got = bytearray()
        while len(got) < len(want):
            chunk = c.sock.recv(1 << 20)
            assert chunk, f"closed after {len(got)} octets"
            got += chunk
        c.buf = bytes(got[len(want):])
        assert got[:len(want)] == want
        assert c.reply().code == 221
        c.expect_closed()
        sender.join()


# --- CHUNKING ---------------------------------------------------------------

def bdat_txn(c, rcpt="alice@example.test"):
    assert c.cmd("MAIL FROM:<s@x.test>").code == 250
    assert c.cmd(f"RCPT TO:<{rcpt}>").code == 250


def test_bdat_single_chunk_last_is_queued(server):
    text = b"Subject: bdat\r\n\r\n.not stuffed\r\nbody\r\n"
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT %d LAST\r\n" % len(text) + text)
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == b".not stuffed\nbody\n"


def test_bdat_multi_chunk_then_bdat_0_last(server):
    chunks = [b"Subject: chunks\r\n\r\nfirst part, ", b"second part\r\nthi",
              b"rd\r\n"]
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        total = 0
        for ch in chunks:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            total += len(ch)
            assert c.reply().last == f"250 2.0.0 {total} octets received"
        c.send(b"BDAT 0 LAST\r\n")
        queue_id(c.reply())
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == \
        b"first part, second part\nthird\n"


def test_bdat_chunk_split_across_writes(server):
    text = b"Subject: slow\r\n\r\n" + b"y" * 100 + b"\r\n"
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT %d LAST\r\n" % len(text) + text[:10])
        c.send(text[10:50])
        c.send(text[50:])
        queue_id(c.reply())
    server.wait_messages("alice@example.test", 1)


def test_bdat_carrying_crlf_dot_crlf_is_one_message(server):
    """In BDAT "\\r\\n.\\r\\n" is text, not an end: the commands after it
    are part of the message (RFC 3030 2)."""
    text = (b"Subject: b\r\n\r\nbefore\r\n.\r\nMAIL FROM:<e@x.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT %d LAST\r\n" % len(text) + text)
        queue_id(c.reply())
        assert c.cmd("NOOP").last == "250 2.0.0 OK"
    [f] = server.wait_messages("alice@example.test", 1)
    assert split_message(f.read_bytes())[1] == (
        b"before\n.\nMAIL FROM:<e@x.test>\nRCPT TO:<bob@example.test>\n"
        b"DATA\n")
    assert server.message_files("bob@example.test") == []


def test_data_after_bdat_gets_503(server):
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT 4\r\nab\r\n")
        assert c.reply().code == 250
        assert c.cmd("DATA").last == ("503 5.5.1 Bad sequence of commands: "
                                      "DATA after BDAT in one transaction")


def test_bdat_without_transaction_reads_the_chunk_then_503(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"BDAT 6\r\nNOOP\r\n")
        assert c.reply().last == (
            "503 5.5.1 Bad sequence of commands: send MAIL first")
        assert c.cmd("NOOP").last == "250 2.0.0 OK"


def test_bdat_bad_size_gets_501_and_the_session_ends(server):
    with server.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT x\r\n")
        assert c.reply().last == "501 5.5.4 Syntax error; usage: BDAT <size> [LAST]"
        r = c.reply()
        assert (r.code, r.enh) == (421, "4.7.0")
        c.expect_closed()


def test_bdat_over_max_message_size_gets_552(make_server):
    srv = make_server(server={"max_message_size": 1024})
    with srv.client() as c:
        c.ehlo()
        bdat_txn(c)
        c.send(b"BDAT 2000 LAST\r\n" + b"z" * 2000)
        assert c.reply().last == ("552 5.3.4 Message size exceeds fixed "
                                  "maximum message size")
        assert c.cmd("NOOP").code == 250
    assert srv.total_messages() == 0


# --- other clients, other listeners ------------------------------------------

@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_delivers_to_alice(server):
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.port}", "--to",
         "alice@example.test", "--from", "swaks@x.test", "--helo",
         "swaks.test", "--header", "Subject: from swaks", "--body",
         "swaks body line"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  250 2.0.0 Ok: queued as" in p.stdout
    [f] = server.wait_messages("alice@example.test", 1)
    m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
    assert m["Subject"] == "from swaks"
    assert m.get_content().strip() == "swaks body line"


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_pipelining_and_bdat(server):
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.port}", "--to",
         "bob@example.test", "--from", "swaks@x.test", "--pipeline",
         "--body", "piped"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    server.wait_messages("bob@example.test", 1)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_listener_on_loopback(make_server, tmp_path):
    port6 = free_port("::1")
    srv = make_server(start=False)
    srv.listen = f"127.0.0.1:{srv.port}, [::1]:{port6}"
    srv.write_config()
    srv.start()
    with SmtpClient("::1", port6) as c:
        assert c.banner.code == 220
        r = c.cmd("EHLO v6.test")
        assert r.lines[0] == f"250-{HOSTNAME} Hello v6.test [IPv6:::1]"
        queue_id(c.mail_txn("s@x.test", ["alice@example.test"],
                            b"Subject: v6\r\n\r\nover IPv6\r\n"))
    [f] = srv.wait_messages("alice@example.test", 1)
    assert b"Received: from v6.test ([IPv6:::1])" in f.read_bytes()
    with srv.client() as c:  # the IPv4 listener still answers
        assert c.banner.code == 220


# --- timeouts, limits, shutdown (421) ----------------------------------------

def test_idle_timeout_gets_421_4_4_2_and_close(make_server):
    srv = make_server(server={"idle_timeout": 1})
    with srv.client() as c:
        c.ehlo()
        r = c.reply()  # nothing sent: the server speaks first
        assert r.last == (f"421 4.4.2 {HOSTNAME} Timeout exceeded, closing "
                          "connection")
        c.expect_closed()


def test_idle_timeout_during_data_drops_the_message(make_server):
    srv = make_server(server={"idle_timeout": 1})
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: half\r\n\r\nhalf a message\r\n")
        r = c.reply()
        assert (r.code, r.enh) == (421, "4.4.2")
        c.expect_closed()
    srv.stop()
    assert srv.total_messages() == 0
    assert srv.log_count("ev=queued") == 0


def test_21_bad_commands_get_421_4_7_0(server):
    with server.client() as c:
        for i in range(20):
            assert c.cmd(f"BOGUS{i}").last == (
                "500 5.5.2 Syntax error, command unrecognized")
        r = c.cmd("BOGUS20")
        assert r.lines == ["500 5.5.2 Syntax error, command unrecognized"]
        r = c.reply()
        assert r.last == (f"421 4.7.0 {HOSTNAME} Too many errors, closing "
                          "connection")
        c.expect_closed()


def test_good_commands_between_bad_ones_do_not_reset_the_count(make_server):
    srv = make_server(server={"max_bad_commands": 3})
    with srv.client() as c:
        for i in range(3):
            assert c.cmd("BOGUS").code == 500
            assert c.cmd("NOOP").code == 250
        assert c.cmd("BOGUS").code == 500
        assert (c.reply().code, c.is_closed()) == (421, True)


def test_max_connections_reached_gets_421_4_3_2_at_greeting(make_server):
    srv = make_server(server={"max_connections": 2})
    with srv.client() as a, srv.client() as b:
        assert (a.banner.code, b.banner.code) == (220, 220)
        with srv.client(read_banner=False) as c:
            assert c.reply().last == (f"421 4.3.2 {HOSTNAME} Too many "
                                      "connections, try again later")
            c.expect_closed()
        assert a.cmd("QUIT").code == 221
        a.expect_closed()
    srv.wait_log(r"ev=disconnect", 3)
    with srv.client() as d:
        assert d.banner.code == 220


def test_max_connections_per_client_gets_421_4_7_0(make_server):
    srv = make_server(server={"max_connections_per_client": 1})
    with srv.client() as a:
        assert a.banner.code == 220
        with srv.client(read_banner=False) as b:
            assert b.reply().last == (
                f"421 4.7.0 {HOSTNAME} Too many connections from your "
                "address, try again later")
            b.expect_closed()
        assert a.cmd("NOOP").code == 250


def test_sigterm_gives_idle_client_421_4_3_2_and_exits_0(server):
    with server.client() as c:
        c.ehlo()
        server.proc.send_signal(signal.SIGTERM)
        assert c.reply().last == (f"421 4.3.2 {HOSTNAME} Service shutting "
                                  "down, closing transmission channel")
        c.expect_closed()
    assert server.proc.wait(10) == 0
    server.stop()


def test_sigterm_mid_data_drops_the_transaction_whole(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: half\r\n\r\nfirst half\r\n")
        server.proc.send_signal(signal.SIGTERM)
        r = c.reply()
        assert (r.code, r.enh) == (421, "4.3.2")
        c.expect_closed()
    assert server.proc.wait(10) == 0
    server.stop()
    assert server.total_messages() == 0


def test_sigterm_with_no_clients_exits_0_quickly(server):
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(5) == 0
    server.stop()
    assert "ev=stopped" in server.log()


def test_a_client_that_vanishes_mid_data_leaves_nothing(server):
    c = server.client()
    c.ehlo()
    assert c.cmd("MAIL FROM:<s@x.test>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: cut\r\n\r\npartial")
    c.close()
    server.wait_log(r"ev=disconnect .*messages=0")
    with server.client() as d:  # the server is fine
        d.ehlo()
        queue_id(d.mail_txn("s@x.test", ["bob@example.test"], b"x\r\n"))
    server.wait_messages("bob@example.test", 1)
    assert server.message_files("alice@example.test") == []


def test_log_lines_carry_qid_client_sender_and_codes(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"x\r\n.\r\n")
        qid = queue_id(c.reply())
    server.wait_messages("alice@example.test", 1)
    server.wait_log(rf"ev=delivered qid={qid}")
    log = server.log()
    assert "reply=550 enh=5.1.1 reason=user_unknown" in log
    assert f"ev=queued qid={qid}" in log
    assert "from=s@x.test" in log
    assert "client=127.0.0.1:" in log


def test_sigterm_racing_the_final_dot_gives_250_then_421_or_421_alone(
        make_server):
    """Whichever comes first, a 250 means delivered and no 250 means
    nothing stored (REPLY-CODES 421: a message whose 250 was sent is never
    lost; a transaction in progress is dropped whole)."""
    for attempt in range(5):
        srv = make_server()
        with srv.client() as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<s@x.test>").code == 250
            assert c.cmd("RCPT TO:<alice@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: race\r\n\r\n" + b"r" * 500 + b"\r\n.\r\n")
            srv.proc.send_signal(signal.SIGTERM)
            first = c.reply()
            if first.code == 250:
                queue_id(first)
                assert c.reply().code == 421
            else:
                assert (first.code, first.enh) == (421, "4.3.2"), first
            c.expect_closed()
        assert srv.proc.wait(15) == 0
        srv.stop()
        assert srv.total_messages() == (1 if first.code == 250 else 0)


def test_sigterm_says_421_to_every_idle_client(make_server):
    srv = make_server(server={"max_connections_per_client": 50})
    clients = [srv.client() for _ in range(30)]
    try:
        for c in clients:
            c.ehlo()
        srv.proc.send_signal(signal.SIGTERM)
        for c in clients:
            r = c.reply()
            assert (r.code, r.enh) == (421, "4.3.2"), r
            c.expect_closed()
    finally:
        for c in clients:
            c.close()
    assert srv.proc.wait(15) == 0
    srv.stop()
