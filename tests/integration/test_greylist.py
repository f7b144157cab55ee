"""Greylisting over SMTP (REPLY-CODES.md row 450): the first sight of a
client-net/sender/recipient triplet gets 450 4.2.0 naming the wait, a
retry after the delay is accepted and delivered, allow-listed clients pass
at once, two servers sharing one Redis share the state, and a store that
fails gives 451 4.3.0 - never a silent accept.
"""
import re
import shutil
import socket
import subprocess
import time

import pytest

from postern_test import free_port, poll


def rcpt(srv, to="alice@example.test", sender="s@sender.test"):
    with srv.client() as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        return c.cmd(f"RCPT TO:<{to}>")


def test_first_try_450_names_the_wait_and_the_retry_after_it_passes(
        make_server):
    srv = make_server(greylist={"enabled": "true", "delay": 2,
                                "store": "sqlite:greylist.db"})
    r = rcpt(srv)
    assert r.last == "450 4.2.0 Greylisted, retry in 2 s"
    early = rcpt(srv)
    m = re.fullmatch(r"450 4\.2\.0 Greylisted, retry in ([12]) s", early.last)
    assert m, early
    time.sleep(int(m.group(1)) + 0.2)
    with srv.client() as c:
        c.ehlo()
        qid = c.mail_txn("s@sender.test", ["alice@example.test"],
                         b"Subject: grey\r\n\r\nsecond try\r\n")
        assert qid.code == 250, qid
    srv.wait_messages("alice@example.test", 1)
    # Confirmed: the same triplet passes without waiting from now on.
    assert rcpt(srv).code == 250
    # Another recipient is another triplet.
    assert rcpt(srv, to="bob@example.test").code == 450


def test_allow_listed_client_is_not_greylisted(make_server):
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": "sqlite:greylist.db",
                                "allow": "127.0.0.0/8"})
    assert rcpt(srv).code == 250


def test_unknown_user_is_refused_before_greylisting(make_server):
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": "sqlite:greylist.db"})
    assert rcpt(srv, to="nobody@example.test").code == 550


def test_locked_sqlite_store_gives_451_4_3_0(make_server):
    import sqlite3
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": "sqlite:greylist.db"})
    assert rcpt(srv).code == 450
    # Another process holds the database's write lock past the server's
    # busy timeout: the check cannot be made, so it must not pass.
    db = sqlite3.connect(str(srv.dir / "greylist.db"), timeout=0,
                         isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        r = rcpt(srv, to="bob@example.test")
        assert (r.code, r.enh) == (451, "4.3.0"), r
    finally:
        db.execute("ROLLBACK")
        db.close()
    srv.wait_log(r"ev=local_error .*part=greylist")
    # Once the lock is gone the policy works again.
    assert rcpt(srv, to="bob@example.test").code == 450


redis_bin = shutil.which("redis-server")


@pytest.fixture
def redis(tmp_path):
    port = free_port()
    p = subprocess.Popen([redis_bin, "--port", str(port), "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="redis-server to listen")
    yield port, p
    p.terminate()
    p.wait(10)


@pytest.mark.skipif(redis_bin is None, reason="redis-server not installed")
def test_two_nodes_sharing_redis_share_the_greylist(make_server, redis):
    port, _ = redis
    grey = {"enabled": "true", "delay": 2,
            "store": f"redis://127.0.0.1:{port}/0"}
    a = make_server(greylist=grey)
    b = make_server(greylist=grey)
    assert rcpt(a).last == "450 4.2.0 Greylisted, retry in 2 s"
    time.sleep(2.2)
    # Greylisted on one node, accepted on the other.
    assert rcpt(b).code == 250


@pytest.mark.skipif(redis_bin is None, reason="redis-server not installed")
def test_redis_down_gives_451_4_3_0(make_server, redis):
    port, proc = redis
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": f"redis://127.0.0.1:{port}/0"})
    assert rcpt(srv).code == 450
    proc.terminate()
    proc.wait(10)
    r = rcpt(srv, to="bob@example.test")
    assert (r.code, r.enh) == (451, "4.3.0"), r
    srv.wait_log(r"ev=local_error .*part=greylist")


def test_sqlite_store_in_a_directory_not_made_yet(make_server):
    srv = make_server(greylist={"enabled": "true", "delay": 60,
                                "store": "sqlite:state/grey/greylist.db"})
    assert rcpt(srv).code == 450
    assert (srv.dir / "state" / "grey" / "greylist.db").exists()
