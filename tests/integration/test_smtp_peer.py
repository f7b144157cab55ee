"""The scripted SMTP peer (tests/pylib/smtp_peer.py) is itself tested here,
driven by Python's smtplib and by raw sockets, so that a failing outbound
test points at postern and not at the peer: scripts are consumed in order
with the last item repeating, per-recipient scripts win, dot-stuffing is
undone, bare line ends are caught, pipelined commands are answered in
order and recognisable as pipelined, LMTP gives one reply per recipient.
"""
import smtplib
import socket
import time

import pytest

from smtp_peer import (CLOSE, DEFAULT_CAPS, Delay, Dsn, Peer, moved,
                       parse_queue_list)


@pytest.fixture
def peers():
    started = []

    def make(**kw):
        p = Peer(**kw).start()
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()


def raw(peer):
    s = socket.create_connection((peer.host, peer.port), 10)
    s.settimeout(10)
    return s, s.makefile("rb")


def read_reply(f):
    lines = []
    while True:
        ln = f.readline()
        assert ln.endswith(b"\r\n"), ln
        lines.append(ln[:-2].decode())
        if ln[3:4] == b" ":
            return lines


def test_plain_delivery_is_recorded_byte_exact(peers):
    p = peers()
    msg = (b"Subject: dots\r\n\r\n.x\r\n..y\r\nplain\r\n.\r\n"
           b"last line\r\n")
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        code, text = s.ehlo("client.test")
        assert code == 250
        for cap in ("pipelining", "size", "8bitmime", "smtputf8", "dsn"):
            assert s.has_extn(cap), cap
        assert not s.has_extn("starttls")
        assert not s.has_extn("chunking")
        assert s.sendmail("a@x.test", ["b@remote.test", "c@remote.test"],
                          msg, mail_options=["BODY=8BITMIME"],
                          rcpt_options=["NOTIFY=FAILURE"]) == {}
    [t] = p.wait_messages(1)
    assert t.mail_from == "a@x.test"
    assert t.mail_params == {"SIZE": str(len(msg)), "BODY": "8BITMIME"}
    assert [(r.address, r.params) for r in t.rcpts] == [
        ("b@remote.test", {"NOTIFY": "FAILURE"}),
        ("c@remote.test", {"NOTIFY": "FAILURE"})]
    assert t.data == msg              # smtplib stuffed, the peer unstuffed
    assert b"\r\n..x\r\n...y\r\n" in t.raw and t.raw.endswith(b"\r\n.\r\n")
    assert t.bad_line_ends == []
    assert t.delivered_to == ["b@remote.test", "c@remote.test"]
    assert p.connections[0].verbs() == ["EHLO", "MAIL", "RCPT", "RCPT",
                                        "DATA", "QUIT"]
    p.wait_closed()
    assert p.protocol_errors() == []


def test_scripts_are_consumed_in_order_and_the_last_repeats(peers):
    p = peers(script={"greeting": ["421 4.3.2 busy", "220 ok"],
                      "RCPT": ["450 4.2.0 Greylisted, retry in 2 s",
                               "451 4.3.0 again", "250 2.1.5 fine"]})
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP(p.host, p.port, timeout=10)
    assert e.value.smtp_code == 421
    p.wait_closed()  # a 421 closes the connection
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@x.test")
        assert s.rcpt("b@remote.test")[0] == 450
        assert s.rcpt("b@remote.test")[0] == 451
        assert s.rcpt("b@remote.test")[0] == 250
        assert s.rcpt("b@remote.test")[0] == 250   # the last repeats
        s.rset()
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:  # still 220 ok
        assert s.ehlo()[0] == 250
    assert len(p.connections) == 3
    assert len(p.rcpt_attempts("b@remote.test")) == 4
    assert p.messages == []


def test_a_4xx_forever_and_per_recipient_scripts(peers):
    p = peers(script={"RCPT": ["451 4.3.0 try later"]},
              rcpt={"gone@remote.test": ["550 5.1.1 no such user"],
                    "Moved@Remote.test": [moved("new@remote.test")],
                    "grey@remote.test": ["450 4.2.0 grey", "250 ok"]})
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@x.test")
        for _ in range(3):
            assert s.rcpt("any@remote.test")[0] == 451
        assert s.rcpt("gone@remote.test") == (550, b"5.1.1 no such user")
        assert s.rcpt("moved@remote.test") == (
            551, b"5.1.6 User not local; please try <new@remote.test>")
        assert s.rcpt("grey@remote.test")[0] == 450
        assert s.rcpt("grey@remote.test")[0] == 250
        assert s.data(b"x\r\n")[0] == 250
    [t] = p.wait_messages(1)
    assert t.delivered_to == ["grey@remote.test"]
    # The per-recipient entries did not use up the general RCPT script.
    assert p.counts["RCPT"] == 3


def test_pipelined_commands_are_answered_in_order_and_recognised(peers):
    p = peers(batch_wait=0.2)
    s, f = raw(p)
    with s:
        assert read_reply(f)[0].startswith("220 ")
        s.sendall(b"EHLO c.test\r\n")
        assert read_reply(f)[-1] == "250 ENHANCEDSTATUSCODES"
        s.sendall(b"MAIL FROM:<a@x.test> SIZE=20\r\nRCPT TO:<b@r.test>\r\n"
                  b"RCPT TO:<c@r.test>\r\nDATA\r\n")
        assert [read_reply(f)[0][:3] for _ in range(4)] == \
            ["250", "250", "250", "354"]
        s.sendall(b"one\r\n.\r\n")
        assert read_reply(f)[0].startswith("250 2.0.0 Ok: queued as")
        # One by one: each command after the previous reply.
        s.sendall(b"MAIL FROM:<a@x.test>\r\n")
        read_reply(f)
        s.sendall(b"RCPT TO:<b@r.test>\r\n")
        read_reply(f)
        s.sendall(b"DATA\r\n")
        read_reply(f)
        s.sendall(b"two\r\n.\r\nQUIT\r\n")
        assert read_reply(f)[0].startswith("250 ")
        assert read_reply(f)[0].startswith("221 ")
    p.wait_messages(2)
    cmds = p.connections[0].commands
    batch = [c.replies_sent for c in cmds if c.verb in ("MAIL", "RCPT",
                                                        "DATA")]
    assert batch[:4] == [2, 2, 2, 2]          # pipelined: one batch
    assert batch[4:] == [batch[4], batch[4] + 1, batch[4] + 2]  # lock-step
    assert p.messages[0].mail_params == {"SIZE": "20"}
    assert p.messages[1].data == b"two\r\n"


def test_bare_line_ends_in_data_are_caught(peers):
    p = peers()
    s, f = raw(p)
    with s:
        read_reply(f)
        s.sendall(b"HELO c\r\n")
        read_reply(f)
        for c in (b"MAIL FROM:<>\r\n", b"RCPT TO:<b@r.test>\r\n",
                  b"DATA\r\n"):
            s.sendall(c)
            read_reply(f)
        s.sendall(b"good\r\nbare lf\nbare\rcr\r\n.\r\n")
        assert read_reply(f)[0][:3] == "250"
    [t] = p.wait_messages(1)
    assert t.mail_from == ""
    assert t.bad_line_ends == [b"bare lf\n", b"bare\rcr\r\n"]


def test_caps_delays_and_close(peers):
    # None in a script is the default reply (here: the caps).
    p = peers(caps=["SIZE 1000"],
              script={"DOT": [Delay(0.5, "250 slow ok"), CLOSE],
                      "EHLO": ["502 5.5.1 no EHLO", None]})
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        assert s.ehlo()[0] == 502
        assert s.helo()[0] == 250
        s.ehlo()  # second EHLO: caps
        assert s.has_extn("size") and not s.has_extn("pipelining")
        s.mail("a@x.test")
        s.rcpt("b@r.test")
        t0 = time.monotonic()
        assert s.data(b"x\r\n") == (250, b"slow ok")
        assert time.monotonic() - t0 >= 0.45
        s.mail("a@x.test")
        s.rcpt("b@r.test")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.data(b"y\r\n")  # CLOSE: the peer hangs up, no reply
    assert [t.dot_reply for t in p.transactions] == ["250 slow ok", None]
    assert len(p.messages) == 1


def test_lmtp_gives_one_reply_per_recipient(peers, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    p = peers(unix=path, lmtp=True,
              rcpt={"nobody@example.test": ["550 5.1.1 unknown"]},
              lmtp_dot={"bob@example.test": ["452 4.2.2 over quota"]})
    lm = smtplib.LMTP(path)
    try:
        assert lm.docmd("EHLO c.test")[0] == 500   # LMTP wants LHLO
        assert lm.ehlo("c.test")[0] == 250          # smtplib.LMTP: LHLO
        assert lm.has_extn("pipelining")
        lm.mail("a@x.test")
        assert lm.rcpt("alice@example.test")[0] == 250
        assert lm.rcpt("bob@example.test")[0] == 250
        assert lm.rcpt("nobody@example.test")[0] == 550
        lm.putcmd("data")
        assert lm.getreply()[0] == 354
        lm.send(b"Subject: l\r\n\r\nbody\r\n.\r\n")
        assert lm.getreply() == (250, b"2.0.0 <alice@example.test> Saved")
        assert lm.getreply() == (452, b"4.2.2 over quota")
        lm.quit()
    finally:
        lm.close()
    [t] = p.wait_messages(1)
    assert t.delivered_to == ["alice@example.test"]
    assert t.data == b"Subject: l\r\n\r\nbody\r\n"


def test_wait_helpers_time_out_with_a_useful_message(peers):
    p = peers()
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="1 accepted messages"):
        p.wait_messages(1, timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_default_caps_have_no_starttls():
    assert "STARTTLS" not in DEFAULT_CAPS
    assert not any(c.startswith("CHUNKING") for c in DEFAULT_CAPS)


def test_the_queue_list_parser_follows_the_documented_format():
    text = ("0000019a6b3c2d10  4123  2026-11-25T14:02:11Z  "
            "<alice@example.test>\n"
            "    bob@remote.test  deferred  attempts=2  "
            "next=2026-11-25T14:07:11Z  last='450 4.2.0 Greylisted, retry "
            "in 60 s'\n"
            "1 message, 1 recipient\n")
    q = parse_queue_list(text)
    assert q == {"0000019a6b3c2d10": {
        "size": 4123, "arrival": "2026-11-25T14:02:11Z",
        "sender": "alice@example.test",
        "rcpts": {"bob@remote.test": {
            "state": "deferred", "attempts": 2,
            "next": "2026-11-25T14:07:11Z",
            "last": "450 4.2.0 Greylisted, retry in 60 s"}}}}
    with pytest.raises(AssertionError):
        parse_queue_list("garbage line\n")


def test_the_dsn_parser_reads_a_report():
    import email
    import email.policy
    text = (
        "From: MAILER-DAEMON@mx.example.test\r\nTo: alice@example.test\r\n"
        "Subject: Undelivered\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; "
        "boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "It failed.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        "Final-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such\r\n"
        "  user\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Subject: hi\r\n\r\n--B--\r\n")
    d = Dsn(email.message_from_string(text, policy=email.policy.default))
    r = d.recipient("bob@remote.test")
    assert r["action"] == "failed" and r["status"] == "5.1.1"
    assert r["diagnostic-code"] == "smtp; 550 5.1.1 no such user"
    assert d.final_recipients() == ["bob@remote.test"]
    assert b"Subject: hi" in d.original_text()


def test_starttls_when_offered(peers):
    import ssl
    from smtp_peer import peer_tls_context
    p = peers(caps=DEFAULT_CAPS + ["STARTTLS"], tls_context=peer_tls_context())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert s.starttls(context=ctx)[0] == 220
        s.ehlo()
        assert s.sendmail("a@x.test", ["b@r.test"], b"tls\r\n") == {}
    [t] = p.wait_messages(1)
    assert t.data == b"tls\r\n"
    assert p.connections[0].verbs() == ["EHLO", "STARTTLS", "EHLO", "MAIL",
                                        "RCPT", "DATA", "QUIT"]
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.starttls(context=ctx)
        s.ehlo()
        assert not s.has_extn("starttls")  # not again under TLS
    assert p.connections[0].tls


def test_submit_helper_logs_in_as_alice_and_gets_a_queue_id(make_server):
    # The injection path of the outbound tests, against today's server:
    # STARTTLS + AUTH on the submission port, mail to a local user.
    from smtp_peer import outbound_server, submit
    srv = outbound_server(make_server)
    qid = submit(srv, ["bob@example.test"])
    assert qid
    srv.wait_messages("bob@example.test", 1)


def test_the_dsn_parser_reads_a_global_report():
    import email
    import email.policy
    text = (
        "Content-Type: multipart/report; report-type=delivery-status; "
        "boundary=\"B\"\r\nMIME-Version: 1.0\r\n\r\n--B\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nIt failed.\r\n--B\r\n"
        "Content-Type: message/global-delivery-status\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        "Final-Recipient: utf-8; b\u00f8b@remote.test\r\nAction: failed\r\n"
        "Status: 5.6.7\r\n\r\n--B--\r\n").encode()
    d = Dsn(email.message_from_bytes(text, policy=email.policy.default))
    assert d.status_type == "message/global-delivery-status"
    assert d.per_message == {"reporting-mta": "dns; mx.example.test"}
    r = d.recipient("b\u00f8b@remote.test")
    assert (r["action"], r["status"]) == ("failed", "5.6.7")


def test_greylist_mode_refuses_until_the_delay_has_passed(peers):
    p = peers(greylist=1)
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@x.test")
        code, text = s.rcpt("b@r.test")
        assert (code, text.endswith(b"Greylisted, retry in 1 s")) == \
            (450, True)
        assert s.rcpt("c@r.test")[0] == 450     # its own pair
        time.sleep(0.5)
        assert s.rcpt("b@r.test")[0] == 450     # too early
        time.sleep(0.6)
        assert s.rcpt("b@r.test")[0] == 250     # 1.1 s after first sight
        s.rset()
        s.mail("other@x.test")
        assert s.rcpt("b@r.test")[0] == 450     # a new sender: a new pair


def test_no_valid_recipients_keeps_the_transaction_open_until_rset(peers):
    p = peers(script={"RCPT": ["450 4.2.0 later"]})
    with smtplib.SMTP(p.host, p.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@x.test")
        assert s.rcpt("b@r.test")[0] == 450
        assert s.docmd("DATA")[0] == 554
        assert s.mail("a@x.test")[0] == 503      # nested MAIL
        assert s.rset()[0] == 250
        assert s.mail("a@x.test")[0] == 250


def test_assert_clean_catches_bare_lf_and_early_data(peers):
    p = peers()
    s, f = raw(p)
    with s:
        read_reply(f)
        s.sendall(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@r.test>\r\n")
        for _ in range(3):
            read_reply(f)
        s.sendall(b"DATA\r\nearly\r\n")     # data before the 354
        read_reply(f)
        s.sendall(b"bare\n.\r\n")
        read_reply(f)
    p.wait_messages(1)
    with pytest.raises(AssertionError, match="without CRLF"):
        p.assert_clean()
    assert any("before the 354" in e for e in p.protocol_errors())


def test_an_lmtp_transaction_is_seen_whole_by_the_waiters(peers, tmp_path):
    path = str(tmp_path / "lmtp2.sock")
    p = peers(unix=path, lmtp=True,
              lmtp_dot={"bob@example.test": [Delay(0.5, "250 2.0.0 late")]})
    lm = smtplib.LMTP(path)
    try:
        lm.ehlo("c.test")
        lm.mail("a@x.test")
        lm.rcpt("alice@example.test")
        lm.rcpt("bob@example.test")
        lm.putcmd("data")
        assert lm.getreply()[0] == 354
        lm.send(b"x\r\n.\r\n")
        [t] = p.wait_messages(1, 10)
        # Not returned after alice's reply with bob's still to come.
        assert t.delivered_to == ["alice@example.test", "bob@example.test"]
        assert lm.getreply()[0] == 250 and lm.getreply()[0] == 250
    finally:
        lm.close()
