"""A 250 means the message survives kill -9 (issue 3, scope 6 and 7).

Every message acknowledged with "250 2.0.0 Ok: queued as QID" must be
delivered exactly once after a crash and restart (Maildir file names carry
"Q<QID>R<idx>"); a transaction without its 250 is never half-stored.
"""
import re
import resource
import signal
import subprocess
import threading

from postern_test import (POSTERN, ConnectionClosed, poll, queue_id,
                          split_message)

RCPT = "alice@example.test"


def body_for(marker):
    filler = b"".join(b"%s line %d\r\n" % (marker.encode(), i)
                      for i in range(40))
    return (f"Subject: {marker}\r\n\r\n".encode() + filler +
            f"END {marker}\r\n".encode())


def expected_body(marker):
    return split_message(body_for(marker).replace(b"\r\n", b"\n"))[1]


class Sender(threading.Thread):
    """One session sending `count` messages; records (qid, marker) of each
    message acknowledged; stops quietly when the server goes away."""

    def __init__(self, srv, name, count):
        super().__init__(daemon=True)
        self.srv, self.tag, self.count = srv, name, count
        self.acked = []
        self.error = None
        self.lock = threading.Lock()

    def run(self):
        try:
            with self.srv.client() as c:
                c.ehlo()
                for i in range(self.count):
                    marker = f"{self.tag}-{i}"
                    r = c.mail_txn("s@x.test", [RCPT], body_for(marker))
                    with self.lock:
                        self.acked.append((queue_id(r), marker))
        except (ConnectionClosed, OSError):
            pass  # the server was killed
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def delivered(srv, rcpt=RCPT):
    """{qid: [files]} for rcpt's Maildir."""
    out = {}
    for f in srv.message_files(rcpt):
        m = re.search(r"\.Q([0-9A-Za-z]+)R(\d+)\.", f.name)
        assert m, f"unexpected Maildir name {f.name}"
        out.setdefault(m.group(1), []).append(f)
    return out


def assert_exactly_once(srv, acked):
    want = {q for q, _ in acked}
    poll(lambda: want <= delivered(srv).keys(), what=f"{len(want)} acked "
         "messages delivered after the restart")
    got = delivered(srv)
    for qid, marker in acked:
        files = got[qid]
        assert len(files) == 1, f"{qid} delivered {len(files)} times"
        assert split_message(files[0].read_bytes())[1] == \
            expected_body(marker), f"{qid} ({marker}) not intact"
    # Nothing anyone was not told about twice, nothing half-written.
    for qid, files in got.items():
        assert len(files) == 1, f"{qid} delivered {len(files)} times"
        body = split_message(files[0].read_bytes())[1]
        m = re.match(rb"(\S+) line 0\n", body)
        assert m, f"{qid}: unexpected body {body[:80]!r}"
        assert body == expected_body(m.group(1).decode()), \
            f"{qid}: body cut short"


def test_kill9_right_after_the_250s_every_acked_message_is_delivered_once(
        server):
    senders = [Sender(server, f"s{i}", 20) for i in range(5)]
    for s in senders:
        s.start()
    for s in senders:
        s.join(120)
    server.kill9()
    acked = [a for s in senders for a in s.acked]
    assert all(s.error is None for s in senders), [s.error for s in senders]
    assert len(acked) == 100
    server.start()
    assert_exactly_once(server, acked)
    assert len(delivered(server)) == 100


def test_kill9_while_clients_are_sending_loses_no_acked_message(server):
    acked_all = []
    for cycle in range(3):
        senders = [Sender(server, f"c{cycle}s{i}", 1000) for i in range(4)]
        for s in senders:
            s.start()
        poll(lambda: sum(len(s.acked) for s in senders) >= 30 or
             not any(s.is_alive() for s in senders),
             what="30 acknowledged messages")
        server.kill9()  # clients are mid-transaction now
        for s in senders:
            s.join(30)
            assert s.error is None, s.error
            acked_all += s.acked
        server.start()
    assert_exactly_once(server, acked_all)
    print(f"acked over 3 kill -9 cycles: {len(acked_all)}, delivered: "
          f"{len(delivered(server))}")
    qids = [q for q, _ in acked_all]
    assert len(qids) == len(set(qids)), "a queue id was reused"


def test_clean_restart_after_recovery_delivers_nothing_again(server):
    s = Sender(server, "r", 10)
    s.run()
    assert len(s.acked) == 10
    server.kill9()
    server.start()
    assert_exactly_once(server, s.acked)
    server.stop()
    server.start()
    # The third start must find the spool empty.
    third = server.log()[server.log_offset_starts[-1]:]
    assert "ev=recovered" not in third
    with server.client() as c:
        c.ehlo()
        qid = queue_id(c.mail_txn("s@x.test", [RCPT], body_for("after")))
    assert qid not in {q for q, _ in s.acked}
    poll(lambda: qid in delivered(server), what="the new message")
    assert len(delivered(server)) == 11
    assert all(len(v) == 1 for v in delivered(server).values())


def test_kill9_mid_data_leaves_nothing_after_restart(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@x.test>").code == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_for("half")[:200])
        server.wait_log(r"ev=rcpt .*reason=rcpt_ok")
        server.kill9()
    server.start()
    with server.client() as c:  # a marker message proves delivery ran
        c.ehlo()
        qid = queue_id(c.mail_txn("s@x.test", [RCPT], body_for("marker")))
    poll(lambda: qid in delivered(server), what="the marker message")
    server.stop()
    assert list(delivered(server)) == [qid]


def test_spool_is_locked_against_a_second_server(server, make_server):
    other = make_server(start=False)
    other.sections["spool"]["dir"] = str(server.spool)
    other.write_config()
    p = subprocess.run([POSTERN, "serve", "-c", str(other.conf)],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 1, p.stderr
    assert str(server.spool) in p.stderr or "spool" in p.stderr, p.stderr
    with server.client() as c:  # the first one is unharmed
        assert c.cmd("NOOP").code == 250


def limit_file_size(octets):
    """preexec_fn: writes past `octets` fail with EFBIG (SIGXFSZ ignored),
    the way a full or failing disk makes the spool write fail."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (octets, octets))
    return apply


def test_spool_write_failure_gets_451_4_3_0_and_stores_nothing(make_server):
    srv = make_server(start=False)
    srv.start(preexec_fn=limit_file_size(256 << 10))
    big = (b"y" * 78 + b"\r\n") * 4000  # 320 kB: cannot be written
    with srv.client() as c:
        c.ehlo()
        r = c.mail_txn("s@x.test", [RCPT], big)
        assert r.last == ("451 4.3.0 Local error in processing: message not "
                          "stored; try again later")
        # The session and the spool go on: a small message is taken.
        qid = queue_id(c.mail_txn("s@x.test", [RCPT], body_for("small")))
    poll(lambda: qid in delivered(srv), what="the small message")
    srv.wait_log(r"ev=spool_failed .*error=")
    srv.stop()
    srv.start()  # recovery must not bring the failed one back
    with srv.client() as c:
        c.ehlo()
        q2 = queue_id(c.mail_txn("s@x.test", [RCPT], body_for("marker")))
    poll(lambda: q2 in delivered(srv), what="the marker message")
    srv.stop()
    assert sorted(delivered(srv)) == sorted([qid, q2])


def test_failed_delivery_stays_queued_and_is_delivered_after_restart(
        make_server):
    """A message leaves the spool only once its delivery is durable: with
    the Maildir path blocked (a file where a directory must go) delivery
    fails; after a restart with the path cleared the message arrives."""
    srv = make_server(start=False)
    blocker = srv.dir / "mail"
    blocker.write_text("not a directory\n")
    srv.start()
    with srv.client() as c:
        c.ehlo()
        qid = queue_id(c.mail_txn("s@x.test", [RCPT], body_for("later")))
    srv.wait_log(rf"ev=delivery_failed qid={qid}")
    srv.stop()
    blocker.unlink()
    srv.start()
    poll(lambda: qid in delivered(srv), what="the recovered message")
    [f] = delivered(srv)[qid]
    assert split_message(f.read_bytes())[1] == expected_body("later")
