"""mbox delivery with the locks mail readers take ([local] maildir =
mbox:PATH) and 450 for a locked mailbox (REPLY-CODES.md row 450: a local
mailbox locked or busy): while another process holds the fcntl lock or
the dotlock, RCPT for the user gets 450 4.2.1 and a queued delivery
waits; when the lock goes, mail flows again.  The file is read back with
Python's mailbox.mbox.
"""
import fcntl
import mailbox
import os

from postern_test import poll

MBOX = {"maildir": "mbox:mbox/%u"}


def mbox_path(srv, user):
    return srv.dir / "mbox" / user


def send(c, body, to="alice@example.test"):
    assert c.cmd("MAIL FROM:<s@x.test>").code == 250
    assert c.cmd(f"RCPT TO:<{to}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(body + b".\r\n")
    return c.reply()


def test_messages_are_appended_and_from_lines_quoted(make_server):
    srv = make_server(local=MBOX)
    with srv.client() as c:
        c.ehlo()
        assert send(c, b"Subject: one\r\n\r\nFrom the start\r\n").code == 250
        assert send(c, b"Subject: two\r\n\r\n>From quoted\r\n").code == 250
    path = mbox_path(srv, "alice")
    poll(lambda: path.exists() and len(mailbox.mbox(str(path))) == 2,
         what="two messages in the mbox")
    box = mailbox.mbox(str(path))
    msgs = [box[k] for k in box.keys()]
    assert [m["Subject"] for m in msgs] == ["one", "two"]
    # Python reads mboxo: the quoting ">" stays in what it returns.
    assert msgs[0].get_payload() == ">From the start\n"
    assert b"\n>From the start\n" in path.read_bytes()
    assert b"\n>>From quoted\n" in path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_locked_mbox_gets_450_4_2_1_and_queued_mail_waits(make_server):
    srv = make_server(local=MBOX)
    path = mbox_path(srv, "alice")
    with srv.client() as c:
        c.ehlo()
        assert send(c, b"Subject: first\r\n\r\nmake the file\r\n").code == 250
    poll(lambda: path.exists() and len(mailbox.mbox(str(path))) == 1,
         what="the first message")
    with srv.client() as c:
        c.ehlo()
        # Accepted while free, then a reader locks the mailbox before
        # delivery: the queued message must wait, not fail.
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        fd = os.open(path, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: second\r\n\r\nwaited\r\n.\r\n")
            assert c.reply().code == 250
            r = c.cmd("MAIL FROM:<s@x.test>")
            r = c.cmd("RCPT TO:<alice@example.test>")
            assert r.last == ("450 4.2.1 Mailbox <alice@example.test> is "
                              "locked by another process; try again later")
            c.cmd("RSET")
            srv.wait_log(r"ev=deferred .*reason=mailbox_locked")
            assert len(mailbox.mbox(str(path))) == 1
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)
        poll(lambda: len(mailbox.mbox(str(path))) == 2,
             what="the waiting message after the lock went")
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250


def test_dotlock_also_counts_as_locked(make_server):
    srv = make_server(local=MBOX)
    path = mbox_path(srv, "bob")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name("bob.lock")
    lock.write_text("")
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@x.test>")
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert (r.code, r.enh) == (450, "4.2.1"), r
        lock.unlink()
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
