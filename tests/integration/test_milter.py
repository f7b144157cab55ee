"""The content filter over SMTP (REPLY-CODES.md row 451, [filter]): a
real milter from Debian, OpenDKIM, signs what postern stores; a filter
that hangs up or stalls gives 451 4.7.1 and stores nothing, or, with
on_failure = accept, lets the message through unfiltered.
"""
import os
import shutil
import socket
import subprocess
import threading

import pytest

from postern_test import free_port, poll

OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"
BODY = b"From: alice@example.test\r\nTo: bob@example.test\r\n" \
       b"Subject: filtered\r\n\r\nHello through the filter.\r\n"


def send(srv):
    with srv.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.test>")
        c.cmd("RCPT TO:<bob@example.test>")
        assert c.cmd("DATA").code == 354
        c.send(BODY + b".\r\n")
        return c.reply()


@pytest.fixture
def opendkim(tmp_path):
    subprocess.run([GENKEY, "-D", str(tmp_path), "-d", "example.test",
                    "-s", "test"], check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "opendkim.conf"
    conf.write_text(
        f"Mode s\nDomain example.test\nSelector test\n"
        f"KeyFile {tmp_path}/test.private\nSocket inet:{port}@127.0.0.1\n"
        f"Syslog no\nPidFile {tmp_path}/pid\nRequireSafeKeys no\n"
        f"InternalHosts 127.0.0.1\n")
    p = subprocess.Popen([OPENDKIM, "-f", "-x", str(conf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    poll(up, what="opendkim to listen")
    yield port, p
    p.kill()  # SIGKILL also ends a process that was stopped
    p.wait(10)


@pytest.mark.skipif(not os.access(OPENDKIM, os.X_OK),
                    reason="opendkim is not installed")
def test_opendkim_signs_what_postern_stores(make_server, opendkim):
    port, _ = opendkim
    srv = make_server(filter={"milter": f"inet:127.0.0.1:{port}",
                              "timeout": 10})
    r = send(srv)
    assert r.code == 250, r
    (f,) = srv.wait_messages("bob@example.test", 1)
    text = f.read_text()
    assert "DKIM-Signature:" in text
    assert "d=example.test" in text and "s=test" in text
    assert "Hello through the filter." in text


@pytest.mark.skipif(not os.access(OPENDKIM, os.X_OK),
                    reason="opendkim is not installed")
def test_real_milter_stalled_then_stopped_gives_451_then_recovers(
        make_server, opendkim):
    import signal
    port, proc = opendkim
    srv = make_server(filter={"milter": f"inet:127.0.0.1:{port}",
                              "timeout": 1})
    proc.send_signal(signal.SIGSTOP)  # stalls: accepts, never answers
    try:
        r = send(srv)
        assert (r.code, r.enh) == (451, "4.7.1"), r
    finally:
        proc.send_signal(signal.SIGCONT)
    assert send(srv).code == 250
    proc.kill()
    proc.wait(10)
    r = send(srv)  # stopped for good: unreachable
    assert (r.code, r.enh) == (451, "4.7.1"), r
    # Only the message the filter saw through was stored.
    assert len(srv.wait_messages("bob@example.test", 1)) == 1


class BadMilter:
    """A filter that accepts the connection, then hangs up or stalls."""

    def __init__(self, mode):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "hangup":
                conn.recv(4096)
                conn.close()
            else:
                self.conns.append(conn)  # reads nothing, answers nothing

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("mode", ["hangup", "stall"])
def test_failing_filter_gives_451_4_7_1_and_stores_nothing(make_server,
                                                           mode):
    bad = BadMilter(mode)
    try:
        srv = make_server(filter={"milter": f"inet:127.0.0.1:{bad.port}",
                                  "timeout": 1})
        r = send(srv)
        assert (r.code, r.enh) == (451, "4.7.1"), r
        srv.wait_log(r"ev=local_error .*part=milter")
        assert srv.total_messages() == 0
    finally:
        bad.close()


def test_unreachable_filter_with_on_failure_accept_stores_unfiltered(
        make_server, dead_port):
    srv = make_server(filter={"milter": f"inet:127.0.0.1:{dead_port}",
                              "timeout": 1, "on_failure": "accept"})
    r = send(srv)
    assert r.code == 250, r
    (f,) = srv.wait_messages("bob@example.test", 1)
    assert "DKIM-Signature" not in f.read_text()


def test_bad_on_failure_value_is_a_config_error(make_server):
    from postern_test import POSTERN
    srv = make_server(start=False, filter={"milter": "inet:127.0.0.1:1",
                                           "on_failure": "maybe"})
    p = subprocess.run([POSTERN, "check", "-c", str(srv.conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "[filter] on_failure = maybe" in p.stderr
