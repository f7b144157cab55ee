"""The DSN extension on the receiving side (RFC 3461) and 455 (REPLY-
CODES.md row 455): DSN is offered, RET/ENVID/NOTIFY/ORCPT are accepted
and kept with the message, malformed ones get 501, and while the spool
cannot spare room for the notices a DSN request gets 455 4.3.1 - a
later retry can succeed, and the same command without the parameter
succeeds now.
"""

from postern_test import queue_id


def test_ehlo_offers_dsn(server):
    with server.client() as c:
        assert "DSN" in c.ehlo().lines[1:] or any(
            line.endswith("DSN") for line in c.ehlo().lines)


def test_dsn_parameters_are_accepted_and_kept_in_the_spool(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test> RET=HDRS ENVID=QQ+2B314").code \
            == 250
        assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=FAILURE,DELAY "
                     "ORCPT=rfc822;alice+2Bold@example.test").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: dsn\r\n\r\nbody\r\n.\r\n")
        qid = queue_id(c.reply())
    server.wait_messages("alice@example.test", 1)
    seg = b"".join(p.read_bytes() for p in server.spool.glob("*.log"))
    assert b"ret 2\nenvid QQ+314\n" in seg
    assert b"\t12\trfc822;alice+old@example.test\n" in seg
    assert qid


def test_malformed_dsn_parameters_get_501(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test> RET=MAYBE").code == 501
        assert c.cmd("MAIL FROM:<s@x.test> ENVID=a=b").code == 501
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES",
                    "NOTIFY=", "ORCPT=alice@example.test",
                    "NOTIFY=FAILURE NOTIFY=DELAY"):
            r = c.cmd(f"RCPT TO:<alice@example.test> {bad}")
            assert (r.code, r.enh) == (501, "5.5.4"), (bad, r)
        assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=never").code \
            == 250


def test_dsn_request_gets_455_while_the_notice_spool_is_short(make_server):
    srv = make_server(spool={"reserve": 0,
                             "dsn_reserve": 18446744073709551615})
    with srv.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@x.test> RET=FULL")
        assert (r.code, r.enh) == (455, "4.3.1"), r
        assert r.last.startswith("455 4.3.1 Cannot accept DSN parameters")
        # The same MAIL without the parameter succeeds now.
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        r = c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS")
        assert (r.code, r.enh) == (455, "4.3.1"), r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
