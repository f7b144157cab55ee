"""The sending side where it cannot be data (REPLY-CODES.md, the sending
table; docs/design/outbound.md).  The rows of the table themselves -
2xx, 421 at each stage, the other 4xx and the waits they name, 551
followed or named, 5xx, the lifetime, DSN parameters and notices,
PIPELINING, SIZE, 8BITMIME, SMTPUTF8, STARTTLS, odd peers - are
transcripts in tests/peer/ (one file each, tests/peer/README.md).

What stays here needs a process killed or restarted, a reload, a hold
at the right moment, threads, or an outcome that may go either way: a
real greylisting peer (the retry may not come before the named wait,
whatever the fraction of the second), kill -9 and SIGTERM during a slow
delivery, `postern send` while the server is down, deferred/held/deleted
state across a restart, a small load test, 8-bit text towards a 7-bit
peer (converted or bounced), hold and the lifetime clock, and new
routes on reload.  Every peer checks at teardown that postern spoke
clean SMTP (Peer.assert_clean).
"""
import time

import pytest

from smtp_peer import (ALICE, Delay, Dsn, Peer, message, outbound_server,
                       queue, queue_list, read_message,
                       start_with_submission, submit)
from postern_test import poll

# Retries are 1,1,2 s; a whole exchange takes well under these on two
# slow cores (and under ASan), but nothing here waits for them: it polls.
T = 40.0
BOB = "bob@remote.test"
CAROL = "carol@remote.test"



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
    for p in started:
        p.assert_clean()


@pytest.fixture
def routed(make_server, peers):
    """routed(delivery={...}, relay=False, **peer_kwargs) -> (srv, peer):
    a postern whose remote.test goes to a fresh peer."""
    def make(delivery=None, relay=False, server=None, **peer_kw):
        p = peers(**peer_kw)
        extra = {"server": server} if server else {}
        if relay:
            srv = outbound_server(make_server, relayhost=p.address,
                                  delivery=delivery, **extra)
        else:
            srv = outbound_server(make_server,
                                  routes={"remote.test": p.address},
                                  delivery=delivery, **extra)
        return srv, p
    return make


def wait_queue_empty(srv, timeout=T):
    """Polls `postern queue list` until it lists no message."""
    return poll(lambda: queue_list(srv) == {}, timeout,
                interval=0.2, what="the queue to be empty")


def wait_deferred(srv, qid, rcpt, timeout=T):
    """Polls `postern queue list` until rcpt of qid is deferred."""
    def ok():
        r = queue_list(srv).get(qid, {}).get("rcpts", {}).get(rcpt)
        return r if r and r["state"] == "deferred" else None
    return poll(ok, timeout, interval=0.1, what=f"{rcpt} deferred")


def bounces(srv, n=1, timeout=T):
    """Waits for n messages in alice's Maildir; returns them parsed."""
    files = srv.wait_messages(ALICE, n, timeout)
    return [read_message(f) for f in files]


# --------------------------------------------------------------------------
# A real greylisting peer


def test_a_greylisting_peer_lets_mail_through_on_the_second_try(routed):
    # A real greylister (the peer refuses each sender/recipient pair
    # until 2 s after it first saw it, and says so): every message must
    # pass on its second try - the retry may not come before the wait
    # named, whatever the fraction of the second the 450 came at.
    srv, p = routed(delivery={"retry": "2"}, greylist=2)
    rcpts = [f"grey{i}@remote.test" for i in range(6)]
    for r in rcpts:
        submit(srv, [r], message(f"to {r}", to=r))
        time.sleep(0.17)           # spreads the 450s over the second
    p.wait_messages(len(rcpts), T)
    tries = {r: [x.reply.split(" ")[0] for x in p.rcpt_attempts(r)]
             for r in rcpts}
    early = {r: t for r, t in tries.items() if t != ["450", "250"]}
    assert not early, "retried before the named wait: " + "; ".join(
        f"{r} {'/'.join(t)}" for r, t in early.items())
    wait_queue_empty(srv)


# --------------------------------------------------------------------------
# Crashes, stops and restarts


def test_kill9_during_a_slow_delivery_loses_nothing(routed):
    srv, p = routed(delivery={"max_connections_per_destination": 1},
                    script={"DOT": [Delay(6, "250 2.0.0 Ok (too late)")]})
    submit(srv, [BOB], message("in flight"))
    # The peer has the whole text and sits on its reply.
    p.wait(lambda: any(t.data is not None for t in p.transactions), T,
           "the data of the first message")
    # A second message waits behind it, not yet tried.
    submit(srv, [BOB], message("waiting"))
    srv.kill9()
    t_restart = time.monotonic()
    p.set_script("DOT", [None])            # the peer is quick again
    start_with_submission(srv)
    after = lambda: [t for t in p.messages if t.time > t_restart]  # noqa
    p.wait(lambda: {t.message()["Subject"] for t in after()} >=
           {"in flight", "waiting"}, T,
           "both messages delivered after the restart")
    wait_queue_empty(srv)
    # At least once; the one in flight at most twice (RFC 5321 6.1).
    subjects = [t.message()["Subject"] for t in after()]
    assert subjects.count("waiting") == 1, subjects
    assert subjects.count("in flight") == 1, subjects
    assert srv.message_files(ALICE) == []


def postern_send(srv, rcpts, data, sender=ALICE):
    import subprocess
    from smtp_peer import POSTERN
    return subprocess.run([POSTERN, "send", "-c", str(srv.conf), "-f",
                           sender, *rcpts], input=data,
                          capture_output=True, timeout=60)


def test_postern_send_while_the_server_is_down_goes_out_at_start(routed):
    srv, p = routed()
    srv.stop()
    r = postern_send(srv, [BOB], b"Subject: waited\n\nwhile down\n")
    assert r.returncode == 0, r
    assert p.connections == []
    start_with_submission(srv)
    [t] = p.wait_messages(1, T)
    assert b"Subject: waited" in t.data
    wait_queue_empty(srv)


def test_deferred_state_survives_a_restart(routed):
    srv, p = routed(delivery={"retry": "600"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 600 s"]})
    qid = submit(srv, [BOB])
    p.wait_rcpts(BOB, 1, T)

    def deferred():
        r = queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
        return r if r and r["state"] == "deferred" else None
    before = poll(deferred, T, interval=0.2, what="bob deferred")
    srv.stop()
    start_with_submission(srv)
    after = poll(deferred, T, interval=0.2, what="bob deferred again")
    assert after["attempts"] == before["attempts"] == 1, (before, after)
    assert after["next"] == before["next"], (before, after)
    assert after["last"] == before["last"], (before, after)
    assert len(p.rcpt_attempts(BOB)) == 1      # not tried early


def test_hold_and_delete_survive_a_restart(routed):
    srv, p = routed(delivery={"retry": "1"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 1 s"]})
    held = submit(srv, [BOB], message("held"))
    gone = submit(srv, [BOB], message("gone"))
    p.wait_rcpts(BOB, 2, T)
    queue(srv, "hold", held, check=0)
    queue(srv, "delete", gone, check=0)
    srv.kill9()
    p.set_rcpt(BOB, ["250 2.1.5 Ok"])
    start_with_submission(srv)
    q = poll(lambda: queue_list(srv), T, interval=0.2,
             what="the queue after the restart")
    assert list(q) == [held], q
    assert q[held]["rcpts"][BOB]["state"] == "held", q
    time.sleep(2)                      # retries are 1 s apart
    assert p.messages == []
    queue(srv, "release", held, check=0)
    [t] = p.wait_messages(1, T)
    assert t.message()["Subject"] == "held"
    wait_queue_empty(srv)
    assert len(p.messages) == 1


def test_sigterm_during_a_slow_delivery_loses_nothing(routed):
    srv, p = routed(script={"DOT": [Delay(4, "250 2.0.0 Ok (slow)")]})
    submit(srv, [BOB], message("shutdown"))
    p.wait(lambda: any(t.data is not None for t in p.transactions), T,
           "the data")
    srv.stop()                          # SIGTERM, must exit 0
    p.set_script("DOT", [None])
    t_restart = time.monotonic()
    start_with_submission(srv)
    wait_queue_empty(srv)
    # Either the slow 250 was awaited before the exit, or it is resent.
    got = [t for t in p.messages
           if t.dot_reply_sent and (t.time > t_restart or
                                    "slow" in (t.dot_reply or ""))]
    assert got, p.transactions
    assert srv.message_files(ALICE) == []


# --------------------------------------------------------------------------
# Load


def test_thirty_messages_each_delivered_exactly_once(routed):
    srv, p = routed(batch_wait=0.0)
    n = 30
    import threading
    errors = []

    def one(i):
        try:
            submit(srv, [BOB, CAROL], message(f"load {i}"))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    msgs = p.wait_messages(n, 90)
    wait_queue_empty(srv, 90)
    seen = {}
    for t in p.messages:
        for a in t.delivered_to:
            key = (t.message()["Subject"], a)
            seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 2 * n, sorted(seen)
    assert set(seen.values()) == {1}, {k: v for k, v in seen.items()
                                       if v != 1}
    assert len(msgs) == n


# --------------------------------------------------------------------------
# 8BITMIME, hold and the lifetime, reloads


def test_8bit_text_is_not_sent_raw_to_a_peer_without_8bitmime(routed):
    # RFC 6152 section 3: without 8BITMIME offered the client converts
    # the body to 7 bit or returns it (5.6.3); it does not send 8-bit
    # octets to a 7-bit server.
    srv, p = routed(caps=["PIPELINING", "SIZE 52428800", "DSN"])
    msg = message("8bit to 7bit", body="Gr\u00fc\u00dfe aus K\u00f6ln\r\n",
                  extra="MIME-Version: 1.0\r\nContent-Type: text/plain; "
                  "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    submit(srv, [BOB], msg, mail_options=["BODY=8BITMIME"])
    poll(lambda: p.messages or srv.message_files(ALICE), T, interval=0.1,
         what="a delivery or a bounce")
    if p.messages:
        [t] = p.messages
        assert "BODY" not in t.mail_params, t.mail_params
        assert all(b < 0x80 for b in t.data), \
            "8-bit octets sent to a peer that did not offer 8BITMIME"
        # Converted, not mangled: the text decodes to the same words.
        assert "Grüße aus Köln" in t.message().get_content()
    else:
        [b] = bounces(srv)
        assert Dsn(b).recipient(BOB)["status"] == "5.6.3"


def test_hold_stops_the_lifetime_clock(routed):
    srv, p = routed(delivery={"lifetime": 4, "retry": "1"},
                    rcpt={BOB: ["451 4.3.0 Try again later"]})
    qid = submit(srv, [BOB], message("paused"))
    wait_deferred(srv, qid, BOB)
    queue(srv, "hold", qid, check=0)
    poll(lambda: (queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
                  or {}).get("state") == "held", T, interval=0.1,
         what="held")
    time.sleep(5)                  # longer than the whole lifetime
    n = len(p.rcpt_attempts(BOB))
    queue(srv, "release", qid, check=0)
    [b] = bounces(srv)
    # The clock stood still while held: after the release the message
    # still had most of its 4 s, so it was tried more than once.
    after = len(p.rcpt_attempts(BOB)) - n
    assert after >= 2, after
    assert Dsn(b).recipient(BOB)["action"] == "failed"


def test_reload_takes_new_routes(make_server, peers, tmp_path):
    from smtp_peer import POSTERN
    import subprocess
    old, new = peers(rcpt={BOB: ["450 4.2.0 Try later"]}), peers()
    srv = outbound_server(make_server, routes={"remote.test": old.address},
                          delivery={"retry": "600"})
    qid = submit(srv, [BOB])
    wait_deferred(srv, qid, BOB)
    (srv.dir / "routes").write_text(f"remote.test {new.address}\n")
    r = subprocess.run([POSTERN, "ctl", "reload", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    queue(srv, "flush", check=0)
    [t] = new.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    assert len(old.rcpt_attempts(BOB)) == 1
    wait_queue_empty(srv)
    assert qid


def test_hold_during_an_attempt_also_stops_the_lifetime_clock(routed):
    # The same, but the hold comes while the first attempt is in flight
    # (the peer takes 1.5 s over its 451).
    srv, p = routed(delivery={"lifetime": 4, "retry": "1"},
                    rcpt={BOB: [Delay(1.5, "451 4.3.0 Try again later"),
                                "451 4.3.0 Try again later"]})
    qid = submit(srv, [BOB], message("paused in flight"))
    poll(lambda: (queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
                  or {}).get("state") == "active", T, interval=0.05,
         what="the first attempt in flight")
    queue(srv, "hold", qid, check=0)
    poll(lambda: (queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
                  or {}).get("attempts") == 1, T, interval=0.1,
         what="the first attempt's outcome")
    assert queue_list(srv)[qid]["rcpts"][BOB]["state"] == "held"
    time.sleep(5)
    n = len(p.rcpt_attempts(BOB))
    assert n == 1
    queue(srv, "release", qid, check=0)
    [b] = bounces(srv)
    after = len(p.rcpt_attempts(BOB)) - n
    assert after >= 2, f"bounced after {after} attempt(s) past the release"
