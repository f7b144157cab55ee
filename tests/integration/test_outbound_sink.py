"""The sending side against a real peer: Postfix's smtp-sink (issue 5,
"Real peers").  Load: messages from smtp-source reach postern (a forward
to a remote address makes them outbound) and every one arrives at
smtp-sink, counted from its dump files.  Reply handling with smtp-sink's
own switches: `-r RCPT` (4xx) defers and counts attempts, `-Q RCPT` (421
and a hang-up) is tried on the same back-off, `-f RCPT` (5xx) bounces
with an RFC 3464 report to the sender.
"""
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smtp_peer import (ALICE, message, outbound_server, queue_list,
                       read_message, submit)
from postern_test import free_port, poll

SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
T = 60.0
FWD = "fwd@example.test"      # forwarded to bob@remote.test
BOB = "bob@remote.test"

pytestmark = pytest.mark.skipif(not Path(SINK).exists(),
                                reason="Postfix's smtp-sink is not installed")


class Sink:
    """smtp-sink on a free loopback port, dumping each transaction."""

    def __init__(self, tmp, *switches):
        self.port = free_port()
        self.dump = Path(tmp) / "sink"
        self.dump.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [SINK, "-u", "root", "-d", str(self.dump / "%H%M%S."),
             *switches, f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll(self._listening, 10, what="smtp-sink listening")

    def _listening(self):
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def messages(self):
        return [p for p in self.dump.iterdir() if p.is_file()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def sink(tmp_path):
    made = []

    def make(*switches):
        s = Sink(tmp_path, *switches)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def relay_server(make_server, sink, retry="1,1,2"):
    return outbound_server(make_server,
                           routes={"remote.test": f"127.0.0.1:{sink.port}"},
                           forwards=[f"{FWD} {BOB} forward"],
                           delivery={"retry": retry},
                           server={"max_connections_per_client": 200})


def source(srv, n, size=2048, sessions=10):
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(n), "-l",
                    str(size), "-f", "alice@example.test", "-t", FWD,
                    f"127.0.0.1:{srv.port}"], check=True, timeout=120,
                   capture_output=True)


def test_every_message_reaches_smtp_sink(make_server, sink):
    s = sink()
    srv = relay_server(make_server, s)
    source(srv, 300)
    poll(lambda: len(s.messages()) >= 300, T, what="300 messages at sink")
    poll(lambda: queue_list(srv) == {}, T, what="an empty queue")
    time.sleep(0.5)
    assert len(s.messages()) == 300
    body = s.messages()[0].read_bytes()
    assert b"bob@remote.test" in body


def test_sink_4xx_at_rcpt_defers_and_counts_attempts(make_server, sink):
    s = sink("-r", "RCPT")
    srv = relay_server(make_server, s)
    source(srv, 3, sessions=1)

    def tried_twice():
        q = queue_list(srv)
        return len(q) == 3 and all(
            m["rcpts"][BOB]["attempts"] >= 2 and
            m["rcpts"][BOB]["last"].startswith("4")
            for m in q.values())
    poll(tried_twice, T, what="three messages deferred twice")
    assert s.messages() == []


def test_sink_5xx_at_rcpt_bounces_to_the_sender(make_server, sink):
    s = sink("-f", "RCPT")
    srv = relay_server(make_server, s)
    source(srv, 1, sessions=1)
    box = srv.mail_root / "example.test" / "alice" / "new"
    poll(lambda: box.is_dir() and any(box.iterdir()), T, what="a bounce")
    [path] = list(box.iterdir())
    msg = read_message(path)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    text = path.read_bytes().decode("utf-8", "replace")
    assert "Action: failed" in text
    assert "Final-Recipient: rfc822; bob@remote.test" in text
    assert "Diagnostic-Code: smtp; 5" in text
    poll(lambda: queue_list(srv) == {}, T, what="an empty queue")


class VerboseSink:
    """smtp-sink -v with switches on a free loopback port; each RCPT it
    reads is stamped with the time its line arrived on smtp-sink's
    standard error."""

    def __init__(self, *switches):
        self.port = free_port()
        self.rcpts = []
        self.proc = subprocess.Popen(
            [SINK, "-v", "-u", "root", *switches,
             f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        poll(lambda: Sink._listening(self), 10, what="smtp-sink listening")

    def _read(self):
        for line in self.proc.stderr:
            # "/usr/sbin/smtp-sink: RCPT TO:<bob@remote.test>"
            if b"smtp-sink: rcpt to:" in line.lower():
                self.rcpts.append(time.monotonic())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(10)


def test_sink_421_at_rcpt_is_tried_on_the_back_off(make_server):
    """Postfix's smtp-sink -Q RCPT answers every RCPT with 421 and hangs
    up, as a rate-limiting peer does (issue 18: 36 tries in 6.5 minutes,
    one every retry[0]).  Each 421 counts as an attempt and the next one
    waits the next step of retry = 1,2,4,8: tries at about 0, 1, 3 and 7
    s, the fifth not before 15 s.  In the 14 s after the first try the
    sink sees 4 RCPTs (every retry[0] would be a dozen), the message
    stays queued with 4 attempts and the 421 as the last reply, and no
    bounce comes before the lifetime."""
    s = VerboseSink("-Q", "RCPT")
    try:
        srv = outbound_server(
            make_server, routes={"remote.test": f"127.0.0.1:{s.port}"},
            delivery={"retry": "1,2,4,8"})
        submit(srv, [BOB], message("rate limited", to=BOB))
        poll(lambda: len(s.rcpts) >= 1, T, what="a first RCPT at the sink")
        window = 14.0
        left = s.rcpts[0] + window - time.monotonic()
        # A window, not a wait for a state: what did not happen in it
        # is the point.
        time.sleep(max(left, 0.0))
        tries = [t - s.rcpts[0] for t in s.rcpts
                 if t - s.rcpts[0] <= window]
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        assert len(tries) == 4, f"tries at {tries}"
        for g, step in zip(gaps, (1, 2, 4)):
            assert step - 0.1 <= g <= step + 1.6, f"gaps {gaps}"
        q = queue_list(srv)
        [m] = q.values()
        r = m["rcpts"][BOB]
        assert r["attempts"] == 4, r
        assert r["last"].startswith("421 4.0.0"), r
        assert srv.message_files(ALICE) == []
    finally:
        s.stop()
