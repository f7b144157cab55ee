"""The sending side against a real peer: Postfix's smtp-sink (issue 5,
"Real peers").  Load: messages from smtp-source reach postern (a forward
to a remote address makes them outbound) and every one arrives at
smtp-sink, counted from its dump files.  Reply handling with smtp-sink's
own switches: `-r RCPT` (4xx) defers and counts attempts, `-f RCPT` (5xx)
bounces with an RFC 3464 report to the sender.
"""
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from smtp_peer import outbound_server, queue_list, read_message
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
