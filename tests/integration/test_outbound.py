"""The sending side against a scripted peer (REPLY-CODES.md, the sending
table; docs/design/outbound.md): postern routes remote.test to a
tests/pylib/smtp_peer.py Peer (a `[delivery] routes` line, or the
relayhost), alice submits over the submission port (STARTTLS + AUTH), and
each row of the table is checked end to end: 2xx delivers once and byte
for byte; 421 is not charged; 450/451/452/455 are retried and let through
on the next try; 551 is followed or named in the bounce; other 5xx bounce
at once with an RFC 3464 report; a 4xx past the lifetime bounces; the
null sender and NOTIFY=NEVER get no bounce; PIPELINING, SIZE and DSN are
used when offered; one connection carries several messages; kill -9
loses nothing.  Further down: a real greylisting peer (the retry may not
come before the named wait), HELO fallback, timeouts and hang-ups,
STARTTLS, SMTPUTF8 and 8BITMIME towards peers without them, delay
notices, NOTIFY=SUCCESS, hold and the lifetime clock, restarts, reloads
and a small load test.  Every peer checks at teardown that postern
spoke clean SMTP (Peer.assert_clean).
"""
import time

import pytest

from smtp_peer import (ALICE, CLOSE, Delay, Dsn, Peer, message, moved,
                       outbound_server, queue, queue_list, read_message,
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


def body_of(t):
    """The peer's copy, split at the end of the header."""
    head, sep, body = t.data.partition(b"\r\n\r\n")
    assert sep, t.data
    return head, body


# --------------------------------------------------------------------------
# 2xx


def test_250_delivers_once_and_the_peer_gets_the_exact_text(routed):
    srv, p = routed()
    msg = message("exact", body=".x\r\n..y\r\n.\r\nplain line\r\n"
                  "  leading spaces\r\n\r\nlast\r\n")
    submit(srv, [BOB], msg)
    [t] = p.wait_messages(1, T)
    assert t.mail_from == ALICE
    assert [r.address for r in t.rcpts] == [BOB]
    assert t.bad_line_ends == []
    # postern may prepend trace headers (Received:); after them comes the
    # message exactly as alice sent it - ".x" arrives as ".x".
    assert t.data.endswith(msg), t.data
    prefix = t.data[:-len(msg)]
    for line in prefix.split(b"\r\n")[:-1]:
        assert line[:1] in (b" ", b"\t") or b":" in line, prefix
    assert b"\r\n..x\r\n...y\r\n..\r\n" in t.raw   # stuffed on the wire
    wait_queue_empty(srv)
    p.wait_closed(T)
    assert len(p.messages) == 1 and len(p.transactions) == 1
    assert p.protocol_errors() == []
    assert srv.message_files(ALICE) == []       # no bounce, no notice


def test_relayhost_takes_all_non_local_mail(routed):
    srv, p = routed(relay=True)
    submit(srv, ["someone@elsewhere.test", BOB])
    [t] = p.wait_messages(1, T)
    assert sorted(t.delivered_to) == [BOB, "someone@elsewhere.test"]
    wait_queue_empty(srv)


def test_local_recipients_stay_local_while_remote_ones_go_out(routed):
    srv, p = routed()
    submit(srv, ["bob@example.test", BOB])
    srv.wait_messages("bob@example.test", 1, T)
    [t] = p.wait_messages(1, T)
    assert [r.address for r in t.rcpts] == [BOB]


# --------------------------------------------------------------------------
# 421


def test_421_at_greeting_is_not_counted_and_a_later_try_delivers(routed):
    srv, p = routed(script={"greeting": ["421 4.3.2 Service busy"]})
    qid = submit(srv, [BOB])
    p.wait_connections(2, T)     # refused, and tried again
    q = queue_list(srv)
    assert qid in q, q
    r = q[qid]["rcpts"][BOB]
    assert r["attempts"] == 0, r      # a 421 is never charged
    assert r["state"] in ("queued", "deferred", "active"), r
    show = queue(srv, "show", qid, check=0).stdout
    assert BOB in show and qid in show, show
    # The peer is back: the message goes through on a later try.
    p.set_script("greeting", ["220 peer.test ESMTP back"])
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    wait_queue_empty(srv)
    assert srv.message_files(ALICE) == []
    # Every connection before the good one ended at the greeting.
    good = [c for c in p.connections if c.transactions]
    assert len(good) == 1
    assert all(c.verbs() in ([], ["QUIT"]) for c in p.connections
               if c is not good[0])


def test_421_after_rcpt_closes_and_retries_without_a_charge(routed):
    srv, p = routed(rcpt={BOB: ["421 4.4.2 peer.test closing", "250 ok"]})
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    first = p.connections[0]
    # After a 421 the client closes; it says nothing more there.
    assert first.verbs()[-1] in ("RCPT", "DATA", "QUIT"), first.verbs()
    assert first.transactions[0].data is None
    wait_queue_empty(srv)


# --------------------------------------------------------------------------
# other 4xx: retried


@pytest.mark.parametrize("where,reply", [
    ("RCPT", "450 4.2.0 Greylisted, retry in 1 s"),
    ("RCPT", "451 4.3.0 Temporary lookup failure"),
    ("RCPT", "452 4.2.2 Mailbox full"),
    ("MAIL", "455 4.5.4 Parameters cannot be accommodated right now"),
    ("DATA", "451 4.3.0 Try again later"),
    ("DOT", "451 4.3.0 Error: queue file write error"),
], ids=["450-rcpt", "451-rcpt", "452-rcpt", "455-mail", "451-data",
        "451-dot"])
def test_4xx_then_250_delivers_on_the_second_try(routed, where, reply):
    if where == "RCPT":
        srv, p = routed(rcpt={BOB: [reply, "250 2.1.5 Ok"]})
    else:
        srv, p = routed(script={where: [reply, None]})
    submit(srv, [BOB], message(f"retry {where}"))
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    assert b"Subject: retry " + where.encode() in t.data
    tries = [x for x in p.transactions]
    assert len(tries) == 2, tries            # delivered on the 2nd try
    assert tries[1].time > tries[0].time
    wait_queue_empty(srv)
    assert len(p.messages) == 1
    assert srv.message_files(ALICE) == []


def test_the_wait_a_greylisting_reply_names_is_honoured(routed):
    # The back-off says 8 s; the peer says 1 s: postern retries after the
    # peer's wait (REPLY-CODES.md: a greylisting peer lets it through on
    # the second try), not after its own longer step.
    srv, p = routed(delivery={"retry": "8"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 1 s",
                                "250 2.1.5 Ok"]})
    submit(srv, [BOB])
    p.wait_messages(1, T)
    assert len(p.rcpt_attempts(BOB)) == 2
    gap = p.transactions[1].time - p.transactions[0].time
    assert gap < 6.0, gap       # the peer's 1 s, not the back-off's 8 s


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


def test_deferred_recipient_shows_attempts_and_last_reply(routed):
    srv, p = routed(delivery={"retry": "600"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, retry in 600 s"]})
    qid = submit(srv, [BOB])
    p.wait_rcpts(BOB, 1, T)

    def deferred():
        r = queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
        return r if r and r["state"] == "deferred" else None
    r = poll(deferred, T, interval=0.2, what="bob deferred in the queue")
    assert r["attempts"] == 1, r
    assert r["last"] == "450 4.2.0 Greylisted, retry in 600 s", r
    assert r["next"], r


# --------------------------------------------------------------------------
# 5xx: bounce


def test_550_bounces_at_once_with_an_rfc3464_report(routed):
    rej = "550 5.1.1 <bob@remote.test>: Recipient address rejected: " \
          "User unknown in virtual mailbox table"
    srv, p = routed(rcpt={BOB: [rej]})
    msg = message("will bounce", body="secret body text\r\n")
    submit(srv, [BOB], msg)
    [b] = bounces(srv)
    d = Dsn(b)
    r = d.recipient(BOB)
    assert r["action"] == "failed", r
    assert r["status"] == "5.1.1", r
    assert r["diagnostic-code"] == "smtp; " + rej, r
    assert r["final-recipient"].lower() == "rfc822; " + BOB, r
    assert "remote-mta" in r, r
    assert "reporting-mta" in d.per_message, d.per_message
    assert d.final_recipients() == [BOB]
    orig = d.original_text()
    assert b"Subject: will bounce" in orig
    assert b"Message-ID: <will-bounce." in orig
    # From the null sender, to alice; the human part names the reply.
    assert b["To"] and ALICE in str(b["To"])
    raw = srv.message_files(ALICE)[0].read_bytes()
    assert b"Return-Path: <>" in raw
    assert "550" in d.human_text(), d.human_text()
    # Bounced at once: one RCPT, no retry, no data sent.
    wait_queue_empty(srv)
    assert len(p.rcpt_attempts(BOB)) == 1
    assert p.messages == []


def test_5xx_after_data_bounces_too(routed):
    srv, p = routed(script={"DOT": ["554 5.6.0 Message rejected: content"]})
    submit(srv, [BOB])
    [b] = bounces(srv)
    r = Dsn(b).recipient(BOB)
    assert (r["action"], r["status"]) == ("failed", "5.6.0"), r
    assert r["diagnostic-code"] == \
        "smtp; 554 5.6.0 Message rejected: content", r
    wait_queue_empty(srv)
    assert len(p.transactions) == 1


def test_551_not_followed_names_the_new_address_in_the_bounce(routed):
    srv, p = routed(delivery={"follow_551": "false"},
                    rcpt={BOB: [moved("new@remote.test")]})
    submit(srv, [BOB], message("moved"))
    [b] = bounces(srv)
    d = Dsn(b)
    r = d.recipient(BOB)
    assert r["action"] == "failed", r
    assert r["status"] == "5.1.6", r
    assert "<new@remote.test>" in r["diagnostic-code"], r
    assert "new@remote.test" in d.human_text(), d.human_text()
    wait_queue_empty(srv)
    assert len(p.rcpt_attempts(BOB)) == 1       # never retried as is
    assert p.rcpt_attempts("new@remote.test") == []
    assert p.messages == []


def test_551_followed_resends_to_the_new_address(routed):
    srv, p = routed(delivery={"follow_551": "true"},
                    rcpt={BOB: [moved("new@remote.test")]})
    submit(srv, [BOB], message("follow me"))
    p.wait(lambda: p.delivered("new@remote.test"), T,
           "delivery to new@remote.test")
    [t] = p.delivered("new@remote.test")
    assert b"Subject: follow me" in t.data
    srv.wait_log(r"ev=followed_551")
    wait_queue_empty(srv)
    assert len(p.rcpt_attempts(BOB)) == 1
    assert srv.message_files(ALICE) == []


def test_4xx_forever_bounces_after_the_lifetime(routed):
    srv, p = routed(delivery={"lifetime": 3, "retry": "1"},
                    script={"RCPT": ["451 4.3.0 Temporary failure, "
                                     "try again later"]})
    t0 = time.monotonic()
    submit(srv, [BOB], message("never"))
    [b] = bounces(srv)
    elapsed = time.monotonic() - t0
    assert elapsed >= 2.0, elapsed              # not before the lifetime
    r = Dsn(b).recipient(BOB)
    assert r["action"] == "failed", r
    assert r["status"].startswith("4."), r
    assert "451 4.3.0 Temporary failure" in r["diagnostic-code"], r
    assert len(p.rcpt_attempts(BOB)) >= 2       # it kept trying meanwhile
    wait_queue_empty(srv)
    n = len(p.rcpt_attempts(BOB))
    # Once bounced, never tried again.
    time.sleep(2)
    assert len(p.rcpt_attempts(BOB)) == n
    assert len(srv.message_files(ALICE)) == 1


def test_mixed_recipients_only_the_failed_one_is_in_the_bounce(routed):
    srv, p = routed(rcpt={CAROL: ["550 5.1.1 No such user carol"]})
    submit(srv, [BOB, CAROL], message("mixed"))
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    [b] = bounces(srv)
    d = Dsn(b)
    assert d.final_recipients() == [CAROL]
    assert d.recipient(CAROL)["status"] == "5.1.1"
    wait_queue_empty(srv)
    assert len(p.delivered(BOB)) == 1


def test_all_recipients_failing_in_one_pass_share_one_bounce(routed):
    srv, p = routed(script={"RCPT": ["550 5.1.1 No such user"]})
    submit(srv, [BOB, CAROL], message("both fail"))
    [b] = bounces(srv)
    assert Dsn(b).final_recipients() == [BOB, CAROL]
    wait_queue_empty(srv)
    assert len(srv.message_files(ALICE)) == 1


def test_null_sender_gets_no_bounce(routed):
    srv, p = routed(script={"RCPT": ["550 5.1.1 No such user"]})
    submit(srv, [BOB], message("from null"), sender="")
    p.wait_rcpts(BOB, 1, T)
    # A control message whose bounce must arrive; when it has, the null
    # sender's would have too.
    submit(srv, [CAROL], message("control"))
    [b] = bounces(srv)
    assert b"Subject: control" in Dsn(b).original_text()
    wait_queue_empty(srv)
    assert len(srv.message_files(ALICE)) == 1
    # Nothing went out to the peer either (a bounce to the null sender
    # has nowhere to go).
    assert [t.mail_from for t in p.transactions] == ["", ALICE]


def test_notify_never_gets_no_bounce(routed):
    srv, p = routed(script={"RCPT": ["550 5.1.1 No such user"]})
    submit(srv, [BOB], message("quiet"), rcpt_options=["NOTIFY=NEVER"])
    p.wait_rcpts(BOB, 1, T)
    submit(srv, [CAROL], message("control"))
    [b] = bounces(srv)
    assert b"Subject: control" in Dsn(b).original_text()
    wait_queue_empty(srv)
    assert len(srv.message_files(ALICE)) == 1


def test_notify_success_only_suppresses_the_failure_bounce(routed):
    srv, p = routed(script={"RCPT": ["550 5.1.1 No such user"]})
    submit(srv, [BOB], message("success only"),
           rcpt_options=["NOTIFY=SUCCESS"])
    p.wait_rcpts(BOB, 1, T)
    submit(srv, [CAROL], message("control"))
    [b] = bounces(srv)
    assert b"Subject: control" in Dsn(b).original_text()


# --------------------------------------------------------------------------
# The extensions


def rcpt_batch(conn):
    return [c.replies_sent for c in conn.commands
            if c.verb in ("MAIL", "RCPT", "DATA")]


def test_pipelining_offered_sends_mail_rcpt_data_in_one_batch(routed):
    srv, p = routed(batch_wait=0.3)
    submit(srv, [BOB, CAROL])
    [t] = p.wait_messages(1, T)
    conn = t.conn
    b = rcpt_batch(conn)
    assert [c.verb for c in conn.commands
            if c.verb in ("MAIL", "RCPT", "DATA")] == \
        ["MAIL", "RCPT", "RCPT", "DATA"]
    # All four arrived before the peer had answered the first.
    assert len(set(b)) == 1, [(c.line, c.replies_sent)
                              for c in conn.commands]
    assert conn.protocol_errors == []


def test_no_pipelining_sends_one_command_at_a_time(routed):
    srv, p = routed(batch_wait=0.3,
                    caps=["SIZE 52428800", "8BITMIME", "DSN"])
    submit(srv, [BOB, CAROL])
    [t] = p.wait_messages(1, T)
    b = rcpt_batch(t.conn)
    assert len(b) == 4
    assert b == list(range(b[0], b[0] + 4)), [
        (c.line, c.replies_sent) for c in t.conn.commands]


def test_size_is_declared_when_offered(routed):
    srv, p = routed()
    submit(srv, [BOB], message("sized", body=("x" * 70 + "\r\n") * 70))
    [t] = p.wait_messages(1, T)
    assert "SIZE" in t.mail_params, t.mail_params
    size = int(t.mail_params["SIZE"])
    assert len(t.data) <= size <= len(t.data) + 4096, (size, len(t.data))


def test_size_is_not_declared_when_not_offered(routed):
    srv, p = routed(caps=["PIPELINING", "8BITMIME"])
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    assert "SIZE" not in t.mail_params, t.mail_params
    assert "NOTIFY" not in t.rcpts[0].params      # no DSN offered
    assert "ORCPT" not in t.rcpts[0].params


def test_dsn_parameters_are_passed_on_when_offered(routed):
    srv, p = routed()
    submit(srv, [BOB], mail_options=["RET=HDRS", "ENVID=QQ314159"],
           rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                         "ORCPT=rfc822;bob@remote.test"])
    [t] = p.wait_messages(1, T)
    assert t.mail_params.get("RET") == "HDRS", t.mail_params
    assert t.mail_params.get("ENVID") == "QQ314159", t.mail_params
    r = t.rcpts[0].params
    assert set(r.get("NOTIFY", "").upper().split(",")) == {"SUCCESS",
                                                          "FAILURE"}, r
    assert r.get("ORCPT", "").lower() == "rfc822;bob@remote.test", r


def test_8bitmime_body_is_declared(routed):
    srv, p = routed()
    msg = message("8bit", body="Gr\u00fc\u00dfe\r\n",
                  extra="Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n")
    submit(srv, [BOB], msg, mail_options=["BODY=8BITMIME"])
    [t] = p.wait_messages(1, T)
    assert t.mail_params.get("BODY") == "8BITMIME", t.mail_params
    assert "Grüße".encode() in t.data


def test_several_messages_to_one_peer_share_a_connection(routed):
    # The first end-of-data reply is slow, so the others wait in the
    # queue; one connection per destination.
    srv, p = routed(delivery={"max_connections_per_destination": 1},
                    script={"DOT": [Delay(2, "250 2.0.0 Ok slow"), None]})
    n = 5
    for i in range(n):
        submit(srv, [BOB], message(f"batch {i}"))
    msgs = p.wait_messages(n, T)
    subjects = sorted(t.message()["Subject"] for t in msgs)
    assert subjects == [f"batch {i}" for i in range(n)]
    assert len(p.connections) < n, p.connections
    wait_queue_empty(srv)
    assert len(p.messages) == n


# --------------------------------------------------------------------------
# Crashes


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


# --------------------------------------------------------------------------
# postern send (the maildrop) goes out the same way


def postern_send(srv, rcpts, data, sender=ALICE):
    import subprocess
    from smtp_peer import POSTERN
    return subprocess.run([POSTERN, "send", "-c", str(srv.conf), "-f",
                           sender, *rcpts], input=data,
                          capture_output=True, timeout=60)


def test_postern_send_to_a_remote_address_is_delivered(routed):
    srv, p = routed()
    text = (b"Subject: via send\nTo: <bob@remote.test>\n\n.dot line\n"
            b"plain\n")
    r = postern_send(srv, [BOB], text)
    assert r.returncode == 0, r
    [t] = p.wait_messages(1, T)
    assert t.mail_from == ALICE
    assert t.delivered_to == [BOB]
    assert t.bad_line_ends == []                 # LF became CRLF
    head, body = body_of(t)
    assert body == b".dot line\r\nplain\r\n", t.data
    assert b"Subject: via send" in head
    wait_queue_empty(srv)


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


# --------------------------------------------------------------------------
# More of the client: HELO fallback, timeouts, odd peers, TLS, DSNs


def test_ehlo_refused_falls_back_to_helo(routed):
    srv, p = routed(script={"EHLO": ["502 5.5.1 EHLO not implemented"]})
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    verbs = t.conn.verbs()
    assert verbs[:2] == ["EHLO", "HELO"], verbs
    # No extensions without EHLO: no SIZE=, no DSN parameters.
    assert t.mail_params == {}, t.mail_params
    assert t.rcpts[0].params == {}


def test_554_at_greeting_bounces(routed):
    srv, p = routed(script={"greeting": ["554 5.7.1 No service for you"]})
    submit(srv, [BOB])
    [b] = bounces(srv)
    r = Dsn(b).recipient(BOB)
    assert (r["action"], r["status"]) == ("failed", "5.7.1"), r
    assert "554 5.7.1 No service for you" in r["diagnostic-code"], r
    wait_queue_empty(srv)
    assert p.transactions == []


def test_lifetime_0_bounces_on_the_first_4xx(routed):
    srv, p = routed(delivery={"lifetime": 0},
                    rcpt={BOB: ["450 4.2.1 Mailbox busy", "250 ok"]})
    submit(srv, [BOB])
    [b] = bounces(srv)
    r = Dsn(b).recipient(BOB)
    assert r["action"] == "failed" and r["status"].startswith("4."), r
    wait_queue_empty(srv)
    assert len(p.rcpt_attempts(BOB)) == 1
    assert p.messages == []


def test_a_reply_timeout_defers_and_a_later_try_delivers(routed):
    srv, p = routed(delivery={"command_timeout": 2},
                    script={"MAIL": [Delay(6, "250 2.1.0 too late"), None]})
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    assert len(p.connections) >= 2
    wait_queue_empty(srv)
    assert srv.message_files(ALICE) == []


def test_the_peer_hanging_up_after_the_data_defers(routed):
    srv, p = routed(script={"DOT": [CLOSE, None]})
    submit(srv, [BOB], message("hangup"))
    [t] = p.wait_messages(1, T)
    assert [x.data is not None for x in p.transactions] == [True, True]
    wait_queue_empty(srv)
    assert len(p.messages) == 1
    assert srv.message_files(ALICE) == []


def test_a_garbled_reply_defers_and_does_not_bounce(routed):
    srv, p = routed(rcpt={BOB: ["this is not smtp", "250 2.1.5 Ok"]})
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    wait_queue_empty(srv)
    assert srv.message_files(ALICE) == []


def test_multiline_replies_are_read_whole(routed):
    srv, p = routed(script={
        "greeting": ["220-peer.test first line\n220-second\n220 ready"],
        "RCPT": ["250-2.1.5 fine\n250 2.1.5 really"],
        "DOT": ["250-2.0.0 queued\n250 2.0.0 as ML1"]})
    submit(srv, [BOB, CAROL])
    [t] = p.wait_messages(1, T)
    assert sorted(t.delivered_to) == [BOB, CAROL]
    wait_queue_empty(srv)
    assert len(p.transactions) == 1


def test_452_too_many_recipients_sends_the_rest_later(routed):
    dave = "dave@remote.test"
    srv, p = routed(rcpt={dave: ["452 4.5.3 Too many recipients", None]})
    submit(srv, [BOB, CAROL, dave], message("many"))
    p.wait(lambda: p.delivered(dave), T, "dave's delivery")
    assert len(p.delivered(BOB)) == 1 and len(p.delivered(CAROL)) == 1
    assert len(p.delivered(dave)) == 1
    wait_queue_empty(srv)
    assert srv.message_files(ALICE) == []


def test_max_messages_per_connection_is_honoured(routed):
    srv, p = routed(delivery={"max_connections_per_destination": 1,
                              "max_messages_per_connection": 2},
                    script={"DOT": [Delay(2, "250 2.0.0 Ok slow"), None]})
    n = 5
    for i in range(n):
        submit(srv, [BOB], message(f"cap {i}"))
    p.wait_messages(n, T)
    per_conn = [len([t for t in c.transactions if t.delivered_to])
                for c in p.connections]
    assert max(per_conn) <= 2, per_conn
    assert len([c for c in per_conn if c]) >= 3, per_conn


def test_starttls_is_used_when_the_peer_offers_it(routed):
    from smtp_peer import DEFAULT_CAPS, peer_tls_context
    srv, p = routed(caps=DEFAULT_CAPS + ["STARTTLS"],
                    tls_context=peer_tls_context())
    submit(srv, [BOB], message("secret"))
    [t] = p.wait_messages(1, T)
    assert t.conn.tls
    v = t.conn.verbs()
    assert v[:3] == ["EHLO", "STARTTLS", "EHLO"], v
    assert b"Subject: secret" in t.data


def test_tls_required_but_not_offered_defers_without_sending(routed):
    srv, p = routed(delivery={"tls": "required", "retry": "600"})
    qid = submit(srv, [BOB])
    p.wait_connections(1, T)

    def deferred():
        r = queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
        return r if r and r["state"] == "deferred" else None
    r = poll(deferred, T, interval=0.2, what="bob deferred")
    assert "STARTTLS" in (r["last"] or ""), r
    srv.wait_log(r"ev=deferred .*rcpt=bob@remote.test .*status=4\.7\.5")
    assert p.transactions == []          # not a word of the message
    assert srv.message_files(ALICE) == []


def test_smtputf8_recipient_bounces_5_6_7_at_a_peer_without_it(routed):
    srv, p = routed(caps=["PIPELINING", "SIZE 52428800", "8BITMIME",
                          "DSN"])
    rcpt = "b\u00f8b@remote.test"
    submit(srv, [rcpt], message("utf8", to="x@remote.test"),
           mail_options=["SMTPUTF8"])
    [b] = bounces(srv)
    d = Dsn(b)
    # A UTF-8 address needs the RFC 6533 report type.
    assert d.status_type == "message/global-delivery-status"
    assert len(d.recipients) == 1
    assert d.recipients[0]["status"] == "5.6.7", d.recipients
    assert rcpt in d.recipients[0]["final-recipient"], d.recipients
    wait_queue_empty(srv)
    assert p.messages == []


def test_smtputf8_goes_through_to_a_peer_that_offers_it(routed):
    srv, p = routed()
    rcpt = "b\u00f8b@remote.test"
    submit(srv, [rcpt], message("utf8", to="x@remote.test"),
           mail_options=["SMTPUTF8"])
    [t] = p.wait_messages(1, T)
    assert "SMTPUTF8" in t.mail_params, t.mail_params
    assert t.delivered_to == [rcpt]


def test_ret_full_returns_the_whole_message(routed):
    srv, p = routed(rcpt={BOB: ["550 5.1.1 No such user"]})
    submit(srv, [BOB], message("full", body="the body itself\r\n"),
           mail_options=["RET=FULL", "ENVID=ENV42"])
    [b] = bounces(srv)
    d = Dsn(b)
    assert d.original[0].get_content_type() == "message/rfc822"
    orig = d.original_text()
    assert b"Subject: full" in orig and b"the body itself" in orig
    assert d.per_message.get("original-envelope-id") == "ENV42", \
        d.per_message


def test_headers_only_are_returned_by_default(routed):
    srv, p = routed(rcpt={BOB: ["550 5.1.1 No such user"]})
    submit(srv, [BOB], message("hdrs", body="do not return me\r\n"))
    [b] = bounces(srv)
    orig = Dsn(b).original_text()
    assert b"Subject: hdrs" in orig
    assert b"do not return me" not in orig


def test_delay_notice_once_then_delivery(routed):
    srv, p = routed(delivery={"delay_warning": 2, "retry": "1"},
                    rcpt={BOB: ["451 4.3.0 Try again later"]})
    submit(srv, [BOB], message("slow road"))
    [n] = bounces(srv)
    d = Dsn(n)
    r = d.recipient(BOB)
    assert r["action"] == "delayed", r
    assert r["status"].startswith("4."), r
    p.set_rcpt(BOB, ["250 2.1.5 Ok"])
    [t] = p.wait_messages(1, T)
    wait_queue_empty(srv)
    assert len(srv.message_files(ALICE)) == 1     # one notice, no bounce


def test_notify_success_at_a_peer_without_dsn_gets_a_relayed_notice(
        make_server, peers):
    plain = peers(caps=["PIPELINING", "SIZE 52428800", "8BITMIME"])
    dsn = peers()
    srv = outbound_server(make_server, routes={"plain.test": plain.address,
                                               "remote.test": dsn.address})
    # The DSN peer takes the request over: no notice from postern.
    submit(srv, [BOB], message("passed on"),
           rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    [t] = dsn.wait_messages(1, T)
    assert "SUCCESS" in t.rcpts[0].params.get("NOTIFY", "").upper()
    submit(srv, ["bob@plain.test"], message("relayed"),
           rcpt_options=["NOTIFY=SUCCESS"])
    plain.wait_messages(1, T)
    [n] = bounces(srv)
    d = Dsn(n)
    r = d.recipient("bob@plain.test")
    assert r["action"] in ("relayed", "delivered"), r
    assert r["status"].startswith("2."), r


# --------------------------------------------------------------------------
# 421 anywhere, wait texts, partial retries, restarts, load


@pytest.mark.parametrize("where", ["EHLO", "MAIL", "RCPT", "DATA", "DOT"])
def test_421_anywhere_is_not_charged(routed, where):
    reply = "421 4.3.2 peer.test Service shutting down"
    srv, p = routed(delivery={"retry": "3"}, script={where: [reply, None]})
    qid = submit(srv, [BOB])
    p.wait_connections(1, T)

    def after_421():
        r = queue_list(srv).get(qid, {}).get("rcpts", {}).get(BOB)
        return r if r and (r["last"] or "").startswith("421") else None
    r = poll(after_421, T, interval=0.1, what="the 421 in the queue list")
    assert r["attempts"] == 0, r
    [t] = p.wait_messages(1, T)
    assert t.delivered_to == [BOB]
    assert len(p.connections) == 2, p.connections
    wait_queue_empty(srv)


@pytest.mark.parametrize("text", [
    "450 4.2.0 Greylisted, retry in 1 s",
    "450 4.7.1 Greylisted, try again in 1 seconds",
    "451 4.7.1 Please try again in 1 second",
])
def test_wait_texts_are_understood(routed, text):
    srv, p = routed(delivery={"retry": "9"},
                    rcpt={BOB: [text, "250 2.1.5 Ok"]})
    submit(srv, [BOB])
    p.wait_messages(1, T)
    a = p.rcpt_attempts(BOB)
    assert len(a) == 2
    gap = p.transactions[1].time - p.transactions[0].time
    assert gap < 6.0, gap       # the text's 1 s, not the back-off's 9 s


def test_a_named_wait_longer_than_the_longest_step_is_cut(routed):
    srv, p = routed(delivery={"retry": "1,2"},
                    rcpt={BOB: ["450 4.2.0 Greylisted, try again in 5 "
                                "minutes", "250 2.1.5 Ok"]})
    submit(srv, [BOB])
    p.wait_messages(1, T)
    gap = p.transactions[1].time - p.transactions[0].time
    assert gap < 10, gap          # never later than the longest step (2 s)


def test_only_the_deferred_recipient_is_retried(routed):
    srv, p = routed(rcpt={CAROL: ["450 4.2.0 Greylisted, retry in 1 s",
                                  None]})
    submit(srv, [BOB, CAROL], message("partial"))
    p.wait(lambda: p.delivered(CAROL), T, "carol's delivery")
    assert len(p.delivered(BOB)) == 1
    second = [t for t in p.transactions if t.delivered_to == [CAROL]]
    assert len(second) == 1 and [r.address for r in second[0].rcpts] == \
        [CAROL]
    wait_queue_empty(srv)
    assert len(p.delivered(BOB)) == 1


def test_one_message_to_two_destinations(make_server, peers):
    a, b = peers(), peers()
    srv = outbound_server(make_server, routes={"remote.test": a.address,
                                               "other.test": b.address})
    submit(srv, [BOB, "zed@other.test"], message("split"))
    [ta] = a.wait_messages(1, T)
    [tb] = b.wait_messages(1, T)
    assert ta.delivered_to == [BOB] and tb.delivered_to == ["zed@other.test"]
    assert ta.data == tb.data
    wait_queue_empty(srv)


@pytest.mark.parametrize("where,reply,status", [
    ("MAIL", "550 5.7.1 Sender rejected", "5.7.1"),
    ("DATA", "554 5.5.1 No valid recipients", "5.5.1"),
])
def test_5xx_to_mail_or_data_bounces_every_recipient(routed, where, reply,
                                                     status):
    srv, p = routed(script={where: [reply]})
    submit(srv, [BOB, CAROL])
    [b] = bounces(srv)
    d = Dsn(b)
    assert d.final_recipients() == [BOB, CAROL]
    for r in d.recipients:
        assert (r["action"], r["status"]) == ("failed", status), r
        assert reply in r["diagnostic-code"], r
    wait_queue_empty(srv)


def test_251_will_forward_counts_as_done(routed):
    srv, p = routed(rcpt={BOB: ["251 2.1.5 User not local; will forward "
                                "to <bob@elsewhere.test>"]})
    submit(srv, [BOB])
    [t] = p.wait_messages(1, T)
    wait_queue_empty(srv)
    assert len(p.transactions) == 1
    assert srv.message_files(ALICE) == []


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
# 8BITMIME, hold and the lifetime, reloads, delay notices and NOTIFY


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


def test_notify_failure_only_gets_no_delay_notice(routed):
    srv, p = routed(delivery={"delay_warning": 1, "retry": "1"},
                    script={"RCPT": ["451 4.3.0 Try again later"]})
    submit(srv, [BOB], message("no delay notice"),
           rcpt_options=["NOTIFY=FAILURE"])
    submit(srv, [CAROL], message("control"))
    [n] = bounces(srv)                  # the control's delay notice
    d = Dsn(n)
    assert d.final_recipients() == [CAROL]
    assert d.recipient(CAROL)["action"] == "delayed"
    # bob's would have come at the same time as carol's.
    time.sleep(1.5)
    assert len(srv.message_files(ALICE)) == 1


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


def test_a_refused_message_on_a_shared_connection_does_not_spoil_the_next(
        routed):
    # One connection, three messages: the second's only recipient is
    # refused (so its DATA gets 554 and the transaction stays open, as in
    # Postfix); the client must RSET before the third's MAIL.
    srv, p = routed(delivery={"max_connections_per_destination": 1},
                    script={"DOT": [Delay(2, "250 2.0.0 Ok slow"), None]},
                    rcpt={CAROL: ["450 4.2.0 Greylisted, retry in 1 s",
                                  None]})
    submit(srv, [BOB], message("one"))
    p.wait(lambda: any(t.data is not None for t in p.transactions), T,
           "the first data")
    submit(srv, [CAROL], message("two"))
    submit(srv, [BOB], message("three"))
    p.wait(lambda: {t.message()["Subject"] for t in p.messages} >=
           {"one", "two", "three"}, T, "all three delivered")
    assert srv.message_files(ALICE) == []
    for c in p.connections:
        v = c.verbs()
        # Never a MAIL while a transaction is open.
        bad = [cmd for cmd in c.commands if cmd.verb == "MAIL" and
               (cmd.reply or "").startswith("503")]
        assert not bad, v
