"""`postern queue` (CONTRACT.md; docs/design/outbound.md "postern queue"):
list in the documented format (a QID line, indented recipient lines with
state, attempts, next and last reply, a count line), show ID, hold ID (no
attempts while held; release delivers), delete ID (gone, no bounce),
flush (a deferred recipient is tried at once), an unknown ID exits 1 with
one line, --help exits 0, a usage error exits 2.  The messages wait at a
scripted peer (tests/pylib/smtp_peer.py) that defers them.
"""
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from postern_test import POSTERN, poll
from smtp_peer import (ALICE, Delay, Dsn, Peer, message, outbound_server,
                       parse_queue_list, queue, queue_list, read_message,
                       submit)

T = 40.0
BOB = "bob@remote.test"
CAROL = "carol@remote.test"
GREY = "450 4.2.0 Greylisted, retry in 600 s"


@pytest.fixture
def routed(make_server):
    started = []

    def make(delivery=None, **peer_kw):
        p = Peer(**peer_kw).start()
        started.append(p)
        dl = {"retry": "600"}
        dl.update(delivery or {})
        srv = outbound_server(make_server,
                              routes={"remote.test": p.address},
                              delivery=dl)
        return srv, p
    yield make
    for p in started:
        p.stop()
    for p in started:
        p.assert_clean()


def rcpt_state(srv, qid, rcpt):
    return queue_list(srv).get(qid, {}).get("rcpts", {}).get(rcpt)


def wait_state(srv, qid, rcpt, state, timeout=T):
    def ok():
        r = rcpt_state(srv, qid, rcpt)
        return r if r and r["state"] == state else None
    return poll(ok, timeout, interval=0.2,
                what=f"{rcpt} of {qid} {state} in `postern queue list`")


def when(stamp):
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)


def test_list_shows_a_deferred_message_in_the_documented_format(routed):
    srv, p = routed(rcpt={BOB: [GREY]})
    msg = message("listed")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    qid = submit(srv, [BOB, CAROL], msg)
    wait_state(srv, qid, BOB, "deferred")
    p.wait_messages(1, T)                       # carol got it
    out = queue(srv, "list", check=0).stdout
    lines = out.splitlines()
    q = parse_queue_list(out)
    assert list(q) == [qid], out
    m = q[qid]
    assert m["sender"] == ALICE
    assert m["size"] >= len(msg), (m["size"], len(msg))
    assert before - timedelta(seconds=2) <= when(m["arrival"]) <= \
        datetime.now(timezone.utc) + timedelta(seconds=2), m
    # Only the recipient still waiting is listed.
    assert list(m["rcpts"]) == [BOB], out
    r = m["rcpts"][BOB]
    assert r["attempts"] == 1, r
    assert r["last"] == GREY, r
    nxt = when(r["next"])
    assert datetime.now(timezone.utc) + timedelta(seconds=400) < nxt < \
        datetime.now(timezone.utc) + timedelta(seconds=700), r
    assert lines[0].startswith(qid + "  ")
    assert lines[1].startswith("    " + BOB + "  deferred  attempts=1  ")
    assert lines[-1] == "1 message, 1 recipient", out


def test_list_shows_active_and_queued(routed):
    # The peer sits on its greeting: the first message is being sent,
    # the second waits for the only connection.
    srv, p = routed(delivery={"max_connections_per_destination": 1},
                    script={"greeting": [Delay(60, "220 late")]})
    q1 = submit(srv, [BOB], message("first"))
    p.wait_connections(1, T)
    q2 = submit(srv, [CAROL], message("second"))
    assert wait_state(srv, q1, BOB, "active")["attempts"] == 0
    r2 = wait_state(srv, q2, CAROL, "queued")
    assert r2["attempts"] == 0, r2
    out = queue(srv, "list", check=0).stdout
    assert out.splitlines()[-1] == "2 messages, 2 recipients", out


def test_list_of_an_empty_queue(routed):
    srv, p = routed()
    p_ = queue(srv, "list", check=0)
    assert parse_queue_list(p_.stdout) == {}
    assert p_.stderr == ""


def test_show_adds_the_envelope_last_reply_and_headers(routed):
    srv, p = routed(rcpt={BOB: [GREY]})
    qid = submit(srv, [BOB], message("shown", extra="X-Tag: shown-tag\r\n"))
    wait_state(srv, qid, BOB, "deferred")
    out = queue(srv, "show", qid, check=0).stdout
    assert qid in out
    assert ALICE in out and BOB in out
    assert GREY in out
    assert "Subject: shown" in out
    assert "X-Tag: shown-tag" in out
    assert "Hello." not in out           # the headers, not the body


def test_hold_stops_attempts_and_release_delivers(routed):
    srv, p = routed(delivery={"retry": "1"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 1 s"]})
    qid = submit(srv, [BOB], message("held"))
    p.wait_rcpts(BOB, 1, T)
    r = queue(srv, "hold", qid, check=0)
    assert r.stderr == ""
    wait_state(srv, qid, BOB, "held")
    n = len(p.rcpt_attempts(BOB))
    # Retries are 1 s apart; held, none comes.
    time.sleep(3)
    assert len(p.rcpt_attempts(BOB)) == n
    assert rcpt_state(srv, qid, BOB)["state"] == "held"
    p.set_rcpt(BOB, ["250 2.1.5 Ok"])
    queue(srv, "release", qid, check=0)
    [t] = p.wait_messages(1, T)
    assert b"Subject: held" in t.data
    poll(lambda: qid not in queue_list(srv), T, interval=0.2,
         what="the released message to leave the queue")


def test_delete_drops_the_message_without_a_bounce(routed):
    srv, p = routed(delivery={"retry": "1"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 1 s"],
                          CAROL: ["550 5.1.1 No such user"]})
    qid = submit(srv, [BOB], message("deleted"))
    p.wait_rcpts(BOB, 1, T)
    queue(srv, "delete", qid, check=0)
    poll(lambda: qid not in queue_list(srv), T, interval=0.2,
         what="the deleted message to leave the queue")
    srv.wait_log(rf"ev=deleted .*{qid}|ev=deleted qid={qid}")
    n = len(p.rcpt_attempts(BOB))
    # A control bounce: once it is in, a bounce for the deleted message
    # would have been too.
    submit(srv, [CAROL], message("control"))
    [f] = srv.wait_messages(ALICE, 1, T)
    assert b"Subject: control" in Dsn(read_message(f)).original_text()
    assert len(p.rcpt_attempts(BOB)) <= n + 1   # one may have been flying
    assert p.messages == []
    # And it stays gone.
    assert queue(srv, "show", qid).returncode == 1


def test_flush_tries_a_deferred_message_at_once(routed):
    srv, p = routed(rcpt={BOB: [GREY]})     # and retry = 600 s
    qid = submit(srv, [BOB], message("flushed"))
    wait_state(srv, qid, BOB, "deferred")
    p.set_rcpt(BOB, ["250 2.1.5 Ok"])
    t0 = time.monotonic()
    r = queue(srv, "flush", check=0)
    assert r.stderr == ""
    [t] = p.wait_messages(1, 30)
    assert time.monotonic() - t0 < 30        # not the 600 s back-off
    assert b"Subject: flushed" in t.data
    poll(lambda: queue_list(srv) == {}, T, interval=0.2,
         what="the queue to be empty")


@pytest.mark.parametrize("words", [("show",), ("hold",), ("release",),
                                   ("delete",)])
def test_unknown_id_exits_1_with_one_line(routed, words):
    srv, p = routed()
    r = queue(srv, *words, "00000000DEADBEEF")
    assert r.returncode == 1, r
    assert r.stdout == "", r
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "00000000DEADBEEF" in r.stderr, r.stderr


def test_help_exits_0_and_a_usage_error_exits_2():
    r = subprocess.run([POSTERN, "queue", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r
    for word in ("list", "show", "flush", "delete", "hold", "release"):
        assert re.search(rf"\b{word}\b", r.stdout + r.stderr), word
    r = subprocess.run([POSTERN, "queue", "sideways"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, r
    r = subprocess.run([POSTERN, "queue", "show"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, r       # show needs an ID


def test_queue_without_a_server_exits_1(make_server):
    srv = make_server(start=False)
    r = queue(srv, "list")
    assert r.returncode == 1, r
    assert len(r.stderr.splitlines()) == 1, r.stderr
