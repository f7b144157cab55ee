"""TLS sessions end with close_notify (RFC 8446 6.1, RFC 5246 7.2.1):
after QUIT's 221 and after a 421, postern sends the alert before it
closes the TCP connection, as server (STARTTLS and implicit TLS) and as
client (after the peer's 221).  Without it every delivery looked
truncated to the peer: Exim logged "TLS connection was non-properly
terminated" (issue 18).

Python's ssl tells the two ends apart when ragged EOFs are not
suppressed: a read returns b"" after close_notify and raises
ssl.SSLEOFError ("EOF occurred in violation of protocol") on a TCP close
without it (once OP_IGNORE_UNEXPECTED_EOF, Debian's default, is off).  `openssl s_client -msg` prints the alert it receives.  A
peer that never answers the alert must not keep the session: it is
freed within a few seconds, and the loop serves others meanwhile.
"""
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from postern_test import (PortTaken, SmtpClient, free_port,
                          insecure_tls_context, poll)
from smtp_peer import message, outbound_server, queue_list, submit

T = 15.0
CLEAN, DIRTY = "close_notify", "TCP close without close_notify"


@pytest.fixture
def tls_server(make_server, tls_files):
    d, hashed = tls_files

    def make(**server):
        srv = make_server(
            start=False,
            users=["postmaster@example.test",
                   f"alice@example.test: {hashed}", "bob@example.test"],
            server=server,
            tls={"cert": str(d / "cert.pem"), "key": str(d / "key.pem")})
        for attempt in range(3):
            srv.smtps_port = free_port()
            srv.sections["server"]["smtps"] = f"127.0.0.1:{srv.smtps_port}"
            srv.write_config()
            try:
                return srv.start()
            except PortTaken:
                if attempt == 2:
                    raise
        return srv
    return make


def strict(ctx):
    """ctx, reporting a TCP close without close_notify: Debian's Python
    ignores it by default (OP_IGNORE_UNEXPECTED_EOF), reading b"" as if
    the alert had come."""
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def wrap(sock, server_side=False, ctx=None):
    """sock under TLS, ragged EOFs reported (SSLEOFError), not hidden."""
    ctx = strict(ctx or insecure_tls_context())
    ts = ctx.wrap_socket(sock, server_side=server_side,
                         suppress_ragged_eofs=False)
    ts.settimeout(T)
    return ts


def read_reply(f):
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        assert line, f"connection ended before a reply: {lines}"
        lines.append(line)
        if line[3:4] != "-":
            return lines


def tls_end(ts):
    """Reads to the end of the TLS stream: CLEAN after close_notify,
    DIRTY when TCP ended without it."""
    try:
        while True:
            if ts.recv(4096) == b"":
                return CLEAN
    except ssl.SSLEOFError:
        return DIRTY


def starttls(srv):
    """A session on the smtp port upgraded by STARTTLS, greeted again:
    (tls socket, its reader)."""
    c = SmtpClient(srv.host, srv.port)
    c.ehlo()
    assert c.cmd("STARTTLS").last.startswith("220")
    ts = wrap(c.sock)
    f = ts.makefile("rb")
    ts.sendall(b"EHLO client.test\r\n")
    assert read_reply(f)[-1].startswith("250")
    return ts, f


def smtps(srv):
    """A session on the smtps port (implicit TLS), past the banner."""
    ts = wrap(socket.create_connection((srv.host, srv.smtps_port), T))
    f = ts.makefile("rb")
    assert read_reply(f)[-1].startswith("220")
    return ts, f


@pytest.mark.parametrize("how", [starttls, smtps])
def test_quit_221_then_close_notify(tls_server, how):
    srv = tls_server()
    ts, f = how(srv)
    ts.sendall(b"QUIT\r\n")
    assert read_reply(f)[-1].startswith("221")
    assert tls_end(ts) == CLEAN
    ts.close()


def test_421_too_many_errors_then_close_notify(tls_server):
    srv = tls_server(max_bad_commands=1)
    ts, f = starttls(srv)
    ts.sendall(b"FROB\r\n")
    assert read_reply(f)[-1].startswith("5")
    ts.sendall(b"FROB\r\n")
    assert read_reply(f)[-1].startswith("5")    # then, one too many:
    assert read_reply(f)[-1].startswith("421")
    assert tls_end(ts) == CLEAN
    ts.close()


def test_421_idle_timeout_on_smtps_then_close_notify(tls_server):
    srv = tls_server(idle_timeout=1)
    ts, f = smtps(srv)
    assert read_reply(f)[-1].startswith("421 4.4.2")
    assert tls_end(ts) == CLEAN
    ts.close()


def test_421_at_shutdown_then_close_notify_and_a_clean_exit(tls_server):
    srv = tls_server()
    ts, f = smtps(srv)
    os.kill(srv.proc.pid, signal.SIGTERM)
    assert read_reply(f)[-1].startswith("421 4.3.2")
    assert tls_end(ts) == CLEAN
    ts.close()
    srv.proc.wait(T)
    assert srv.stop() == 0


def test_openssl_s_client_sees_the_close_notify_alert(tls_server):
    """s_client -msg prints each record it receives: after the 221 comes
    an alert, close_notify."""
    srv = tls_server()
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"{srv.host}:{srv.port}",
         "-starttls", "smtp", "-msg", "-ign_eof", "-quiet"],
        input=b"QUIT\r\n", capture_output=True,
        timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "221" in out, out
    after = out[out.index("221"):]
    assert "<<< TLS 1.3, Alert [length 0002], warning close_notify" in \
        after, out


def test_a_client_that_never_answers_is_let_go_soon(tls_server):
    """After the 221 and the alert the client neither reads nor closes:
    the session is freed within a few seconds (not idle_timeout's 300),
    and meanwhile the server serves others."""
    srv = tls_server()
    ts, f = starttls(srv)
    [sid] = re.findall(r"ev=tls sid=(\S+)", srv.log())
    ts.sendall(b"QUIT\r\n")
    assert read_reply(f)[-1].startswith("221")
    t0 = time.monotonic()
    with SmtpClient(srv.host, srv.port) as other:
        assert other.cmd("NOOP").last.startswith("250")
    srv.wait_log(rf"ev=disconnect sid={sid} ", timeout=T)
    assert time.monotonic() - t0 < 6.0
    ts.close()


# -- postern as the client --------------------------------------------------

class TlsPeer:
    """An SMTP peer offering STARTTLS (not PIPELINING): takes a message
    per connection and answers QUIT with 221.  Then it reads to the end
    of the TLS stream, records how it ended and answers a close_notify
    with its own (unwrap); or, with hold=True, it neither reads nor
    closes until stopped (a peer that never answers)."""

    def __init__(self, cert, key, hold=False):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.hold = hold
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.ends = []          # CLEAN or DIRTY, per connection
        self.fin = []           # TCP EOF seen after the alert
        self.quits = []         # time of each 221
        self.errors = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.serve, daemon=True)]
        self.threads[0].start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self.serve_one, args=(s,),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def serve_one(self, s):
        s.settimeout(T)
        try:
            self.session(s)
        except Exception as e:      # reported by the test, not lost
            self.errors.append(repr(e))
        finally:
            s.close()

    def session(self, s):
        f = s.makefile("rb")

        def send(ts, text):
            ts.sendall(text.encode() + b"\r\n")

        send(s, "220 peer.test ESMTP")
        assert f.readline().startswith(b"EHLO")
        send(s, "250-peer.test\r\n250 STARTTLS")
        assert f.readline().startswith(b"STARTTLS")
        send(s, "220 2.0.0 go ahead")
        ts = wrap(s, server_side=True, ctx=self.ctx)
        f = ts.makefile("rb")
        while True:
            line = f.readline()
            assert line, "the client went away"
            verb = line[:4].upper()
            if verb == b"EHLO":
                send(ts, "250-peer.test\r\n250 8BITMIME")
            elif verb in (b"MAIL", b"RCPT"):
                send(ts, "250 2.0.0 ok")
            elif verb == b"DATA":
                send(ts, "354 go ahead")
                while f.readline() not in (b".\r\n", b""):
                    pass
                send(ts, "250 2.0.0 queued")
            elif verb == b"QUIT":
                send(ts, "221 2.0.0 bye")
                self.quits.append(time.monotonic())
                break
            else:
                send(ts, "502 5.5.2 no")
        if self.hold:
            self.stopping.wait(3 * T)
            return
        end = tls_end(ts)
        self.ends.append(end)
        if end == CLEAN:
            raw = ts.unwrap()       # our close_notify in reply
            raw.settimeout(T)
            self.fin.append(raw.recv(1) == b"")
            raw.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()
        for t in self.threads:
            t.join(T)


def test_postern_as_client_sends_close_notify_after_221(make_server):
    from smtp_peer import tls_files
    cert, key = tls_files()
    peer = TlsPeer(str(cert), str(key))
    try:
        srv = outbound_server(
            make_server, routes={"remote.test": f"127.0.0.1:{peer.port}"})
        submit(srv, ["bob@remote.test"], message("tls close"))
        poll(lambda: peer.ends or peer.errors, T, interval=0.05,
             what="the peer's session to end")
        assert peer.errors == []
        assert peer.ends == [CLEAN]
        poll(lambda: peer.fin, T, what="the client's TCP close")
        assert peer.fin == [True]
        poll(lambda: queue_list(srv) == {}, T, what="an empty queue")
        srv.wait_log(r"ev=sent .*bob@remote\.test")
    finally:
        peer.stop()


def test_postern_as_client_lets_a_silent_peer_go_soon(make_server):
    """The peer neither reads nor closes after its 221.  The connection
    still ends within a few seconds: with one connection allowed to the
    destination, the next message gets a new one soon after."""
    from smtp_peer import tls_files
    cert, key = tls_files()
    peer = TlsPeer(str(cert), str(key), hold=True)
    try:
        srv = outbound_server(
            make_server, routes={"remote.test": f"127.0.0.1:{peer.port}"},
            delivery={"max_connections_per_destination": 1})
        submit(srv, ["bob@remote.test"], message("first"))
        poll(lambda: peer.quits, T, what="the first QUIT")
        submit(srv, ["bob@remote.test"], message("second"))
        poll(lambda: len(peer.quits) == 2, T, what="the second QUIT")
        assert peer.quits[1] - peer.quits[0] < 6.0, peer.quits
        assert peer.errors == []
        poll(lambda: queue_list(srv) == {}, T, what="an empty queue")
    finally:
        peer.stop()
