"""450 4.2.1 for a local user on hold (REPLY-CODES.md row 450: a
temporary policy restriction): the flag `hold` in the users file, lifted
by editing the file and `postern ctl reload`, after which the same
recipient is accepted - the retry a sender makes succeeds.
"""
import subprocess

from postern_test import POSTERN, USERS


def test_user_on_hold_gets_450_then_is_accepted_after_reload(make_server):
    srv = make_server(users=USERS + ["carla@example.test hold"])
    with srv.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@x.test>").code == 250
        assert c.cmd("RCPT TO:<carla+x@example.test>").last == (
            "450 4.2.1 Mailbox <carla+x@example.test> is temporarily "
            "unavailable (on hold); try again later")
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    (srv.dir / "users").write_text("\n".join(USERS + ["carla@example.test"])
                                   + "\n")
    p = subprocess.run([POSTERN, "ctl", "reload", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "ok reloaded\n"
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>")
        assert c.cmd("RCPT TO:<carla+x@example.test>").code == 250


def test_mailbox_over_quota_gets_452_4_2_2_and_others_still_accepted(
        make_server):
    srv = make_server(local={"quota": 2000})
    with srv.client() as c:
        c.ehlo()
        r = c.mail_txn("s@x.test", ["alice@example.test"],
                       b"Subject: big\r\n\r\n" + (b"x" * 500 + b"\r\n") * 5)
        assert r.code == 250, r
    srv.wait_messages("alice@example.test", 1)
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@x.test>")
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.last == ("452 4.2.2 Mailbox <alice@example.test> is full; "
                          "try again later")
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    # The user makes room: the sender's retry goes through.
    for f in srv.message_files("alice@example.test"):
        f.unlink()
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@x.test>")
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
